"""What every reward-model backend provides: ``fit``, ``score``, ``save``, and loading back.

The stages hold a :class:`RewardModel` and never ask which backend it is.
Sign and shape conventions: ``score`` returns Δ as an ``M × N`` tensor (members first, pairs
second), with ``Δ[m, i] = r_m(x_i, chosen_i) - r_m(x_i, rejected_i)``; positive means member m
prefers ``chosen``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from rewardlab.config import ModelConfig

__all__ = [
    "MODEL_INFO_FILE",
    "FitResult",
    "Pairs",
    "RewardModel",
    "build_reward_model",
    "load_reward_model",
    "member_seed",
    "per_pair_inputs",
    "resolve_device",
]

MODEL_INFO_FILE = "rewardlab.json"
"""Written into every saved model folder: which backend it is and the settings to rebuild it."""


@dataclass(frozen=True)
class Pairs:
    """Preference pairs as parallel lists of texts (the only input backends need)."""

    prompt: Sequence[str]
    chosen: Sequence[str]
    rejected: Sequence[str]

    def __post_init__(self) -> None:
        n = len(self.prompt)
        if len(self.chosen) != n or len(self.rejected) != n:
            raise ValueError(
                f"prompt, chosen and rejected differ in length: "
                f"{n}, {len(self.chosen)}, {len(self.rejected)}"
            )

    def __len__(self) -> int:
        return len(self.prompt)

    @classmethod
    def from_dataset(cls, ds: Any) -> Pairs:
        """From a ``datasets.Dataset`` (or any mapping of columns) with the canonical columns."""
        return cls(list(ds["prompt"]), list(ds["chosen"]), list(ds["rejected"]))

    def identical(self) -> np.ndarray:
        """``[N]`` bool: pairs whose chosen equals rejected. They carry no preference, so every
        training stage leaves them out of the loss (they still get scored: Δ is 0 for them)."""
        return np.array([c == r for c, r in zip(self.chosen, self.rejected)], dtype=bool)

    def digest(self) -> str:
        """Content hash of every text, in order: identifies exactly these pairs."""
        h = hashlib.blake2b(digest_size=10)
        for column in (self.prompt, self.chosen, self.rejected):
            for text in column:
                h.update(text.encode("utf-8", "surrogatepass"))
                h.update(b"\0")
        return h.hexdigest()

    def subset(self, index: Sequence[int] | torch.Tensor) -> Pairs:
        idx = index.tolist() if torch.is_tensor(index) else list(index)
        return Pairs([self.prompt[i] for i in idx], [self.chosen[i] for i in idx],
                     [self.rejected[i] for i in idx])


@dataclass
class FitResult:
    """What ``fit`` reports.

    ``curve`` holds one record per evaluation point when ``fit`` was given validation pairs:
    ``{"step", "epoch", "valid_accuracy", "valid_loss"}``, where accuracy is that of the
    ensemble's mean Δ (ties wrong).
    """

    train_loss: float
    steps: int
    curve: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


@runtime_checkable
class RewardModel(Protocol):
    """A trained (or trainable) ensemble of M reward models."""

    config: ModelConfig

    @property
    def members(self) -> int:
        """Ensemble size M."""
        ...

    def fit(
        self,
        pairs: Pairs,
        *,
        target: torch.Tensor | None = None,
        margin: torch.Tensor | None = None,
        valid: Pairs | None = None,
        eval_every: int = 0,
    ) -> FitResult:
        """Train every member on ``pairs``.

        ``target`` (``[N]``, P(chosen ≻ rejected), default 1) and ``margin`` (``[N]``, default 0)
        go straight into :func:`rewardlab.losses.preference_loss`. Each member sees the pairs in
        its own random order, seeded by :func:`member_seed`. With ``valid``, the accuracy of the
        mean Δ is recorded every ``eval_every`` steps (0: about 20 points over the run).
        """
        ...

    def score(self, pairs: Pairs) -> torch.Tensor:
        """Δ for every member and pair: ``[M, N]`` float32 on the CPU."""
        ...

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model to folder ``path`` (safetensors + ``rewardlab.json``)."""
        ...


def per_pair_inputs(n: int, target: torch.Tensor | None,
                    margin: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``fit``'s optional ``target`` (default 1) and ``margin`` (default 0) as float ``[N]``
    tensors, with a clear error for any other shape."""
    if n == 0:
        raise ValueError("no training pairs")
    t = torch.ones(n) if target is None else torch.as_tensor(target, dtype=torch.float32)
    mg = torch.zeros(n) if margin is None else torch.as_tensor(margin, dtype=torch.float32)
    if t.shape != (n,) or mg.shape != (n,):
        raise ValueError(f"target and margin must be [N] = [{n}], got "
                         f"{tuple(t.shape)} and {tuple(mg.shape)}")
    return t, mg


def resolve_device(name: str) -> torch.device:
    """``--device``: ``auto`` is CUDA when available, else the CPU; anything else as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def member_seed(seed: int, member: int) -> int:
    """Seed of ensemble member ``member`` under run seed ``seed`` (distinct, stable)."""
    return (seed * 1_000_003 + member * 7919 + 17) % (2**31 - 1)


def build_reward_model(config: ModelConfig, *, progress: bool = True) -> RewardModel:
    """An untrained reward model of ``config.backend``."""
    if config.backend == "embedding":
        from rewardlab.models.embedding import EmbeddingRewardModel

        return EmbeddingRewardModel(config, progress=progress)
    if config.backend == "finetune":
        from rewardlab.models.finetune import FinetuneRewardModel

        return FinetuneRewardModel(config, progress=progress)
    raise ValueError(f"unknown backend {config.backend!r}; choose embedding or finetune")


def load_reward_model(path: str | os.PathLike[str], *, progress: bool = True) -> RewardModel:
    """Load a model saved by any backend's ``save``; the backend is read from ``rewardlab.json``."""
    path = Path(path)
    info_file = path / MODEL_INFO_FILE
    if not info_file.is_file():
        raise FileNotFoundError(f"{path}: not a rewardlab model folder (no {MODEL_INFO_FILE})")
    info = json.loads(info_file.read_text(encoding="utf-8"))
    backend = info.get("backend")
    if backend == "embedding":
        from rewardlab.models.embedding import EmbeddingRewardModel

        return EmbeddingRewardModel.load(path, progress=progress)
    if backend == "finetune":
        from rewardlab.models.finetune import FinetuneRewardModel

        return FinetuneRewardModel.load(path, progress=progress)
    raise ValueError(f"{info_file}: unknown backend {backend!r}")
