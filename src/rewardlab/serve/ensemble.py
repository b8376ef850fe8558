"""From an ensemble's rewards to the rewards a training loop uses. Pure: arrays in, arrays out.

Conventions: ``rewards`` is ``[M, N]`` (members first, items second), ``rewards[m, i]`` being
member m's reward of item i (a prompt and one response); higher is better.

Per item, over the M members:

* ``mean``: r̄ = (1/M) Σ_m r_m
* ``std``: σ̂ = sqrt((1/M) Σ_m (r_m - r̄)²), the *population* std (as ``strength_std``)
* ``uwo``: r̄ - λ·σ̂², uncertainty-weighted optimization (Coste et al., ICLR 2024): the mean
  minus λ times the population *variance*, so items the members disagree on are worth less
* ``min``: min_m r_m, worst-case optimization (WCO, same paper)

UWO and WCO curb reward over-optimization only as far as the members disagree where the model is
wrong; see BENCHMARKS.md ("Is the uncertainty worth serving?") for what σ̂ is worth here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

__all__ = ["REWARD_KINDS", "RewardKind", "RewardStats", "reward_statistics", "select_reward",
           "served_reward"]

RewardKind = Literal["mean", "uwo", "min"]
REWARD_KINDS: tuple[str, ...] = get_args(RewardKind)


@dataclass(frozen=True)
class RewardStats:
    """Per-item statistics of an ensemble's rewards, each ``[N]`` (``members`` is ``[M, N]``)."""

    mean: np.ndarray
    std: np.ndarray
    uwo: np.ndarray
    min: np.ndarray
    members: np.ndarray
    penalty: float
    """λ of ``uwo``."""

    def __len__(self) -> int:
        return int(self.mean.shape[0])

    def subset(self, start: int, stop: int) -> RewardStats:
        """Items ``start`` to ``stop`` (exclusive)."""
        return RewardStats(self.mean[start:stop], self.std[start:stop], self.uwo[start:stop],
                           self.min[start:stop], self.members[:, start:stop], self.penalty)


def reward_statistics(rewards: np.ndarray, *, penalty: float) -> RewardStats:
    """Mean, population std, UWO (mean - ``penalty``·variance) and min over members.

    Args:
        rewards: ``[M, N]`` rewards, M >= 1 (with M = 1, std is 0 and uwo equals the mean).
        penalty: λ >= 0 of UWO.

    Raises:
        ValueError: on another shape, a negative or non-finite λ, or non-finite rewards (a
            reward model that returns NaN must not feed a training loop silently).
    """
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] < 1:
        raise ValueError(f"rewards must be [M, N] with M >= 1, got shape {r.shape}")
    if not (np.isfinite(penalty) and penalty >= 0):
        raise ValueError(f"the uncertainty penalty must be finite and >= 0, got {penalty}")
    if not np.isfinite(r).all():
        raise ValueError("the reward model returned NaN or infinite rewards")
    mean = r.mean(axis=0)
    var = ((r - mean) ** 2).mean(axis=0)
    return RewardStats(mean=mean, std=np.sqrt(var), uwo=mean - penalty * var,
                       min=r.min(axis=0), members=r, penalty=float(penalty))


def select_reward(stats: RewardStats, kind: str) -> np.ndarray:
    """The ``[N]`` rewards of ``kind``: ``mean``, ``uwo`` or ``min``."""
    if kind not in REWARD_KINDS:
        raise ValueError(f"unknown reward {kind!r}; choose one of {', '.join(REWARD_KINDS)}")
    return getattr(stats, kind)


def served_reward(kind: str, members: int) -> tuple[str, str | None]:
    """The reward kind to serve for ``kind`` asked of an ``members``-member model, and the
    warning to give once when it differs.

    With one member σ̂ is 0, so ``uwo`` and ``min`` *are* the mean: serving them under their
    own names would promise an uncertainty penalty that does not exist. They fall back to
    ``mean``, said once, at start (refusing would stop an RL job over a name).
    """
    if kind not in REWARD_KINDS:
        raise ValueError(f"unknown reward {kind!r}; choose one of {', '.join(REWARD_KINDS)}")
    if members > 1 or kind == "mean":
        return kind, None
    return "mean", (f"the model has one member (M=1): no uncertainty, so '{kind}' equals the "
                    f"mean; serving 'mean'. Train an ensemble (--members, or run's "
                    f"--final-members) for uwo and min to mean anything")
