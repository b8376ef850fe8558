"""The reward statistics: hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from rewardlab.config import ServeConfig, literal_choices
from rewardlab.serve.ensemble import REWARD_KINDS, reward_statistics, select_reward


def test_statistics_by_hand() -> None:
    # Item 0: members 1, 2, 3 -> mean 2, population variance 2/3; item 1: all 5 -> variance 0.
    rewards = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    s = reward_statistics(rewards, penalty=3.0)
    assert s.mean.tolist() == [2.0, 5.0]
    np.testing.assert_allclose(s.std, [np.sqrt(2 / 3), 0.0])
    np.testing.assert_allclose(s.uwo, [2.0 - 3.0 * 2 / 3, 5.0])  # mean - λ·variance
    assert s.min.tolist() == [1.0, 5.0]
    assert s.members.shape == (3, 2) and s.penalty == 3.0
    part = s.subset(1, 2)
    assert part.mean.tolist() == [5.0] and part.members.shape == (3, 1)


def test_one_member_has_no_uncertainty() -> None:
    s = reward_statistics(np.array([[0.5, -1.0]]), penalty=10.0)
    assert s.std.tolist() == [0.0, 0.0]
    assert s.uwo.tolist() == s.mean.tolist() == s.min.tolist() == [0.5, -1.0]


def test_zero_penalty_makes_uwo_the_mean() -> None:
    r = np.random.default_rng(0).normal(size=(5, 7))
    s = reward_statistics(r, penalty=0.0)
    np.testing.assert_array_equal(s.uwo, s.mean)
    assert np.all(s.min <= s.mean)


@pytest.mark.parametrize("bad, message", [
    (np.zeros(3), "must be \\[M, N\\]"),
    (np.zeros((0, 3)), "must be \\[M, N\\]"),
    (np.array([[1.0, np.nan]]), "NaN"),
    (np.array([[1.0, np.inf]]), "NaN or infinite"),
])
def test_bad_rewards_are_refused(bad: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        reward_statistics(bad, penalty=1.0)


@pytest.mark.parametrize("penalty", [-0.1, float("nan"), float("inf")])
def test_bad_penalty_is_refused(penalty: float) -> None:
    with pytest.raises(ValueError, match="penalty"):
        reward_statistics(np.zeros((2, 2)), penalty=penalty)


def test_select_reward() -> None:
    s = reward_statistics(np.array([[0.0], [2.0]]), penalty=1.0)
    assert select_reward(s, "mean").tolist() == [1.0]
    assert select_reward(s, "uwo").tolist() == [0.0]
    assert select_reward(s, "min").tolist() == [0.0]
    with pytest.raises(ValueError, match="choose one of mean, uwo, min"):
        select_reward(s, "max")


def test_server_choices_are_the_reward_kinds() -> None:
    assert literal_choices(ServeConfig, "reward") == REWARD_KINDS
