"""Metrics on hand-made reward differences."""

import numpy as np
import pytest

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
