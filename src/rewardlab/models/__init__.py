"""Reward-model backends behind one protocol (:class:`RewardModel`), chosen by name.

:data:`BACKENDS` is the registry: ``--backend NAME`` picks ``BACKENDS[NAME]`` for building, and a
saved folder's ``rewardlab.json`` names the class that loads it. Stages hold a
:class:`RewardModel` and never ask which backend it is.
"""

from __future__ import annotations

import os

from rewardlab.config import ModelConfig, literal_choices
from rewardlab.faults import fault_point
from rewardlab.models.base import (
    FitResult,
    ModelFolderError,
    Pairs,
    PreparedPairs,
    RewardModel,
    member_seed,
    read_model_info,
    verify_model_files,
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


def build_reward_model(config: ModelConfig, *, progress: bool = True,
                       label: str = "") -> RewardModel:
    """An untrained reward model of ``config.backend``; ``label`` is what its training progress
    bar calls the members (a strength job trains some of a larger ensemble's)."""
    fault_point("model", config.backend)
    return backend_class(config.backend)(config, progress=progress, label=label)


def load_reward_model(path: str | os.PathLike[str], *, progress: bool = True) -> RewardModel:
    """Load a model saved by any backend's ``save``; the backend is read from ``rewardlab.json``
    (a clear error when it is missing, malformed or from a newer rewardlab).

    Weights are read from safetensors only, never unpickled. A damaged or foreign folder (a
    truncated weights file, missing keys, shapes that do not fit the settings) is a
    ``ValueError`` naming the folder, whatever the backend's reader raised.
    """
    info = read_model_info(path)
    try:
        cls = backend_class(info["backend"])
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    verify_model_files(path, info)
    try:
        return cls.load(path, progress=progress)
    except (MemoryError, PermissionError, ModelFolderError):
        raise
    except Exception as exc:  # safetensors, torch and transformers raise their own types
        raise ValueError(f"{path}: cannot load this {info['backend']} model folder; it is "
                         f"damaged or was not written by rewardlab ({type(exc).__name__}: "
                         f"{_short(exc)})") from exc


def _short(exc: BaseException) -> str:
    """The message of ``exc`` on one line, cut to a readable length."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return (text[:300] + " ...") if len(text) > 300 else (text or "no message")


def prepare_pairs(config: ModelConfig, pairs: Pairs, *, progress: bool = True) -> PreparedPairs:
    """``pairs`` with the inputs every model of ``config``'s backend and encoding reads."""
    return PreparedPairs(pairs, build_reward_model(config, progress=progress).prepare(pairs))


def input_truncation(prepared: PreparedPairs) -> dict[str, int] | None:
    """How many of ``prepared``'s pairs were cut to the token budget, and how
    (:func:`rewardlab.models.text.truncation_counts`), for backends whose inputs count it
    (``inputs.truncation()``); ``None`` for the others."""
    counts = getattr(prepared.inputs, "truncation", None)
    return counts() if callable(counts) else None
