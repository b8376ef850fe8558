"""A saved ensemble as a TRL reward function (``GRPOTrainer(reward_funcs=...)``, RLOO, ...).

TRL calls each custom reward function as (``trl/trainer/grpo_trainer.py``,
``GRPOTrainer._calculate_rewards``)::

    reward_func(prompts=prompts, completions=completions, completion_ids=completion_ids_list,
                **reward_kwargs)

where ``reward_kwargs`` holds every other dataset column as a list (one value per completion)
plus ``trainer_state``, and reads ``reward_func.__name__`` to name its logged metric. Prompts
and completions are strings, or for a conversational dataset lists of ``{role, content}``
messages, the completion being ``[{"role": "assistant", "content": text}]``. It expects one
float per completion back.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

from rewardlab.serve.ensemble import RewardStats, select_reward, served_reward
from rewardlab.serve.scorer import EnsembleScorer

__all__ = ["RewardFunction"]


class RewardFunction:
    """``RewardFunction(path, penalty=1.0, reward="uwo")(prompts, completions, **kwargs)``.

    Args:
        path: a model folder written by ``rewardlab train`` (either backend).
        penalty: λ of ``uwo`` = mean - λ·variance over members.
        reward: which reward to return: ``mean``, ``uwo`` or ``min``. A one-member model has
            no uncertainty, so ``uwo`` and ``min`` fall back to ``mean`` (with a warning, once;
            :attr:`reward` says which is returned).
        batch_size: items per forward pass.

    After each call, :attr:`last` holds the full statistics (mean, std, members, uwo, min) of
    the completions just scored, for logging.
    """

    def __init__(self, path: str | os.PathLike[str], *, penalty: float = 1.0,
                 reward: str = "uwo", batch_size: int = 64) -> None:
        self.scorer = EnsembleScorer.load(path, penalty=penalty, progress=False,
                                          feature_cache=False)
        self.reward, warning = served_reward(reward, self.scorer.members)
        if warning:  # once, here: a training loop calls this thousands of times
            warnings.warn(warning, UserWarning, stacklevel=2)
        self.batch_size = batch_size
        self.__name__ = f"rewardlab_{self.reward}"  # TRL names the logged reward after this
        self.last: RewardStats | None = None

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any],
                 completion_ids: Sequence[Any] | None = None, **kwargs: Any) -> list[float]:
        """One reward per completion; dataset columns and ``trainer_state`` are ignored."""
        from rewardlab.data.responses import render_conversation
        from rewardlab.serve.ensemble import reward_statistics

        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        texts = [render_conversation(p, c) for p, c in zip(prompts, completions)]
        rewards = self.scorer.rewards_in_chunks([p for p, _ in texts], [r for _, r in texts],
                                                chunk=self.batch_size)
        self.last = reward_statistics(rewards, penalty=self.scorer.penalty)
        return [float(x) for x in select_reward(self.last, self.reward)]
