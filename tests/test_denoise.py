"""Denoising plans on hand-made strength arrays."""

import numpy as np
import pytest
import torch

from rewardlab.denoise import PRESETS, DenoisePlan, denoise, resolve_plan, training_set
from rewardlab.losses import preference_loss
from rewardlab.strength import estimate_noise_rate, lowest_count

U = np.array([-2.0, -1.0, -0.5, 0.2, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0])  # N = 10


def test_baseline_changes_nothing() -> None:
    r = denoise(U, "baseline")
    assert r.target.tolist() == [1.0] * 10
    assert r.margin.tolist() == [0.0] * 10
    assert r.keep.all() and not r.flipped.any()


def test_flip_lowest_twenty_percent() -> None:
    r = denoise(U, "flip")
    assert r.flipped.tolist() == [True, True] + [False] * 8
    assert r.target.tolist() == [0.0, 0.0] + [1.0] * 8
    assert r.keep.all()


def test_drop_lowest_twenty_percent() -> None:
    r = denoise(U, "drop")
    assert r.keep.tolist() == [False, False] + [True] * 8
    assert not r.flipped.any()


def test_smoothing_everywhere() -> None:
    r = denoise(U, "smooth")
    assert r.target.tolist() == pytest.approx([0.9] * 10)


def test_adaptive_margin_is_strength() -> None:
    assert denoise(U, "margin").margin.tolist() == U.tolist()
    scaled = denoise(U, resolve_plan("margin", margin_scale=0.5))
    assert scaled.margin.tolist() == (0.5 * U).tolist()


def test_flip_plus_margin_keeps_margin_in_original_orientation() -> None:
    # A flipped pair has t = 0 and m = û: the loss -log σ(-(Δ - û)) is, in the flipped frame
    # (Δ' = -Δ), -log σ(Δ' - (-û)), a positive margin -û that agrees with the new label.
    r = denoise(U, "flip+margin")
    assert r.target[:2].tolist() == [0.0, 0.0]
    assert r.margin[:2].tolist() == [-2.0, -1.0]


def test_soft_margin_smooths_only_negative() -> None:
    r = denoise(U, "soft+margin")
    assert r.target.tolist() == pytest.approx([0.9, 0.9, 0.9] + [1.0] * 7)
    assert not r.flipped.any()
    assert r.margin.tolist() == U.tolist()


def test_soft_margin_flipped_flips_negative_then_smooths() -> None:
    r = denoise(U, "soft+margin:flipped")
    assert r.flipped.tolist() == [True] * 3 + [False] * 7
    assert r.target.tolist() == pytest.approx([0.1, 0.1, 0.1] + [1.0] * 7)


def test_ties_broken_by_order_and_exact_count() -> None:
    r = denoise(np.zeros(10), DenoisePlan(flip=0.3))
    assert r.flipped.tolist() == [True] * 3 + [False] * 7


def test_unknown_method_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="choose one of baseline, flip, drop, smooth, margin, "):
        resolve_plan("clean")
    with pytest.raises(ValueError) as err:
        resolve_plan("clean")
    for name in PRESETS:
        assert name in str(err.value)


def test_overrides_apply_over_preset() -> None:
    plan = resolve_plan("flip", flip=0.1, margin=True, smooth=None)
    assert plan.flip == 0.1 and plan.margin and plan.smooth == 0.0


def test_validation() -> None:
    with pytest.raises(ValueError, match="flip"):
        DenoisePlan(flip=1.5)
    with pytest.raises(ValueError, match="NaN"):
        denoise(np.array([np.nan]), "flip")


def test_counts() -> None:
    c = denoise(U, "soft+margin:flipped").counts()
    assert c == {"pairs": 10, "kept": 10, "dropped": 0, "flipped": 3, "smoothed": 3,
                 "with_margin": 10}


