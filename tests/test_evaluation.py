"""Metrics on hand-made reward differences."""

import warnings

import numpy as np
import pytest
import torch

from rewardlab.evaluation import (
    accuracy,
    expected_calibration_error,
    paired_bootstrap,
    preference_metrics,
)


def test_accuracy_counts_ties_wrong() -> None:
    assert accuracy(np.array([1.0, 0.0, -1.0, 2.0])) == 0.5
    assert accuracy(np.zeros(5)) == 0.0


def test_ece_by_hand() -> None:
    # Δ = ln 3 -> σ = 0.75, confidence 0.75, correct. Δ = -ln 3 -> confidence 0.75, wrong.
    d = np.array([np.log(3), np.log(3), np.log(3), -np.log(3)])
    # one bin at 0.75 with accuracy 3/4: gap 0
    assert expected_calibration_error(d) == pytest.approx(0.0, abs=1e-12)
    # all correct at confidence 0.75: gap 0.25
    assert expected_calibration_error(np.full(4, np.log(3))) == pytest.approx(0.25)


def test_ensemble_metrics_and_sources() -> None:
    delta = np.array([[1.0, -1.0, 2.0, 0.5], [1.0, 3.0, -4.0, 0.5]])
    m = preference_metrics(delta, source=["a", "a", "b", "b"])
    # mean Δ = [1, 1, -1, 0.5] -> 3 of 4 correct
    assert m["accuracy"] == 0.75
    assert m["member_accuracy"] == [0.75, 0.75]
    assert m["accuracy_by_source"] == {"a": {"n": 2, "accuracy": 1.0},
                                       "b": {"n": 2, "accuracy": 0.5}}
    assert m["members"] == 2 and m["n"] == 4
    assert m["mean_delta"] == pytest.approx(0.375)


