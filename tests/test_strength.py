"""Strength statistics, ranks, groups, categories, AUROC and Spearman on hand-made arrays."""

import warnings

import numpy as np
import pytest

from rewardlab.strength import (
    auroc,
    categorize,
    estimate_noise_rate,
    lowest_count,
    spearman,
    strength_groups,
    strength_ranks,
    strength_statistics,
    summarize_strength,
)


def test_mean_and_population_std_by_hand() -> None:
    # pair 0: members 1, 3 -> mean 2, population std 1 (sample std would be 1.414)
    # pair 1: members -2, -2 -> mean -2, std 0
    delta = np.array([[1.0, -2.0], [3.0, -2.0]])
    s = strength_statistics(delta)
    assert s.mean.tolist() == [2.0, -2.0]
    assert s.std.tolist() == [1.0, 0.0]
    assert s.members.shape == (2, 2)


def test_single_member_has_zero_std() -> None:
    s = strength_statistics(np.array([0.5, -1.0]))
    assert s.std.tolist() == [0.0, 0.0]


def test_rejects_non_finite() -> None:
    with pytest.raises(ValueError, match=r"^delta holds NaN or infinite values$"):
        strength_statistics(np.array([[np.nan, 1.0]]))


def test_ranks_and_groups() -> None:
    mean = np.array([0.3, -1.0, 2.0, 0.0, -0.5, 1.0, 0.1, 0.2, 0.4, 0.6])
    ranks = strength_ranks(mean)
    assert ranks.tolist() == [5, 0, 9, 2, 1, 8, 3, 4, 6, 7]
    assert strength_groups(ranks).tolist() == (ranks + 1).tolist()  # N = 10: one per group
    big = strength_groups(np.arange(95))
    counts = np.bincount(big)[1:]
    assert counts.sum() == 95 and counts.max() - counts.min() <= 1
    assert big[0] == 1 and big[-1] == 10


def test_paper_categories_by_rank() -> None:
    mean = np.arange(10, dtype=float) - 3  # -3..6
    cats = categorize(mean, method="paper")
    assert cats.tolist() == ["incorrect"] * 2 + ["ambiguous"] * 2 + ["normal"] * 6


def test_threshold_categories() -> None:
    cats = categorize(np.array([-2.0, -0.5, 0.0, 0.5, 2.0]), method="threshold", tau=0.5)
    assert cats.tolist() == ["incorrect", "ambiguous", "ambiguous", "ambiguous", "normal"]


def test_unknown_category_method_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match="paper, threshold"):
        categorize(np.zeros(3), method="quantile")


def test_auroc_by_hand() -> None:
    assert auroc(np.array([0.9, 0.8, 0.1, 0.2]), np.array([1, 1, 0, 0])) == 1.0
    assert auroc(np.array([0.1, 0.2, 0.9, 0.8]), np.array([1, 1, 0, 0])) == 0.0
    # one tie between a positive and a negative counts half: (1 + 0.5) / 2
    assert auroc(np.array([0.5, 0.9, 0.5]), np.array([0, 1, 1])) == 0.75
    assert np.isnan(auroc(np.array([1.0]), np.array([1])))


def test_spearman() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert spearman(x, x**3) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)
    assert np.isnan(spearman(x, np.ones(4)))


def test_summary_keys_and_fraction_negative() -> None:
    rng = np.random.default_rng(0)
    delta = rng.normal(0.5, 1.0, size=(4, 200))
    s = strength_statistics(delta)
    ranks = strength_ranks(s.mean)
    summary = summarize_strength(s, strength_groups(ranks), categorize(s.mean, ranks=ranks))
    assert summary["fraction_negative"] == pytest.approx(float((s.mean < 0).mean()))
    assert [g["group"] for g in summary["groups"]] == list(range(1, 11))
    means = [g["mean_strength"] for g in summary["groups"]]
    assert means == sorted(means)
    assert summary["category_counts"] == {"incorrect": 40, "ambiguous": 40, "normal": 120}