def test_at_syntax_sets_the_main_knob() -> None:
    assert resolve_plan("flip@0.1").flip == 0.1
    assert resolve_plan("drop@0.3").drop == 0.3
    assert resolve_plan("soft+margin@0.2").smooth == 0.2
    assert resolve_plan("margin@0.5").margin_scale == 0.5
    assert denoise(U, "flip@0.3").flipped.sum() == 3
    with pytest.raises(ValueError, match=r"^'baseline@0.1': the baseline preset has no knob"):
        resolve_plan("baseline@0.1")
    with pytest.raises(ValueError, match="number"):
        resolve_plan("flip@lots")


# --- Unsorted û, random permutations, the eligible mask, @auto and the written orientation.

# The same kind of values as U, in an order unrelated to their ranks. Sorted by û the indices
# run 3 (-2), 1 (-1), 8 (-0.5), 6 (0.2), 4 (0.5), 9 (1), 0 (1.5), 7 (2), 2 (3), 5 (4).
V = np.array([1.5, -1.0, 3.0, -2.0, 0.5, 4.0, 0.2, 2.0, -0.5, 1.0])
RNG = np.random.default_rng(99)


def _mask(n: int, where: list[int]) -> list[bool]:
    return [i in where for i in range(n)]


def test_flip_and_drop_pick_the_lowest_wherever_they_sit() -> None:
    r = denoise(V, "flip")
    assert r.flipped.tolist() == _mask(10, [3, 1])
    assert r.target.tolist() == [0.0 if i in (3, 1) else 1.0 for i in range(10)]
    assert r.keep.all()
    r = denoise(V, "drop@0.3")
    assert r.keep.tolist() == [i not in (3, 1, 8) for i in range(10)]
    assert not r.flipped.any()
    assert denoise(V, "flip@0.5").flipped.tolist() == _mask(10, [3, 1, 8, 6, 4])


@pytest.mark.parametrize("method", ["flip", "drop", "smooth", "margin", "flip+margin",
                                    "soft+margin", "soft+margin:flipped", "flip@0.35",
                                    "drop@0.45"])
def test_a_permutation_of_the_input_permutes_the_output(method: str) -> None:
    u = RNG.normal(size=37)
    perm = RNG.permutation(37)
    whole, shuffled = denoise(u, method), denoise(u[perm], method)
    for name in ("target", "margin", "keep", "flipped"):
        assert (getattr(shuffled, name) == getattr(whole, name)[perm]).all(), name


def test_smoothing_only_negative_pairs_with_a_flip() -> None:
    # Flipped and negative: α; negative, not flipped: 1 - α; flipped, û >= 0: 0 (no smoothing).
    plan = DenoisePlan(flip=0.5, smooth=0.1, smooth_where="negative")
    r = denoise(V, plan)
    expected = [1.0] * 10
    for i in (3, 1, 8):
        expected[i] = 0.1
    for i in (6, 4):
        expected[i] = 0.0
    assert r.target.tolist() == pytest.approx(expected)
    # With smoothing everywhere, unflipped pairs move to 1 - α as well.
    r = denoise(V, DenoisePlan(flip=0.2, smooth=0.2))
    assert r.target.tolist() == pytest.approx([0.2 if i in (3, 1) else 0.8 for i in range(10)])


def test_flip_negative_adds_to_a_flip_cut() -> None:
    # The lowest 50% (three negative, 0.2 and 0.5) together with every û < 0.
    r = denoise(V, DenoisePlan(flip=0.5, flip_negative=True))
    assert r.flipped.tolist() == _mask(10, [3, 1, 8, 6, 4])
    r = denoise(V, DenoisePlan(flip=0.1, flip_negative=True))
    assert r.flipped.tolist() == _mask(10, [3, 1, 8])


def test_ties_at_the_cut_go_to_the_earlier_pairs() -> None:
    # Hundreds of pairs on a few distinct values: the cut takes the tied pairs in input order.
    u = np.round(np.random.default_rng(2).normal(size=300))
    flipped = denoise(u, DenoisePlan(flip=0.3)).flipped
    assert flipped.sum() == 90
    edge = u[flipped].max()
    tied = np.flatnonzero(u == edge)
    assert (u[u < edge].size + np.cumsum(flipped[tied]) <= 90).all()
    assert (flipped[tied] == (np.arange(tied.size) < 90 - (u < edge).sum())).all()


