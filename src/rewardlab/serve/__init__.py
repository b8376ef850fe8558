"""Serving an ensemble's rewards, with their uncertainty, to RLHF training loops.

* :mod:`.ensemble` (pure): ``[M, N]`` rewards -> mean, population std, UWO (mean - λ·variance)
  and min per item.
* :mod:`.batching`: dynamic batching of concurrent requests under a token budget.
* :mod:`.scorer`: a saved model (either backend) that scores (prompt, response) items.
* :mod:`.requests` (pure): request checks with 4xx answers.
* :mod:`.app`, :mod:`.server`: the FastAPI app and its uvicorn runner (``rewardlab serve``);
  the only modules that need the ``serve`` extra (``pip install 'rewardlab[serve]'``).
* :mod:`.function`: :class:`RewardFunction`, a reward function in TRL's calling convention.

Importing this package imports neither FastAPI nor torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EnsembleScorer", "RewardFunction", "RewardStats", "reward_statistics"]

_LAZY = {
    "EnsembleScorer": "rewardlab.serve.scorer",
    "RewardFunction": "rewardlab.serve.function",
    "RewardStats": "rewardlab.serve.ensemble",
    "reward_statistics": "rewardlab.serve.ensemble",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rewardlab.serve' has no attribute {name!r}")
