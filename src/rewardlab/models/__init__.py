"""Reward-model backends behind one protocol (:class:`RewardModel`), chosen by name.

:data:`BACKENDS` is the registry: ``--backend NAME`` picks ``BACKENDS[NAME]`` for building, and a
saved folder's ``rewardlab.json`` names the class that loads it. Stages hold a
:class:`RewardModel` and never ask which backend it is.
"""

from __future__ import annotations

import os

from rewardlab.config import ModelConfig, literal_choices
from rewardlab.models.base import (
    FitResult,
    Pairs,
    PreparedPairs,
    RewardModel,
    member_seed,
    read_model_info,
)
from rewardlab.models.embedding import EmbeddingRewardModel
from rewardlab.models.finetune import FinetuneRewardModel

__all__ = ["BACKENDS", "FitResult", "Pairs", "PreparedPairs", "RewardModel", "backend_class",
           "build_reward_model", "input_truncation", "load_reward_model", "member_seed",
           "prepare_pairs"]

BACKENDS: dict[str, type[RewardModel]] = {
    "embedding": EmbeddingRewardModel,
    "finetune": FinetuneRewardModel,
}
"""Backend name -> class. The names are exactly the choices of ``--backend``."""

assert tuple(BACKENDS) == literal_choices(ModelConfig, "backend"), "registry and --backend differ"


def backend_class(name: str) -> type[RewardModel]:
    """The class registered as ``name``, with an error listing the known names."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}") from None


def build_reward_model(config: ModelConfig, *, progress: bool = True) -> RewardModel:
    """An untrained reward model of ``config.backend``."""
    return backend_class(config.backend)(config, progress=progress)


def load_reward_model(path: str | os.PathLike[str], *, progress: bool = True) -> RewardModel:
    """Load a model saved by any backend's ``save``; the backend is read from ``rewardlab.json``
    (a clear error when it is missing, malformed or from a newer rewardlab)."""
    info = read_model_info(path)
    return backend_class(str(info.get("backend"))).load(path, progress=progress)


def prepare_pairs(config: ModelConfig, pairs: Pairs, *, progress: bool = True) -> PreparedPairs:
    """``pairs`` with the inputs every model of ``config``'s backend and encoding reads."""
    return PreparedPairs(pairs, build_reward_model(config, progress=progress).prepare(pairs))


def input_truncation(prepared: PreparedPairs) -> dict[str, int] | None:
    """How many of ``prepared``'s pairs were cut to the token budget, and how
    (:func:`rewardlab.models.text.truncation_counts`), for backends whose inputs count it
    (``inputs.truncation()``); ``None`` for the others."""
    counts = getattr(prepared.inputs, "truncation", None)
    return counts() if callable(counts) else None