def test_integer_strength_gives_float_targets_and_margins() -> None:
    r = denoise(np.array([3, -1, 2, 0, 5]), "flip")
    assert r.margin.dtype == r.target.dtype == np.float64
    assert r.flipped.tolist() == [False, True, False, False, False]


def test_zero_strength_is_not_negative() -> None:
    u = np.array([0.0, -0.5, 1.0, 2.0])
    r = denoise(u, "soft+margin:flipped")
    assert r.flipped.tolist() == [False, True, False, False]
    assert r.target.tolist() == pytest.approx([1.0, 0.1, 1.0, 1.0])
    assert r.counts() == {"pairs": 4, "kept": 4, "dropped": 0, "flipped": 1, "smoothed": 1,
                          "with_margin": 3}


def test_counts_by_hand_for_a_drop_with_margin() -> None:
    c = denoise(V, DenoisePlan(drop=0.3, margin=True, margin_scale=2.0)).counts()
    assert c == {"pairs": 10, "kept": 7, "dropped": 3, "flipped": 0, "smoothed": 0,
                 "with_margin": 10}
    assert denoise(V, "smooth").counts()["with_margin"] == 0
    # A flipped pair's target 0 is not smoothing.
    assert denoise(V, "flip").counts()["smoothed"] == 0
    assert denoise(V, DenoisePlan(drop=0.3, margin=True, margin_scale=2.0)).margin.tolist() == (
        2.0 * V).tolist()


def test_ineligible_pairs_are_never_chosen_nor_counted() -> None:
    # 15 pairs; the 5 lowest are ineligible (identical). 30% of the 10 eligible is 3 pairs
    # (30% of all 15 would be 4), and they are the lowest eligible ones.
    u = np.array([-9.0, 0.3, -8.0, 2.0, -0.4, -7.0, 1.0, -6.0, 0.1, -5.0, 3.0, -0.2, 4.0, 5.0,
                  6.0])
    ok = np.array([u_i > -5 for u_i in u])  # indices 0, 2, 5, 7, 9 ineligible
    assert ok.sum() == 10
    r = denoise(u, DenoisePlan(flip=0.3), eligible=ok)
    assert r.flipped.tolist() == _mask(15, [4, 11, 8])
    r = denoise(u, DenoisePlan(drop=0.3), eligible=ok)
    assert (~r.keep).tolist() == _mask(15, [4, 11, 8])
    r = denoise(u, DenoisePlan(flip_negative=True), eligible=ok)
    assert r.flipped.tolist() == _mask(15, [4, 11])
    # A 0/1 mask means the same as a bool one.
    r = denoise(u, DenoisePlan(flip=0.3), eligible=ok.astype(int))
    assert r.flipped.tolist() == _mask(15, [4, 11, 8])
    with pytest.raises(ValueError, match=r"eligible must be \[N\]"):
        denoise(u, "flip", eligible=ok[:-1])


def _mirrored(n: int, eta: float, seed: int) -> np.ndarray:
    """Well-separated û, exactly ``round(eta · n)`` of them mirrored, in random order."""
    rng = np.random.default_rng(seed)
    sign = np.where(np.arange(n) < round(eta * n), -1.0, 1.0)
    return rng.permutation(sign * np.abs(rng.normal(2.0, 1.0, size=n)))


def test_flip_at_auto_flips_the_estimated_share() -> None:
    u = _mirrored(400, 0.1, seed=5)
    plan = resolve_plan("flip@auto")
    assert plan.auto_cut and plan.flip == 0.2 and plan.drop == 0.0
    r = denoise(u, plan)
    share = estimate_noise_rate(u)
    # About the injected 10%, clearly not the preset's fixed 20%.
    assert r.estimated_share == share and 0.04 < share < 0.16
    n_flip = lowest_count(share, 400)
    assert r.flipped.sum() == n_flip != lowest_count(0.2, 400)
    assert (np.sort(u[r.flipped]) == np.sort(u)[:n_flip]).all()
    assert r.keep.all()
    assert r.counts()["estimated_noise_rate"] == share