# --- The one rounding rule, and everything that ranks by it. Inputs are unsorted: a rank-based
# function that reads input order instead of û fails these.

RNG = np.random.default_rng(20240917)


def _unsorted(n: int, seed: int) -> np.ndarray:
    """``n`` distinct û values in random order (the order never matches the ranks)."""
    values = np.random.default_rng(seed).permutation(n).astype(float) - n / 3
    assert not (np.diff(values) > 0).all()
    return values


@pytest.mark.parametrize(("fraction", "n", "expected"), [
    (0.1, 35, 3),     # 3.5 rounds down
    (0.29, 100, 29),  # 28.999999999999996 in floating point: the tolerance keeps it at 29
    (0.2, 10, 2),
    (0.3, 35, 10),    # 10.5
    (0.5, 3, 1),
    (0.999, 10, 9),
    (0.0, 7, 0),
    (1.0, 7, 7),
    (0.4, 0, 0),
])
def test_lowest_count_by_hand(fraction: float, n: int, expected: int) -> None:
    assert lowest_count(fraction, n) == expected


@pytest.mark.parametrize("fraction", [-0.01, 1.01])
def test_lowest_count_refuses_fractions_outside_unit_interval(fraction: float) -> None:
    with pytest.raises(ValueError, match=r"fraction must be in \[0, 1\]"):
        lowest_count(fraction, 10)


def test_statistics_reject_bad_shapes_and_infinities() -> None:
    with pytest.raises(ValueError, match=r"\[M, N\]"):
        strength_statistics(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"M >= 1"):
        strength_statistics(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="infinite"):
        strength_statistics(np.array([[1.0, np.inf]]))
    # One member as a [1, N] array is fine.
    assert strength_statistics(np.array([[1.5, -0.5]])).mean.tolist() == [1.5, -0.5]


def test_statistics_are_float64_whatever_the_input() -> None:
    # Δ from a float32 (or bf16) model: û and σ̂ are still computed and kept in float64.
    s = strength_statistics(np.array([[0.1, 2.0], [0.3, -1.0]], dtype=np.float32))
    assert s.mean.dtype == s.std.dtype == s.members.dtype == np.float64


def test_statistics_three_members_by_hand() -> None:
    # pair 0: members 0, 3, 6 -> û 3, σ̂ sqrt((9 + 0 + 9) / 3) = sqrt(6)
    # pair 1: members -1, -1, 2 -> û 0, σ̂ sqrt((1 + 1 + 4) / 3) = sqrt(2)
    s = strength_statistics(np.array([[0.0, -1.0], [3.0, -1.0], [6.0, 2.0]]))
    assert s.mean.tolist() == pytest.approx([3.0, 0.0])
    assert s.std.tolist() == pytest.approx([np.sqrt(6.0), np.sqrt(2.0)])
    assert s.members.shape == (3, 2)


def test_ranks_are_stable_on_ties_and_permute_with_the_input() -> None:
    assert strength_ranks(np.array([0.0, 0.0, -1.0, 0.0])).tolist() == [1, 2, 0, 3]
    u = RNG.normal(size=50)
    perm = RNG.permutation(50)
    assert (strength_ranks(u[perm]) == strength_ranks(u)[perm]).all()
    assert sorted(strength_ranks(u).tolist()) == list(range(50))
    assert strength_ranks(u).dtype == np.int64  # ranks index arrays


def test_ranks_keep_input_order_among_many_ties() -> None:
    # Hundreds of pairs on a few distinct values (a quicksort reorders ties at this size).
    u = np.round(np.random.default_rng(1).normal(size=300))
    ranks = strength_ranks(u)
    for value in np.unique(u):
        tied = np.flatnonzero(u == value)
        assert (np.diff(ranks[tied]) == 1).all()


