"""Reward-model backends behind one protocol (see :mod:`rewardlab.models.base`)."""

from rewardlab.models.base import (
    FitResult,
    Pairs,
    RewardModel,
    build_reward_model,
    load_reward_model,
    member_seed,
)

__all__ = ["FitResult", "Pairs", "RewardModel", "build_reward_model", "load_reward_model",
           "member_seed"]