def test_drop_at_auto_drops_the_estimated_share_of_eligible_pairs() -> None:
    u = _mirrored(400, 0.3, seed=6)
    ok = np.ones(400, dtype=bool)
    ok[np.argsort(u)[:30]] = False  # the 30 lowest carry no preference
    r = denoise(u, "drop@auto", eligible=ok)
    share = estimate_noise_rate(u[ok])
    assert r.estimated_share == share
    assert (~r.keep).sum() == lowest_count(share, 370)
    assert not (~r.keep & ~ok).any()
    assert not r.flipped.any()
    # A 0/1 mask means the same as a bool one (and is not read as indices).
    as_ints = denoise(u, "drop@auto", eligible=ok.astype(int))
    assert as_ints.estimated_share == share and (as_ints.keep == r.keep).all()


def test_fixed_cuts_estimate_nothing() -> None:
    r = denoise(V, "flip")
    assert r.estimated_share is None
    assert "estimated_noise_rate" not in r.counts()


def test_at_auto_and_its_errors() -> None:
    assert resolve_plan("drop@auto").auto_cut and resolve_plan("drop@auto").drop == 0.2
    plan = resolve_plan("flip+margin@auto")
    assert plan.auto_cut and plan.margin and plan.flip == 0.2
    for method in ("smooth@auto", "margin@auto", "soft+margin@auto"):
        with pytest.raises(ValueError, match="@auto sizes a flip or drop cut"):
            resolve_plan(method)
    with pytest.raises(ValueError, match="sets flip already"):
        resolve_plan("flip@0.3", flip=0.1)
    with pytest.raises(ValueError, match="sets drop already"):
        resolve_plan("drop@auto", drop=0.1)
    # An override left unset (None) is no clash.
    assert resolve_plan("flip@0.3", flip=None).flip == 0.3
    with pytest.raises(ValueError, match="unknown option"):
        resolve_plan("flip", flips=0.1)
    with pytest.raises(ValueError, match=r"^auto_cut sizes a flip or drop cut: set flip or drop"):
        DenoisePlan(auto_cut=True)


def test_no_method_is_the_baseline() -> None:
    assert resolve_plan() == resolve_plan(None) == PRESETS["baseline"] == DenoisePlan()
    assert denoise(V).counts() == denoise(V, "baseline").counts()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"flip": 1.0}, r"flip must be in \[0, 1\)"), ({"flip": -0.1}, r"flip must be in \[0, 1\)"),
    ({"drop": 1.0}, r"drop must be in \[0, 1\)"), ({"drop": -0.1}, r"drop must be in \[0, 1\)"),
    ({"smooth": 0.5}, r"smooth must be in \[0, 0.5\)"),
    ({"smooth": -0.1}, r"smooth must be in \[0, 0.5\)"),
    ({"smooth_where": "positive"}, "smooth_where must be one of \\('all', 'negative'\\)"),
])
def test_plan_refuses_out_of_range_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DenoisePlan(**kwargs)


def test_plan_accepts_the_edges_of_its_ranges() -> None:
    plan = DenoisePlan(flip=0.99, drop=0.0, smooth=0.49, smooth_where="negative")
    assert plan.flip == 0.99 and plan.smooth == 0.49


@pytest.mark.parametrize(("plan", "reads"), [
    (DenoisePlan(), False), (DenoisePlan(smooth=0.1), False),
    (DenoisePlan(smooth=0.1, smooth_where="negative"), True), (DenoisePlan(flip=0.1), True),
    (DenoisePlan(drop=0.1), True), (DenoisePlan(margin=True), True),
    (DenoisePlan(flip_negative=True), True),
])
def test_which_plans_read_strength(plan: DenoisePlan, reads: bool) -> None:
    assert plan.reads_strength is reads