def test_group_sizes_by_hand_for_35_pairs() -> None:
    # Ends ⌊3.5⌋, 7, ⌊10.5⌋, 14, ⌊17.5⌋, 21, ⌊24.5⌋, 28, ⌊31.5⌋, 35.
    groups = strength_groups(np.arange(35))
    assert np.bincount(groups, minlength=11)[1:].tolist() == [3, 4, 3, 4, 3, 4, 3, 4, 3, 4]
    assert groups[:4].tolist() == [1, 1, 1, 2]  # rank 3 is the first pair of group 2


def test_groups_for_fewer_pairs_than_groups() -> None:
    # N = 3: ends 0, 0, 0, 1, 1, 1, 2, 2, 2, 3 -> ranks 0, 1, 2 land in groups 4, 7, 10.
    assert strength_groups(np.array([2, 0, 1])).tolist() == [10, 4, 7]
    assert strength_groups(np.array([], dtype=np.int64)).tolist() == []


def test_groups_with_other_group_counts() -> None:
    # Four groups of 10: ends ⌊2.5⌋, 5, ⌊7.5⌋, 10 -> sizes 2, 3, 2, 3.
    groups = strength_groups(np.arange(10), n_groups=4)
    assert groups.tolist() == [1, 1, 2, 2, 2, 3, 3, 4, 4, 4]
    assert strength_groups(np.arange(5), n_groups=1).tolist() == [1] * 5
    with pytest.raises(ValueError, match="n_groups must be at least 1"):
        strength_groups(np.arange(5), n_groups=0)


@pytest.mark.parametrize("n", [3, 7, 10, 35, 95, 100, 101])
def test_first_k_groups_hold_the_lowest_count(n: int) -> None:
    u = _unsorted(n, seed=n)
    groups = strength_groups(strength_ranks(u))
    order = np.argsort(u)
    for k in range(1, 11):
        lowest = order[:lowest_count(k / 10, n)]
        assert (groups <= k).sum() == lowest_count(k / 10, n)
        # ... and they are the lowest-û pairs, wherever they sit in the input.
        assert (groups[lowest] <= k).all()


def test_groups_permute_with_the_input() -> None:
    u = RNG.normal(size=73)
    perm = RNG.permutation(73)
    assert (strength_groups(strength_ranks(u[perm]))
            == strength_groups(strength_ranks(u))[perm]).all()


def test_paper_categories_on_unsorted_input_by_hand() -> None:
    u = np.array([0.4, -3.0, 2.0, 0.1, -0.2, 5.0, -1.0, 0.0, 3.0, 1.0])
    # Sorted: -3 (1), -1 (6) incorrect; -0.2 (4), 0.0 (7) ambiguous; the rest normal.
    cats = categorize(u)
    assert cats.tolist() == ["normal", "incorrect", "normal", "normal", "ambiguous", "normal",
                             "incorrect", "ambiguous", "normal", "normal"]


def test_paper_categories_follow_the_rounding_rule() -> None:
    # N = 35, 10% incorrect -> 3 pairs; 10% + 20% = ⌊10.5⌋ = 10 -> 7 ambiguous.
    u = _unsorted(35, seed=1)
    cats = categorize(u, incorrect_frac=0.1, ambiguous_frac=0.2)
    order = np.argsort(u)
    assert set(cats[order[:3]]) == {"incorrect"}
    assert set(cats[order[3:10]]) == {"ambiguous"}
    assert set(cats[order[10:]]) == {"normal"}
    perm = RNG.permutation(35)
    assert (categorize(u[perm], incorrect_frac=0.1, ambiguous_frac=0.2) == cats[perm]).all()


@pytest.mark.parametrize("n", [7, 35, 101])
def test_categories_are_groups_one_to_four(n: int) -> None:
    u = _unsorted(n, seed=n + 1)
    ranks = strength_ranks(u)
    groups, cats = strength_groups(ranks), categorize(u, ranks=ranks)
    assert ((cats == "incorrect") == (groups <= 2)).all()
    assert ((cats == "ambiguous") == ((groups == 3) | (groups == 4))).all()


