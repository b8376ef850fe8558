"""rewardlab: reward modeling from human preference data.

Find the preference pairs that are wrong or ambiguous (preference strength from a reward-model
ensemble), and train reward models that stay good despite them (flip, drop, label smoothing,
adaptive margin), after Wang et al. (2024), "Secrets of RLHF in Large Language Models Part II".
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Public names, imported lazily so that `import rewardlab` stays fast (no torch at import).
_LAZY = {
    "load_preferences": "rewardlab.data",
    "read_preferences": "rewardlab.data",
    "split_train_valid": "rewardlab.data",
    "preference_loss": "rewardlab.losses",
    "strength_statistics": "rewardlab.strength",
    "denoise": "rewardlab.denoise",
    "preference_metrics": "rewardlab.evaluation",
    "build_reward_model": "rewardlab.models",
    "load_reward_model": "rewardlab.models",
    "Pairs": "rewardlab.models",
    "RewardFunction": "rewardlab.serve.function",
}

__all__ = [*sorted(_LAZY), "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rewardlab' has no attribute {name!r}")