def test_denoise_refuses_bad_strength() -> None:
    with pytest.raises(ValueError, match=r"strength_mean must be \[N\]"):
        denoise(np.zeros((2, 3)), "flip")
    with pytest.raises(ValueError, match=r"^strength_mean holds NaN or infinite values$"):
        denoise(np.array([0.0, np.inf]), "flip")


def test_training_set_leaves_identical_pairs_out_of_cut_and_share() -> None:
    identical = np.array(_mask(10, [3]))  # the lowest û, but it carries no preference
    ts = training_set(V, "flip", identical=identical)
    # 20% of the 9 eligible pairs is ⌊1.8⌋ = 1: the lowest eligible, pair 1.
    assert ts.index.tolist() == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert ts.flipped.tolist() == [i == 1 for i in ts.index]
    assert ts.target.tolist() == [0.0 if i == 1 else 1.0 for i in ts.index]
    assert ts.counts["identical_left_out"] == 1 and ts.counts["trained_on"] == 9
    assert ts.counts["flipped"] == 1
    ts = training_set(V, "drop@0.3", identical=identical)
    # ⌊0.3 · 9⌋ = 2 dropped (pairs 1 and 8), pair 3 left out: 7 trained on.
    assert ts.index.tolist() == [0, 2, 4, 5, 6, 7, 9]
    assert ts.counts["trained_on"] == 7 and ts.counts["dropped"] == 2
    # A 0/1 mask means the same as a bool one.
    for method in ("flip", "drop@0.3"):
        as_bools = training_set(V, method, identical=identical)
        as_ints = training_set(V, method, identical=identical.astype(int))
        assert as_ints.counts == as_bools.counts
        assert as_ints.index.tolist() == as_bools.index.tolist()


def test_training_set_refuses_unknown_orientations() -> None:
    with pytest.raises(ValueError, match="orientation must be 'label' or 'written', got 'writen'"):
        training_set(V, "flip", identical=np.zeros(10, dtype=bool), orientation="writen")


def test_training_set_label_and_written_orientation() -> None:
    identical = np.zeros(10, dtype=bool)
    label = training_set(V, "flip+margin", identical=identical)
    written = training_set(V, "flip+margin", identical=identical, orientation="written")
    assert label.index.tolist() == written.index.tolist() == list(range(10))
    assert label.target.tolist() == [0.0 if i in (3, 1) else 1.0 for i in range(10)]
    assert label.margin.tolist() == V.tolist()
    # Written with chosen and rejected swapped: t -> 1 - t and m -> -m on flipped pairs only.
    assert written.target.tolist() == [1.0] * 10
    assert written.margin.tolist() == [-u if i in (3, 1) else u for i, u in enumerate(V)]
    smoothed = training_set(V, "soft+margin:flipped", identical=identical, orientation="written")
    assert smoothed.target.tolist() == pytest.approx([0.9 if u < 0 else 1.0 for u in V])


def test_written_orientation_gives_the_same_loss() -> None:
    u = RNG.normal(size=30)
    delta = torch.as_tensor(RNG.normal(size=30))
    identical = np.zeros(30, dtype=bool)
    for method in ("flip+margin", "soft+margin:flipped", "flip@0.4"):
        lab = training_set(u, method, identical=identical)
        wri = training_set(u, method, identical=identical, orientation="written")
        d = delta[lab.index]
        d_written = torch.where(torch.as_tensor(wri.flipped), -d, d)
        assert torch.allclose(
            preference_loss(d, target=torch.as_tensor(lab.target),
                            margin=torch.as_tensor(lab.margin), reduction="none"),
            preference_loss(d_written, target=torch.as_tensor(wri.target),
                            margin=torch.as_tensor(wri.margin), reduction="none"))


def test_written_margin_is_never_negative_zero() -> None:
    u = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    ts = training_set(u, "flip+margin@0.1", identical=np.zeros(10, dtype=bool),
                      orientation="written")
    assert ts.flipped.tolist() == [True] + [False] * 9
    assert ts.margin[0] == 0.0 and not np.signbit(ts.margin).any()


