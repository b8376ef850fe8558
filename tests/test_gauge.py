"""The gauge (self-test) and the noise floor's posterior: by hand and on known flips."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardlab.denoise import bind_floor, denoise, resolve_plan
from rewardlab.gauge import INSTRUMENT_MIN_AUROC, auroc_interval, instrument_summary
from rewardlab.strength import NoiseFloor, auroc, estimate_noise_rate, fit_noise_floor


def _floor_data(n: int, eta: float, c: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """û drawn from the floor model itself: |û| ~ |N(1, 1)|, the model errs with σ(-c|û|), and
    a label is wrong with probability eta. Returns û and the wrong-label mask."""
    rng = np.random.default_rng(seed)
    x = np.abs(rng.normal(1.0, 1.0, n))
    own = rng.random(n) < 1.0 / (1.0 + np.exp(c * x))
    wrong = rng.random(n) < eta
    return np.where(own ^ wrong, -x, x), wrong


def test_posterior_by_hand() -> None:
    # η = 0.2, c = 2: odds = 0.25·e^(-2û); at û = 0: 0.2; at û = -1: 0.25e²/(1 + 0.25e²).
    floor = NoiseFloor(eta=0.2, slope=2.0, evidence=100.0, n=1000)
    p = floor.posterior(np.array([0.0, -1.0, 1.0]))
    odds = 0.25 * math.exp(2.0)
    assert p[0] == pytest.approx(0.2)
    assert p[1] == pytest.approx(odds / (1 + odds))
    assert p[2] == pytest.approx((0.25 / math.e**2) / (1 + 0.25 / math.e**2))


def test_posterior_is_zero_without_evidence_or_with_a_blind_instrument() -> None:
    u = np.array([-3.0, 0.5])
    assert not NoiseFloor(0.2, 2.0, 1.0, 1000).posterior(u).any()  # LR gain below 3.32
    blind = NoiseFloor(0.2, 2.0, 100.0, 1000, instrument_ok=False)
    assert not blind.posterior(u).any() and blind.rate == 0.0
    assert blind.status == "no evidence"
    assert NoiseFloor(0.0, 2.0, 0.0, 1000, instrument_ok=True).status == "clean"
    assert NoiseFloor(0.0, 2.0, 0.0, 1000).status == "no evidence"  # never tested
    assert NoiseFloor(0.2, 2.0, 100.0, 1000, instrument_ok=True).status == "estimated"


def test_posterior_is_calibrated_on_data_from_the_floor_model() -> None:
    u, wrong = _floor_data(20000, 0.2, 2.0, seed=0)
    fitted = fit_noise_floor(u)
    assert fitted.eta == pytest.approx(0.2, abs=0.03)
    assert fitted.slope == pytest.approx(2.0, rel=0.2)
    # With the model's own parameters, P(wrong | û) matches the share of wrong labels.
    p = NoiseFloor(0.2, 2.0, 100.0, u.size).posterior(u)
    for lo, hi in ((0.0, 0.2), (0.2, 0.5), (0.5, 0.8), (0.8, 1.0)):
        sel = (p >= lo) & (p < hi)
        assert abs(wrong[sel].mean() - p[sel].mean()) < 0.05


def test_estimate_noise_rate_is_the_floor_rate() -> None:
    u, _ = _floor_data(3000, 0.15, 2.0, seed=1)
    assert estimate_noise_rate(u) == fit_noise_floor(u).rate > 0


def test_floor_round_trips_through_a_dict() -> None:
    floor = NoiseFloor(0.1, 3.0, 9.0, 50, instrument_ok=True)
    assert NoiseFloor.from_dict(floor.to_dict()) == floor


def test_flip_and_soft_at_posterior_by_hand() -> None:
    floor = NoiseFloor(eta=0.2, slope=2.0, evidence=100.0, n=1000)
    u = np.array([-2.0, -1.0, -0.5, 0.0, 1.0])
    p = floor.posterior(u)  # > 0.5 where û < logit(0.2)/2 = -0.693; P(-1) = σ(0.614) = 0.649
    flip = denoise(u, bind_floor(resolve_plan("flip@posterior"), floor))
    assert flip.flipped.tolist() == [True, True, False, False, False]
    assert flip.target.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    soft = denoise(u, bind_floor(resolve_plan("soft@posterior"), floor),
                   label_target=np.array([1.0, 1.0, 1.0, 0.5, 1.0]))
    np.testing.assert_allclose(soft.target, [1 - p[0], 1 - p[1], 1 - p[2], 0.5, 1 - p[4]])
    assert soft.counts()["noise"] == "estimated"


def test_auto_and_posterior_methods_train_the_baseline_when_the_instrument_is_blind() -> None:
    u, _ = _floor_data(2000, 0.3, 2.0, seed=2)
    blind = dataclass_replace(fit_noise_floor(u), instrument_ok=False)
    for method in ("flip@auto", "drop@auto", "flip@posterior", "soft@posterior"):
        res = denoise(u, bind_floor(resolve_plan(method), blind))
        assert res.keep.all() and not res.flipped.any() and (res.target == 1).all(), method
        assert res.counts()["noise"] == "no evidence"
    # The same floor from a trusted instrument acts.
    trusted = dataclass_replace(blind, instrument_ok=True)
    assert denoise(u, bind_floor(resolve_plan("flip@posterior"), trusted)).flipped.any()


def dataclass_replace(floor: NoiseFloor, **changes: object) -> NoiseFloor:
    import dataclasses

    return dataclasses.replace(floor, **changes)


def test_posterior_names_parse_and_refuse_misuse() -> None:
    assert resolve_plan("soft").posterior == "soft"
    plan = resolve_plan("flip@posterior")
    assert plan.posterior == "flip" and plan.flip == 0 and plan.reads_floor
    with pytest.raises(ValueError, match="@posterior works with flip and soft"):
        resolve_plan("drop@posterior")
    with pytest.raises(ValueError, match="soft takes @posterior only"):
        resolve_plan("soft@0.2")


def test_auroc_interval_holds_the_point_and_narrows_with_data() -> None:
    rng = np.random.default_rng(0)
    widths = []
    for n in (200, 5000):
        y = rng.random(n) < 0.2
        s = rng.normal(0, 1, n) + y
        low, high = auroc_interval(s, y, seed=0)
        assert low < auroc(s, y) < high
        assert (low > 0.70 and high < 0.82) or n == 200  # the truth: Φ(1/√2) ≈ 0.760
        widths.append(high - low)
    assert widths[1] < widths[0] / 3
    assert all(np.isnan(auroc_interval(np.ones(3), np.zeros(3, bool))))


def test_instrument_summary_by_hand() -> None:
    # 10 pairs, the two flipped ones have the lowest û: perfect detection.
    u = np.array([-2.0, -1.0, 0.5, 1, 2, 3, 4, 5, 6, 7])
    f = np.zeros(10, bool)
    f[:2] = True
    s = instrument_summary(u, f, rate=0.2)
    assert s["auroc"] == 1.0 and s["flipped"] == 2
    assert s["precision_lowest_10"] == 1.0 and s["precision_lowest_20"] == 1.0
    assert s["enrichment_lowest_20"] == pytest.approx(5.0)  # 1.0 / 0.2
    assert s["oof_accuracy"] == 1.0  # every û agrees with the label before the flips
    # The verdict compares the interval's low end with the threshold.
    assert s["ok"] == (s["auroc_ci95"][0] >= INSTRUMENT_MIN_AUROC)


def test_instrument_verdict_on_a_blind_and_a_sharp_ensemble() -> None:
    rng = np.random.default_rng(3)
    f = rng.random(3000) < 0.1
    blind = instrument_summary(rng.normal(0, 1, 3000), f, rate=0.1)
    assert not blind["ok"] and "too weak to act on" in blind["verdict"]
    sharp = instrument_summary(rng.normal(1, 1, 3000) - 3 * f, f, rate=0.1)
    assert sharp["ok"] and "strong enough" in sharp["verdict"]
    assert sharp["enrichment_lowest_20"] > 3


def test_adjusted_auroc_undoes_the_attenuation_by_hand() -> None:
    from rewardlab.gauge import _adjusted

    # Flips at r = 0.1 on data with w = 0.2 leave 0.2 + 0.1·0.6 = 0.26 wrong on the copy; an
    # instrument of AUROC 0.8 then reads 0.5 + 0.3·0.6 = 0.68 in the self-test.
    out = _adjusted(0.68, 0.26, 0.1)
    assert out["data_noise_estimate"] == pytest.approx(0.2)
    assert out["adjusted_auroc"] == pytest.approx(0.8)
    # No rate above the flips' own: nothing to undo.
    assert _adjusted(0.68, 0.08, 0.1) == {"data_noise_estimate": None, "adjusted_auroc": None}


def test_self_test_attenuation_follows_the_formula_on_simulated_data() -> None:
    # An instrument of AUROC A between wrong and right labels; data with w = 0.3 wrong. The
    # self-test's flips (10%) are found at 0.5 + (A - 0.5)(1 - 2w), not at A.
    rng = np.random.default_rng(5)
    n, w = 8000, 0.3
    wrong = rng.random(n) < w
    flip = rng.random(n) < 0.1
    wrong_in_copy = wrong ^ flip
    u = rng.normal(1.0, 1.0, n) - 2.0 * wrong_in_copy  # low û where the copy's label is wrong
    a = auroc(-u, wrong_in_copy)
    seen = instrument_summary(u, flip, rate=0.1)["auroc"]
    assert seen == pytest.approx(0.5 + (a - 0.5) * (1 - 2 * w), abs=0.02)
