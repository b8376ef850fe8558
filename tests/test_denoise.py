"""Denoising plans on hand-made strength arrays."""

import numpy as np
import pytest

from rewardlab.denoise import PRESETS, DenoisePlan, denoise, resolve_plan

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
    with pytest.raises(ValueError, match="no knob"):
        resolve_plan("baseline@0.1")
    with pytest.raises(ValueError, match="number"):
        resolve_plan("flip@lots")