def test_categories_use_the_ranks_they_are_given() -> None:
    # All û tie; the caller's ranks decide (the stage passes the ranks its groups used).
    cats = categorize(np.zeros(10), ranks=np.arange(10)[::-1])
    assert cats.tolist() == ["normal"] * 6 + ["ambiguous"] * 2 + ["incorrect"] * 2


def test_threshold_boundaries_and_tau() -> None:
    u = np.array([-1.01, -1.0, 1.0, 1.01, -0.3, 0.0])
    cats = categorize(u, method="threshold", tau=1.0)
    assert cats.tolist() == ["incorrect", "ambiguous", "ambiguous", "normal", "ambiguous",
                             "ambiguous"]
    # The default tau is 0.5.
    assert categorize(np.array([-0.6, -0.5, 0.5, 0.6]), method="threshold").tolist() == [
        "incorrect", "ambiguous", "ambiguous", "normal"]
    # tau = 0: only û == 0 is ambiguous.
    assert categorize(np.array([-0.1, 0.0, 0.1]), method="threshold", tau=0.0).tolist() == [
        "incorrect", "ambiguous", "normal"]
    with pytest.raises(ValueError, match="tau must be >= 0"):
        categorize(u, method="threshold", tau=-0.1)


def test_spearman_with_ties_by_hand() -> None:
    # Average ranks [1, 2.5, 2.5, 4] against [1, 2, 3, 4]: r = 4.5 / sqrt(4.5 · 5).
    a, b = np.array([1.0, 2.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0, 4.0])
    assert spearman(a, b) == pytest.approx(4.5 / np.sqrt(22.5), rel=1e-12)
    perm = np.array([2, 0, 3, 1])
    assert spearman(a[perm], b[perm]) == pytest.approx(4.5 / np.sqrt(22.5), rel=1e-12)
    assert spearman(np.array([1.0, 2.0]), np.array([5.0, 3.0])) == pytest.approx(-1.0)
    assert np.isnan(spearman(np.array([1.0]), np.array([2.0])))
    with pytest.raises(ValueError, match="shapes differ"):
        spearman(np.arange(3.0), np.arange(4.0))


def test_spearman_when_ranks_have_unit_spread() -> None:
    # Average ranks [1.5, 1.5, 3.5, 3.5] have population std exactly 1 (not constant):
    # r = 4 / sqrt(4 · 5).
    a, b = np.array([0.0, 0.0, 1.0, 1.0]), np.array([1.0, 2.0, 3.0, 4.0])
    assert spearman(a, b) == pytest.approx(4 / np.sqrt(20), rel=1e-12)
    assert spearman(b, a) == pytest.approx(4 / np.sqrt(20), rel=1e-12)


