"""Known noise injection."""

import numpy as np
import pytest

from rewardlab.noise import choose_flips


def test_exact_count_and_determinism() -> None:
    a = choose_flips(1000, 0.2, seed=3)
    assert a.sum() == 200
    assert (a == choose_flips(1000, 0.2, seed=3)).all()
    assert not (a == choose_flips(1000, 0.2, seed=4)).all()


def test_near_tie_concentrates_on_small_gaps() -> None:
    gap = np.linspace(-5, 5, 2000)
    flips = choose_flips(2000, 0.2, seed=0, kind="near-tie", gap=gap)
    assert flips.sum() == 400
    assert np.abs(gap[flips]).mean() < 0.6 * np.abs(gap[~flips]).mean()


def test_errors() -> None:
    with pytest.raises(ValueError, match="uniform, near-tie"):
        choose_flips(10, 0.1, seed=0, kind="other")
    with pytest.raises(ValueError, match="gap"):
        choose_flips(10, 0.1, seed=0, kind="near-tie")
