"""Strength statistics, ranks, groups, categories, AUROC and Spearman on hand-made arrays."""

import numpy as np
import pytest

from rewardlab.strength import (
    auroc,
    categorize,
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
    with pytest.raises(ValueError, match="NaN"):
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