RNG = np.random.default_rng(5)


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def test_accuracy_of_tensors_unsorted_and_empty() -> None:
    d = torch.tensor([-0.5, 2.0, 0.0, 1e-9, -3.0])
    assert accuracy(d) == pytest.approx(0.4)
    assert accuracy(d[torch.randperm(5)]) == pytest.approx(0.4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nan by design, not numpy's "mean of empty slice"
        assert np.isnan(accuracy(np.array([])))


# Confidence (right or wrong): 0.62 (right) twice, 0.87 (wrong), 0.88 (right), 0.5 (a tie:
# wrong), 1.0 (wrong), 0.57 (right). Gaps of opposite sign share some bins, so merging bins
# changes the ECE.
ECE_DELTA = np.array([_logit(0.62), _logit(0.62), -_logit(0.87), _logit(0.88), 0.0, -40.0,
                      _logit(0.57)])


def test_ece_with_ten_bins_by_hand() -> None:
    # Bins of width 0.05, each adding n_bin / 7 · |mean confidence - accuracy|:
    # [0.5, 0.55): |0.5 - 0|; [0.55, 0.6): |0.57 - 1|; [0.6, 0.65): 2 · |0.62 - 1|;
    # [0.85, 0.9): 2 · |0.875 - 1/2|; [0.95, 1] holds confidence 1.0: |1 - 0|.
    expected = (0.5 + 0.43 + 2 * 0.38 + 2 * 0.375 + 1.0) / 7
    assert expected_calibration_error(ECE_DELTA) == pytest.approx(expected, rel=1e-9)
    assert expected_calibration_error(ECE_DELTA, bins=10) == pytest.approx(expected, rel=1e-9)
    perm = RNG.permutation(7)
    assert expected_calibration_error(ECE_DELTA[perm]) == pytest.approx(expected, rel=1e-9)


def test_ece_bins_by_hand() -> None:
    # One bin: |5.06 / 7 - 4 / 7|.
    assert expected_calibration_error(ECE_DELTA, bins=1) == pytest.approx(1.06 / 7, rel=1e-9)
    # Two bins, [0.5, 0.75) and [0.75, 1]: {0.5, 0.57, 0.62, 0.62} with 3 right,
    # {0.87, 0.88, 1.0} with 1 right.
    two = 4 / 7 * abs(2.31 / 4 - 3 / 4) + 3 / 7 * abs(2.75 / 3 - 1 / 3)
    assert expected_calibration_error(ECE_DELTA, bins=2) == pytest.approx(two, rel=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(expected_calibration_error(np.array([])))


def test_ece_default_is_ten_bins() -> None:
    # 0.555 (right) and 0.595 (wrong) share [0.55, 0.6) of ten bins: |0.575 - 1/2|. Eleven bins
    # would part them: (0.445 + 0.595) / 2.
    d = np.array([_logit(0.555), -_logit(0.595)])
    assert expected_calibration_error(d) == pytest.approx(0.075, rel=1e-9)


def test_ece_stays_finite_for_huge_deltas() -> None:
    with np.errstate(all="raise"):
        assert expected_calibration_error(np.array([1e6, -1e6])) == pytest.approx(0.5)


def test_metrics_by_hand() -> None:
    delta = np.array([[1.0, -1.0, 2.0, 0.5], [1.0, 3.0, -4.0, 0.5]])
    m = preference_metrics(delta)
    mean = np.array([1.0, 1.0, -1.0, 0.5])
    assert m["bt_loss"] == pytest.approx(float(np.mean(np.log1p(np.exp(-mean)))), rel=1e-6)
    assert m["ece"] == pytest.approx(expected_calibration_error(mean), rel=1e-6)
    assert m["member_accuracy_mean"] == 0.75
    assert "accuracy_by_source" not in m


def test_metrics_of_one_member_and_bad_shapes() -> None:
    m = preference_metrics(np.array([2.0, -1.0, 0.0]))
    assert m["members"] == 1 and m["n"] == 3
    assert m["accuracy"] == pytest.approx(1 / 3) and m["member_accuracy"] == [pytest.approx(1 / 3)]
    assert m["mean_delta"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match=r"\[N\] or \[M, N\]"):
        preference_metrics(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="source has 2 entries for 3 pairs"):
        preference_metrics(np.array([2.0, -1.0, 0.0]), source=["a", "b"])


def test_metrics_of_no_pairs_are_nan() -> None:
    m = preference_metrics(np.zeros((2, 0)))
    assert m["n"] == 0 and m["members"] == 2
    for key in ("accuracy", "mean_delta", "bt_loss", "ece"):
        assert np.isnan(m[key]), key


def test_accuracy_by_source_on_shuffled_pairs() -> None:
    # Sources given as numbers come back as strings, sorted; each source's accuracy by hand.
    delta = np.array([0.5, -1.0, 2.0, 0.0, 3.0, -0.5, 1.0])
    source = [2, 1, 2, 1, 10, 2, 10]
    m = preference_metrics(delta, source=source)
    assert list(m["accuracy_by_source"]) == ["1", "10", "2"]
    assert m["accuracy_by_source"] == {"1": {"n": 2, "accuracy": 0.0},
                                       "10": {"n": 2, "accuracy": 1.0},
                                       "2": {"n": 3, "accuracy": pytest.approx(2 / 3)}}
    perm = RNG.permutation(7)
    shuffled = preference_metrics(delta[perm], source=[source[i] for i in perm])
    assert shuffled["accuracy_by_source"] == m["accuracy_by_source"]


def test_paired_bootstrap_gain_by_hand() -> None:
    # Per-pair correctness as a share of seeds: differences 0.5, 0.5, 0, 1 -> gain 0.5.
    out = paired_bootstrap(np.array([0.5, 1.0, 0.0, 1.0]), np.array([0.0, 0.5, 0.0, 0.0]))
    assert out["gain"] == pytest.approx(0.5) and out["n"] == 4
    low, high = out["ci95"]
    assert 0.0 <= low <= 0.5 <= high <= 1.0
    # Every pair gains the same: every resample has that mean.
    same = paired_bootstrap(np.ones(30), np.zeros(30))
    assert same == {"gain": 1.0, "ci95": [1.0, 1.0], "n": 30, "seeds": 1}
    assert paired_bootstrap(np.ones(1), np.zeros(1)) == {"gain": 1.0, "ci95": [1.0, 1.0], "n": 1,
                                                                   "seeds": 1}
    # Two pairs gaining 1 and 0: a resample's mean is 0, 1/2 or 1 with chance 1/4, 1/2, 1/4, so
    # the 2.5th and 97.5th percentiles of 2000 resamples are 0 and 1 (each pair is drawn).
    assert paired_bootstrap(np.array([1.0, 0.0]), np.zeros(2))["ci95"] == [0.0, 1.0]
    assert paired_bootstrap(np.array([0.0, 1.0]), np.zeros(2))["ci95"] == [0.0, 1.0]


@pytest.mark.parametrize("chunk", [200, 7])
def test_paired_bootstrap_interval_matches_the_normal_approximation(chunk: int) -> None:
    # 100 of 400 pairs gain 1, the rest 0: mean 0.25, standard error sqrt(0.25 · 0.75 / 400)
    # = 0.02165, so the 95% interval is about 0.25 ± 1.96 · 0.02165 = [0.2076, 0.2924].
    correct = np.r_[np.ones(100), np.zeros(300)]
    correct = correct[RNG.permutation(400)]
    out = paired_bootstrap(correct, np.zeros(400), chunk=chunk)
    assert out["gain"] == pytest.approx(0.25)
    assert out["ci95"] == pytest.approx([0.2076, 0.2924], abs=0.01)
    assert out == paired_bootstrap(correct, np.zeros(400), chunk=chunk)  # seeded


def test_paired_bootstrap_seed_samples_and_edges() -> None:
    correct = (RNG.random(200) < 0.6).astype(float)
    reference = (RNG.random(200) < 0.5).astype(float)
    assert (paired_bootstrap(correct, reference, seed=1)["ci95"]
            != paired_bootstrap(correct, reference, seed=2)["ci95"])
    # One resample: the interval is that resample's mean at both ends.
    low, high = paired_bootstrap(correct, reference, samples=1)["ci95"]
    assert low == high
    empty = paired_bootstrap(np.array([]), np.array([]))
    assert empty["n"] == 0 and np.isnan(empty["gain"]) and all(np.isnan(empty["ci95"]))
    with pytest.raises(ValueError, match=r"must both be \[N\] or \[S, N\]"):
        paired_bootstrap(np.ones((2, 3, 1)), np.zeros((2, 3, 1)))


def test_seed_spread_is_the_sample_std() -> None:
    from rewardlab.evaluation import seed_spread

    # Values 1, 2, 3: mean 2, sample variance (1 + 0 + 1) / 2 = 1.
    assert seed_spread([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert seed_spread([0.7]) == (0.7, 0.0)


def test_paired_bootstrap_over_seeds_widens_with_seed_spread() -> None:
    # Two seeds that disagree completely: seed 0 gains on every pair, seed 1 on none. Over pairs
    # alone the seed-average gain is 0.5 everywhere (a zero-width interval); resampling the seeds
    # too puts all-seed-0 and all-seed-1 draws (gain 1 and 0) in the distribution.
    method = np.stack([np.ones(40), np.zeros(40)])
    base = np.zeros((2, 40))
    pairs_only = paired_bootstrap(method.mean(axis=0), base.mean(axis=0))
    assert pairs_only["ci95"] == [0.5, 0.5]
    both = paired_bootstrap(method, base)
    assert both["gain"] == 0.5 and both["seeds"] == 2
    assert both["ci95"][0] == 0.0 and both["ci95"][1] == 1.0
    with pytest.raises(ValueError, match=r"\[N\] or \[S, N\]"):
        paired_bootstrap(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))


def test_pick_stability_by_hand() -> None:
    from rewardlab.evaluation import pick_stability

    # "a" is right on every pair, "b" on none: a wins every resample.
    shares = pick_stability({"a": np.ones(10), "b": np.zeros(10)}, samples=50)
    assert shares == {"a": 1.0, "b": 0.0}
    # Identical methods split every resample evenly.
    same = pick_stability({"a": np.ones(5), "b": np.ones(5)}, samples=20)
    assert same == {"a": 0.5, "b": 0.5}
    # Two close methods on few pairs: neither is a sure pick.
    rng = np.random.default_rng(0)
    close = pick_stability({"a": rng.random(48) < 0.6, "b": rng.random(48) < 0.58})
    assert 0.1 < close["a"] < 0.9
