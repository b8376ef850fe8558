"""Known noise injection: exact counts, seeds, near-tie weighting, and id-based flips."""

import logging
from typing import Any

import numpy as np
import pytest

from rewardlab.noise import choose_flips, flips_by_id, inject_flips, swap_labels


def test_exact_count_and_determinism() -> None:
    a = choose_flips(1000, 0.2, seed=3)
    assert a.sum() == 200
    assert (a == choose_flips(1000, 0.2, seed=3)).all()
    assert not (a == choose_flips(1000, 0.2, seed=4)).all()


@pytest.mark.parametrize(("n", "fraction", "expected"), [
    (10, 0.25, 2),   # round(2.5) = 2 (half to even)
    (7, 0.5, 4),     # round(3.5) = 4
    (9, 0.3, 3),     # round(2.7)
    (10, 0.0, 0),
    (3, 0.1, 0),     # round(0.3)
])
def test_count_is_rounded_fraction_by_hand(n: int, fraction: float, expected: int) -> None:
    mask = choose_flips(n, fraction, seed=0)
    assert mask.shape == (n,) and mask.dtype == bool
    assert mask.sum() == expected
    gap = np.linspace(-1, 1, n)
    assert choose_flips(n, fraction, seed=0, kind="near-tie", gap=gap).sum() == expected


def test_uniform_flips_cover_all_positions() -> None:
    # Over many seeds every position is flipped about equally often (no favoured end).
    hits = sum(choose_flips(20, 0.25, seed=s).astype(int) for s in range(400))
    assert hits.sum() == 400 * 5
    assert hits.min() > 60 and hits.max() < 140  # expected 100 each


def test_near_tie_concentrates_on_small_gaps() -> None:
    gap = np.linspace(-5, 5, 2000)
    flips = choose_flips(2000, 0.2, seed=0, kind="near-tie", gap=gap)
    assert flips.sum() == 400
    assert np.abs(gap[flips]).mean() < 0.6 * np.abs(gap[~flips]).mean()


def test_near_tie_weights_are_exp_of_gap_over_half_the_median() -> None:
    # Three equal groups with |gap| 0, 1 and 2 (signs mixed): median |gap| 1, scale 0.5, weights
    # 1, e^-2, e^-4. Drawing 300 of 30,000, the share from each group is close to its weight's
    # share: 0.867, 0.117, 0.016 -> about 260, 35 and 5 flips.
    gap = np.repeat([0.0, 1.0, -2.0], 10_000)
    gap[1::2] *= -1
    flips = choose_flips(30_000, 0.01, seed=11, kind="near-tie", gap=gap)
    counts = [int(flips[g * 10_000:(g + 1) * 10_000].sum()) for g in range(3)]
    assert sum(counts) == 300
    assert 240 <= counts[0] <= 280
    assert 20 <= counts[1] <= 52
    assert counts[2] <= 14


def test_near_tie_with_all_gaps_zero_is_uniform() -> None:
    # Median 0: the scale's floor keeps the weights finite (all equal).
    flips = choose_flips(10, 0.3, seed=0, kind="near-tie", gap=np.zeros(10))
    assert flips.sum() == 3


def test_errors() -> None:
    with pytest.raises(ValueError, match="uniform, near-tie"):
        choose_flips(10, 0.1, seed=0, kind="other")
    with pytest.raises(ValueError, match="gap"):
        choose_flips(10, 0.1, seed=0, kind="near-tie")
    with pytest.raises(ValueError, match=r"^near-tie noise needs the true gap of every pair"):
        choose_flips(10, 0.1, seed=0, kind="near-tie", gap=np.zeros(9))
    for fraction in (1.0, -0.1):
        with pytest.raises(ValueError, match=r"fraction must be in \[0, 1\)"):
            choose_flips(10, fraction, seed=0)
        with pytest.raises(ValueError, match=r"fraction must be in \[0, 1\)"):
            flips_by_id(["a"], fraction, seed=0)


IDS = [f"hh-{i:05d}" for i in range(5000)]


def test_a_pairs_flip_depends_only_on_its_id_and_seed() -> None:
    full = flips_by_id(IDS, 0.2, seed=7)
    rng = np.random.default_rng(0)
    subset = rng.choice(len(IDS), size=700, replace=False)  # a random subset, shuffled
    assert (flips_by_id([IDS[i] for i in subset], 0.2, seed=7) == full[subset]).all()
    assert flips_by_id([IDS[42]], 0.2, seed=7)[0] == full[42]
    assert (flips_by_id(IDS, 0.2, seed=7) == full).all()


def test_about_the_fraction_is_flipped() -> None:
    # Binomial(5000, p): standard deviation at most 35; allow four of them.
    for fraction in (0.05, 0.2, 0.45):
        assert abs(flips_by_id(IDS, fraction, seed=1).sum() - fraction * 5000) < 140
    assert not flips_by_id(IDS, 0.0, seed=1).any()
    assert flips_by_id([], 0.3, seed=1).shape == (0,)


def test_a_larger_fraction_flips_a_superset() -> None:
    # The hash is compared against the fraction, so raising it only adds pairs.
    low, high = flips_by_id(IDS, 0.1, seed=3), flips_by_id(IDS, 0.3, seed=3)
    assert not (low & ~high).any() and high.sum() > low.sum()


def test_seeds_give_unrelated_flips() -> None:
    a, b = flips_by_id(IDS, 0.2, seed=1), flips_by_id(IDS, 0.2, seed=2)
    # Independent 20% draws overlap on about 4% of pairs, not 20%.
    assert 0.02 < (a & b).mean() < 0.06


def test_ids_that_are_not_plain_text_still_hash() -> None:
    # A lone surrogate (from a JSON file's "\ud800") is no reason to crash.
    flags = flips_by_id(["\ud800", "é", ""], 0.999, seed=0)
    assert flags.shape == (3,)
    assert flips_by_id(["\ud800"], 0.5, seed=0)[0] == flips_by_id(["\ud800", "x"], 0.5,
                                                                     seed=0)[0]


def _dataset() -> Any:
    from datasets import Dataset

    return Dataset.from_dict({"id": [f"p{i}" for i in range(40)],
                              "chosen": [f"good {i}" for i in range(40)],
                              "rejected": [f"bad {i}" for i in range(40)]})


def test_swap_labels_swaps_exactly_the_masked_pairs() -> None:
    mask = np.zeros(40, dtype=bool)
    mask[[3, 17, 38]] = True
    out = swap_labels(_dataset(), mask)
    assert out["injected_flip"] == mask.tolist()
    for i, row in enumerate(out):
        good, bad = f"good {i}", f"bad {i}"
        assert (row["chosen"], row["rejected"]) == ((bad, good) if mask[i] else (good, bad))


def test_inject_flips_swaps_the_pairs_their_ids_choose(caplog: pytest.LogCaptureFixture) -> None:
    ds = _dataset()
    with caplog.at_level(logging.INFO, logger="rewardlab"):
        out = inject_flips(ds, 0.3, seed=4)
    expected = flips_by_id(ds["id"], 0.3, seed=4)
    assert out["injected_flip"] == expected.tolist()
    assert [c.startswith("bad") for c in out["chosen"]] == expected.tolist()
    ours = [r.getMessage() for r in caplog.records if r.name == "rewardlab"]
    assert ours == [f"injected {int(expected.sum())} label flips (seed 4)"]
    # No noise asked: the data set comes back untouched, without the extra column.
    assert inject_flips(ds, 0.0, seed=4) is ds
