"""Metrics on hand-made reward differences."""

import numpy as np
import pytest
import torch

from rewardlab.evaluation import accuracy, expected_calibration_error, preference_metrics


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
    assert np.isnan(accuracy(np.array([])))


# Confidences 0.62 (right), 0.62 (wrong), 0.87 (right), 0.5 (a tie: wrong), 1.0 (wrong).
ECE_DELTA = np.array([_logit(0.62), -_logit(0.62), _logit(0.87), 0.0, -40.0])


def test_ece_with_several_bins_by_hand() -> None:
    # Ten bins of width 0.05: [0.6, 0.65) holds 2 pairs, |0.62 - 1/2| -> 2/5 · 0.12; [0.85, 0.9)
    # |0.87 - 1| -> 1/5 · 0.13; [0.5, 0.55) |0.5 - 0| -> 1/5 · 0.5; the last bin includes
    # confidence 1.0: |1 - 0| -> 1/5 · 1.
    expected = 0.4 * 0.12 + 0.2 * 0.13 + 0.2 * 0.5 + 0.2 * 1.0
    assert expected_calibration_error(ECE_DELTA) == pytest.approx(expected, rel=1e-9)
    perm = RNG.permutation(5)
    assert expected_calibration_error(ECE_DELTA[perm]) == pytest.approx(expected, rel=1e-9)


def test_ece_bins_by_hand() -> None:
    # One bin: |mean confidence - accuracy| = |3.61 / 5 - 2 / 5|.
    assert expected_calibration_error(ECE_DELTA, bins=1) == pytest.approx(0.322, rel=1e-9)
    # Two bins, [0.5, 0.75) and [0.75, 1]: {0.62, 0.62, 0.5} with 1 right, {0.87, 1.0} with 1.
    two = 0.6 * abs(1.74 / 3 - 1 / 3) + 0.4 * abs(1.87 / 2 - 1 / 2)
    assert expected_calibration_error(ECE_DELTA, bins=2) == pytest.approx(two, rel=1e-9)
    assert np.isnan(expected_calibration_error(np.array([])))


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