def test_spearman_of_a_constant_side_is_nan_without_warnings() -> None:
    x = np.array([3.0, 1.0, 2.0, 5.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(spearman(x, np.full(4, 2.0)))
        assert np.isnan(spearman(np.full(4, 2.0), x))
        assert np.isnan(auroc(x, np.ones(4)))
        assert np.isnan(auroc(x, np.zeros(4)))


def test_spearman_on_unsorted_monotone_data() -> None:
    x = RNG.normal(size=40)
    assert spearman(x, np.exp(3 * x)) == pytest.approx(1.0)
    assert spearman(x, -(x**3)) == pytest.approx(-1.0)


def test_auroc_with_tied_runs_by_hand() -> None:
    # scores 1, 2, 2, 2, 3 with labels 0, 1, 0, 1, 1 -> positives {2, 2, 3}, negatives {1, 2}.
    # Pairs (pos, neg): (2,1) 1, (2,2) ½, (2,1) 1, (2,2) ½, (3,1) 1, (3,2) 1 -> 5 / 6.
    scores = np.array([1.0, 2.0, 2.0, 2.0, 3.0])
    labels = np.array([0, 1, 0, 1, 1])
    assert auroc(scores, labels) == pytest.approx(5 / 6, rel=1e-12)
    perm = np.array([3, 0, 4, 2, 1])
    assert auroc(scores[perm], labels[perm]) == pytest.approx(5 / 6, rel=1e-12)
    assert np.isnan(auroc(np.array([1.0, 2.0]), np.array([0, 0])))
    # One positive, ranked above both negatives.
    assert auroc(np.array([0.1, 0.9, 0.5]), np.array([0, 1, 0])) == 1.0


def test_summary_by_hand() -> None:
    # Three members, N = 10; groups and categories by the paper's rule.
    u = np.array([0.4, -3.0, 2.0, 0.1, -0.2, 5.0, -1.0, 0.0, 3.0, 1.0])
    spread = np.array([1.0, 0.5, 0.0, 2.0, 1.0, 0.5, 3.0, 0.0, 1.0, 0.5])
    members = np.stack([u - spread, u, u + spread])
    s = strength_statistics(members)
    ranks = strength_ranks(s.mean)
    summary = summarize_strength(s, strength_groups(ranks), categorize(s.mean, ranks=ranks))
    assert summary["fraction_negative"] == pytest.approx(0.3)
    assert summary["mean"]["strength_mean"] == pytest.approx(0.73)
    # σ̂ = spread · sqrt(2/3)
    assert summary["mean"]["strength_std"] == pytest.approx(0.95 * np.sqrt(2 / 3))
    # Sorted û: -3, -1, -0.2, 0, 0.1, 0.4, 1, 2, 3, 5; linear interpolation at q · 9.
    assert summary["quantiles"]["strength_mean"] == pytest.approx(
        {"0.05": -2.1, "0.25": -0.15, "0.5": 0.25, "0.75": 1.75, "0.95": 4.1})
    # Sorted spreads 0, 0, 0.5, 0.5, 0.5, 1, 1, 1, 2, 3: median 0.75.
    assert summary["quantiles"]["strength_std"]["0.5"] == pytest.approx(0.75 * np.sqrt(2 / 3))
    rows = summary["groups"]
    assert [r["n"] for r in rows] == [1] * 10
    assert [r["mean_strength"] for r in rows] == pytest.approx(sorted(u))
    # group 1 is û = -3 (spread 0.5), group 10 is û = 5 (spread 0.5), group 2 is û = -1 (3.0)
    assert rows[0]["std_strength_mean"] == pytest.approx(0.5 * np.sqrt(2 / 3))
    assert rows[1]["std_strength_mean"] == pytest.approx(3.0 * np.sqrt(2 / 3))
    assert summary["spearman_mean_std"] == pytest.approx(spearman(u, spread))
    assert summary["category_counts"] == {"incorrect": 2, "ambiguous": 2, "normal": 6}
    assert summary["incorrect_with_positive_strength"] == 0


def test_summary_counts_incorrect_pairs_the_ensemble_agrees_with() -> None:
    # All û > 0: the lowest 20% are "incorrect" by rank, and the summary says they are positive.
    s = strength_statistics(np.arange(1.0, 11.0))
    ranks = strength_ranks(s.mean)
    summary = summarize_strength(s, strength_groups(ranks), categorize(s.mean, ranks=ranks))
    assert summary["incorrect_with_positive_strength"] == 2
    assert summary["fraction_negative"] == 0.0
    # û = 0 is not positive: of the incorrect pairs (û 0 and 1) one counts.
    s = strength_statistics(np.arange(0.0, 10.0))
    ranks = strength_ranks(s.mean)
    summary = summarize_strength(s, strength_groups(ranks), categorize(s.mean, ranks=ranks))
    assert summary["incorrect_with_positive_strength"] == 1


def _summary(delta: np.ndarray) -> dict:
    s = strength_statistics(delta)
    ranks = strength_ranks(s.mean)
    return summarize_strength(s, strength_groups(ranks), categorize(s.mean, ranks=ranks))


def test_summary_of_one_pair() -> None:
    summary = _summary(np.array([[1.0], [2.0]]))
    assert summary["quantiles"]["strength_mean"] == {q: 1.5 for q in
                                                     ("0.05", "0.25", "0.5", "0.75", "0.95")}
    assert summary["quantiles"]["strength_std"]["0.5"] == 0.5


def test_summary_of_no_pairs_is_nan_not_an_error() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the means of nothing
        summary = _summary(np.zeros((2, 0)))
    for key in ("strength_mean", "strength_std"):
        quantiles = summary["quantiles"][key]
        assert list(quantiles) == ["0.05", "0.25", "0.5", "0.75", "0.95"]
        assert all(np.isnan(v) for v in quantiles.values())
    assert np.isnan(summary["fraction_negative"])
    assert summary["category_counts"] == {"incorrect": 0, "ambiguous": 0, "normal": 0}


def test_summary_of_empty_groups_is_nan() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an empty group is nan by design, not a numpy warning
        summary = _summary(np.array([[-1.0, 0.5, 2.0]]))
    rows = summary["groups"]
    assert [r["n"] for r in rows] == [0, 0, 0, 1, 0, 0, 1, 0, 0, 1]
    assert np.isnan(rows[0]["mean_strength"]) and np.isnan(rows[0]["std_strength_mean"])
    assert rows[3]["mean_strength"] == -1.0 and rows[9]["mean_strength"] == 2.0


# --- estimate_noise_rate: a floor of mirrored signs at every |û| above the model's own errors.


def _mirrored(n: int, eta: float, seed: int, mu: float = 2.0) -> np.ndarray:
    """û of n pairs, a share ``eta`` of them with mirrored strength, in random order."""
    rng = np.random.default_rng(seed)
    x = rng.normal(mu, 1.0, size=n)
    wrong = rng.random(n) < eta
    return np.where(wrong, -x, x)


def test_noise_rate_is_zero_for_fewer_than_ten_pairs() -> None:
    assert estimate_noise_rate(np.array([3.0] * 6 + [-3.0] * 3)) == 0.0
    # Ten pairs, two of them mirrored: too little evidence at the 1% level to name a rate...
    ten = np.array([3.0, -3.1, 2.9, 3.2, 2.8, 3.0, -2.9, 3.1, 2.7, 3.3])
    assert estimate_noise_rate(ten) == 0.0
    # Nor would any number of them: with every |û| alike, a model wrong on a fifth of pairs of
    # that strength explains the signs as well as a fifth of wrong labels does.
    assert estimate_noise_rate(np.tile(ten, 100)) == 0.0


def test_noise_rate_needs_evidence_beyond_a_model_at_chance() -> None:
    # Signs a coin toss at every |û| (a model near chance, as frozen MiniLM on HH): whatever the
    # share of û < 0, nothing says it is label noise rather than the model's own errors.
    rng = np.random.default_rng(11)
    coin = rng.uniform(0, 1, 8000) * np.where(rng.random(8000) < 0.49, -1, 1)
    assert estimate_noise_rate(coin) == 0.0


def test_noise_rate_of_non_finite_input_is_zero() -> None:
    assert estimate_noise_rate(np.r_[_mirrored(50, 0.2, 0), np.nan]) == 0.0


@pytest.mark.parametrize("eta", [0.05, 0.15, 0.3])
def test_noise_rate_recovers_known_mirrored_share(eta: float) -> None:
    x = _mirrored(4000, eta, seed=int(eta * 100))
    assert estimate_noise_rate(x) == pytest.approx(eta, abs=0.03)


@pytest.mark.parametrize("scale", [0.01, 0.2, 30.0])
def test_noise_rate_does_not_depend_on_the_reward_scale(scale: float) -> None:
    # Reward models differ in units: û in hundredths or in tens carries the same share.
    x = _mirrored(4000, 0.2, seed=8)
    assert estimate_noise_rate(scale * x) == pytest.approx(0.2, abs=0.03)


def test_noise_rate_grows_with_the_share_and_stays_in_range() -> None:
    rates = [estimate_noise_rate(_mirrored(2000, eta, seed=7)) for eta in (0.0, 0.1, 0.2, 0.4)]
    assert rates == sorted(rates)
    assert rates[0] < 0.03 and rates[-1] > 0.3
    for x in (np.full(20, -2.0) + RNG.normal(0, 0.1, 20), np.full(20, 2.0),
              RNG.normal(0, 1, 200), RNG.normal(-1, 1, 200)):
        assert 0.0 <= estimate_noise_rate(x) <= 0.5


def test_noise_rate_ignores_input_order() -> None:
    x = _mirrored(500, 0.2, seed=3)
    perm = RNG.permutation(500)
    assert estimate_noise_rate(x[perm]) == pytest.approx(estimate_noise_rate(x), abs=1e-6)


def _floor_data(n: int, eta: float, c: float, seed: int) -> np.ndarray:
    """û whose sign is wrong with probability η + (1 - 2η)σ(-c|û|): the model's own errors at
    small |û| plus a floor of wrong labels everywhere."""
    rng = np.random.default_rng(seed)
    mags = rng.uniform(0.0, 3.0, size=n)
    p_neg = eta + (1 - 2 * eta) / (1 + np.exp(c * mags))
    return np.where(rng.random(n) < p_neg, -mags, mags)


def test_noise_rate_reads_the_floor_not_the_models_own_errors() -> None:
    # No wrong labels, but a weak model: 15% of û are negative, nearly all of them near zero.
    weak = _floor_data(20000, 0.0, c=1.5, seed=1)
    assert (weak < 0).mean() > 0.12
    assert estimate_noise_rate(weak) < 0.02
    # The same model on data with 15% wrong labels: the floor, not the share of û < 0.
    noisy = _floor_data(20000, 0.15, c=1.5, seed=2)
    assert (noisy < 0).mean() > 0.22
    assert estimate_noise_rate(noisy) == pytest.approx(0.15, abs=0.02)


def test_noise_rate_pools_large_inputs_without_changing_the_estimate(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import rewardlab.strength as strength

    x = _floor_data(6000, 0.2, c=3.0, seed=4)
    pooled = estimate_noise_rate(x)  # 6,000 pairs in 2,000 bins of three
    monkeypatch.setattr(strength, "NOISE_RATE_BINS", 10**6)
    assert estimate_noise_rate(x) == pytest.approx(pooled, abs=0.01)


def test_floor_fit_finds_the_likelihood_maximum_over_eta() -> None:
    # The bisection on the slope against a dense grid of η, for fixed own-error rates.
    from rewardlab.strength import _floor_fit, _log_likelihood

    rng = np.random.default_rng(5)
    counts = rng.integers(1, 60, size=40).astype(np.float64)
    own = rng.uniform(0.0, 0.45, size=40)
    neg = rng.binomial(counts.astype(int), own + 0.2 * (1 - 2 * own)).astype(np.float64)
    eta, ll = _floor_fit(neg, counts, own)
    grid = np.linspace(0.0, 0.5, 50001)
    lls = np.array([_log_likelihood(neg, counts, own + g * (1 - 2 * own)) for g in grid])
    assert eta == pytest.approx(grid[lls.argmax()], abs=2e-5)
    assert ll == pytest.approx(lls.max(), rel=1e-9)
    # By hand: with no own errors, the maximum is the share of negatives.
    assert _floor_fit(np.array([3.0, 1.0]), np.array([10.0, 10.0]), np.zeros(2))[0] == (
        pytest.approx(0.2, abs=1e-9))