def test_training_set_permutes_with_the_input() -> None:
    u = RNG.normal(size=40)
    identical = RNG.random(40) < 0.2
    perm = RNG.permutation(40)
    whole = training_set(u, "drop@0.25", identical=identical)
    shuffled = training_set(u[perm], "drop@0.25", identical=identical[perm])
    assert sorted(perm[shuffled.index].tolist()) == whole.index.tolist()


# --- Kept ties: the label's own target (0.5 for a tie) goes through flips and smoothing.

T = np.array([0.5, 1.0, 1.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])  # pairs 0 and 3 are ties


def test_flipping_a_label_target_turns_t_into_one_minus_t() -> None:
    r = denoise(V, "flip", label_target=T)
    # Pairs 3 (a tie) and 1 are the lowest: 1 - 0.5 stays 0.5, 1 - 1 is 0; tie 0 is untouched.
    assert r.target.tolist() == [0.5, 0.0, 1.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert r.flipped.tolist() == _mask(10, [3, 1])
    assert denoise(V, "flip", label_target=np.zeros(10)).target.tolist() == [
        1.0 if i in (3, 1) else 0.0 for i in range(10)]


def test_smoothing_keeps_a_tie_a_tie() -> None:
    # t (1 - 2α) + α with α = 0.1: 1 -> 0.9, 0.5 -> 0.5, 0 (flipped) -> 0.1.
    r = denoise(V, DenoisePlan(flip=0.2, smooth=0.1), label_target=T)
    assert r.target.tolist() == pytest.approx([0.5, 0.1, 0.9, 0.5, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9])
    # Only negative û, no flips: pairs 3 (a tie, stays 0.5), 1 and 8.
    r = denoise(V, "soft+margin", label_target=T)
    assert r.target.tolist() == pytest.approx([0.5, 0.9, 1.0, 0.5, 1.0, 1.0, 1.0, 1.0, 0.9, 1.0])


def test_label_target_permutes_with_the_input_and_checks_its_shape() -> None:
    perm = RNG.permutation(10)
    whole = denoise(V, "soft+margin:flipped", label_target=T)
    shuffled = denoise(V[perm], "soft+margin:flipped", label_target=T[perm])
    assert (shuffled.target == whole.target[perm]).all()
    with pytest.raises(ValueError, match=r"label_target must be \[N\] = \(10,\), got \(9,\)"):
        denoise(V, "flip", label_target=T[:9])


def test_training_set_carries_label_targets_in_both_orientations() -> None:
    identical = np.zeros(10, dtype=bool)
    label = training_set(V, "flip", identical=identical, label_target=T)
    written = training_set(V, "flip", identical=identical, label_target=T, orientation="written")
    assert label.target.tolist() == [0.5, 0.0, 1.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    # Written with flipped pairs swapped back: the tie stays 0.5, pair 1 is 1 again.
    assert written.target.tolist() == [0.5, 1.0, 1.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]


def test_kept_ties_are_not_counted_as_smoothed() -> None:
    u = np.array([0.3, -1.0, 2.0, 0.5])
    ties = np.array([0.5, 1.0, 1.0, 0.5])
    assert denoise(u, "baseline", label_target=ties).counts()["smoothed"] == 0
    assert denoise(u, "smooth", label_target=ties).counts()["smoothed"] == 4
    assert denoise(u, "soft+margin", label_target=ties).counts()["smoothed"] == 1


def test_cuts_never_spend_a_place_on_a_kept_tie() -> None:
    # Pairs 0 and 1 are kept ties (target 0.5) with the lowest û: a 20% cut of the 8 pairs with a
    # direction (⌊1.6⌋ = 1) takes the lowest of those, pair 2, and the ties stay ties.
    u = np.array([-5.0, -4.0, -3.0, -2.0, -1.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    t = np.array([0.5, 0.5, 1, 1, 1, 1, 1, 1, 1, 1])
    ts = training_set(u, "flip", identical=np.zeros(10, bool), label_target=t)
    assert ts.flipped.tolist() == [False, False, True, *[False] * 7]
    assert ts.target[:3].tolist() == [0.5, 0.5, 0.0]
