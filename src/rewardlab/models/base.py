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
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch

from rewardlab.config import ModelConfig
from rewardlab.files import atomic_write_text
from rewardlab.layout import MODEL_INFO_FILE
from rewardlab.seeds import member_seed

__all__ = [
    "MODEL_FORMAT_VERSION",
    "FitResult",
    "ModelFolderError",
    "Pairs",
    "PreparedPairs",
    "RewardModel",
    "member_seed",
    "per_pair_inputs",
    "read_model_info",
    "require_backend",
    "resolve_device",
    "verify_model_files",
    "write_model_info",
]


class ModelFolderError(ValueError):
    """A model folder that is whole but cannot be used as asked (adapters whose base checkpoint
    differs, ...): its message already says what to do, so loading passes it on unchanged
    instead of calling the folder damaged."""

MODEL_FORMAT_VERSION = 1
"""Version of the saved-model layout (``rewardlab.json``'s ``format_version``). A folder from a
newer rewardlab is refused with a clear error instead of being misread."""


@dataclass(frozen=True)
class Pairs:
    """Preference pairs as parallel lists of texts (the only input backends need), and, when
    the data says so, each pair's label strength ``target`` ``[N]``: P(chosen ≻ rejected) as
    labelled (0.5 for a tie kept with ``--ties half``; ``None`` means 1 for every pair)."""

    prompt: Sequence[str]
    chosen: Sequence[str]
    rejected: Sequence[str]
    target: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.prompt)
        if len(self.chosen) != n or len(self.rejected) != n:
            raise ValueError(
                f"prompt, chosen and rejected differ in length: "
                f"{n}, {len(self.chosen)}, {len(self.rejected)}"
            )
        if self.target is not None and np.shape(self.target) != (n,):
            raise ValueError(f"target must be [N] = [{n}], got {np.shape(self.target)}")

    def __len__(self) -> int:
        return len(self.prompt)

    @classmethod
    def from_dataset(cls, ds: Any) -> Pairs:
        """From a ``datasets.Dataset`` (or any mapping of columns) with the canonical columns
        (and ``target`` when the loader added one)."""
        names = ds.column_names if hasattr(ds, "column_names") else list(ds)
        target = (np.asarray(ds["target"], dtype=np.float64) if "target" in names else None)
        return cls(list(ds["prompt"]), list(ds["chosen"]), list(ds["rejected"]), target)

    @property
    def label_target(self) -> np.ndarray:
        """``[N]`` P(chosen ≻ rejected) as labelled: ``target``, or 1 for every pair."""
        return np.ones(len(self)) if self.target is None else np.asarray(self.target, float)

    def identical(self) -> np.ndarray:
        """``[N]`` bool: pairs whose chosen equals rejected. They carry no preference, so every
        training stage leaves them out of the loss (they still get scored: Δ is 0 for them)."""
        return np.array([c == r for c, r in zip(self.chosen, self.rejected)], dtype=bool)

    def ties(self) -> np.ndarray:
        """``[N]`` bool: ties kept with ``--ties half`` (target 0.5). Like identical pairs they
        carry no direction, so no rank, group, cut or self-test flip may count them."""
        return self.label_target == 0.5

    def digest(self) -> str:
        """Content hash of every text, in order: identifies exactly these pairs."""
        h = hashlib.blake2b(digest_size=10)
        for column in (self.prompt, self.chosen, self.rejected):
            for text in column:
                h.update(text.encode("utf-8", "surrogatepass"))
                h.update(b"\0")
        if self.target is not None:  # a kept tie trains differently from a plain pair
            h.update(np.asarray(self.target, dtype=np.float64).tobytes())
        return h.hexdigest()

    def subset(self, index: Sequence[int] | np.ndarray | torch.Tensor) -> Pairs:
        """The pairs at ``index``: integer positions, or a boolean mask of length N (numpy or
        torch) selecting the pairs where it is true."""
        idx = as_index(index, len(self))
        target = None if self.target is None else np.asarray(self.target)[idx]
        return Pairs([self.prompt[i] for i in idx], [self.chosen[i] for i in idx],
                     [self.rejected[i] for i in idx], target)


@dataclass(frozen=True)
class PreparedPairs:
    """Pairs with their backend inputs (``RewardModel.prepare``), made once and held by a stage
    that fits and scores the same pairs many times (one model per seed, method or group)."""

    pairs: Pairs
    inputs: Any

    def __len__(self) -> int:
        return len(self.pairs)

    def subset(self, index: Sequence[int] | np.ndarray | torch.Tensor) -> PreparedPairs:
        """The pairs at ``index`` (positions or a boolean mask), texts and inputs alike."""
        idx = as_index(index, len(self))
        return PreparedPairs(self.pairs.subset(idx), self.inputs.subset(idx))


def as_index(index: Sequence[int] | np.ndarray | torch.Tensor, n: int) -> list[int]:
    """Integer positions from positions or a boolean mask over ``n`` items.

    A boolean mask must have exactly ``n`` entries: a bool tensor read as integers would select
    items 0 and 1 silently.
    """
    arr = index.detach().cpu().numpy() if torch.is_tensor(index) else np.asarray(index)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise ValueError(f"a boolean mask must have shape ({n},), got {arr.shape}")
        return np.flatnonzero(arr).tolist()
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"index must hold integers or booleans, got {arr.dtype}")
    return arr.astype(np.int64).reshape(-1).tolist()


@dataclass
class FitResult:
    """What ``fit`` reports.

    ``train_loss`` is the mean per-batch training loss over the final epoch, averaged over
    members (what a training log shows; no extra pass over the data). ``curve`` holds one record
    per evaluation point when ``fit`` was given validation pairs:
    ``{"step", "epoch", "valid_accuracy", "valid_loss"}``, where accuracy is that of the
    ensemble's mean Δ (ties wrong). ``truncation`` says how many training pairs were cut to the
    token budget, and how (:func:`rewardlab.models.text.truncation_counts`); empty for backends
    that do not count it. No backend drops a pair for its length.
    """

    train_loss: float
    steps: int
    curve: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    truncation: dict[str, int] = field(default_factory=dict)


@runtime_checkable
class RewardModel(Protocol):
    """A trained (or trainable) ensemble of M reward models."""

    config: ModelConfig
    trains_members_jointly: ClassVar[bool]
    """True when all M members train in one computation (the strength stage then plans one job
    per fold instead of one per member and fold)."""

    @property
    def members(self) -> int:
        """Ensemble size M."""
        ...

    def prepare(self, pairs: Pairs) -> Any:
        """Backend inputs of ``pairs`` (encodings or token ids), for stages that fit and score
        the same pairs many times. The result has ``len`` and ``subset(index)``, and ``fit`` and
        ``score`` take it in place of :class:`Pairs`."""
        ...

    def fit(
        self,
        pairs: Pairs | Any,
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

    def score(self, pairs: Pairs | Any) -> torch.Tensor:
        """Δ for every member and pair: ``[M, N]`` float32 on the CPU."""
        ...

    def rewards(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """Every member's reward of each (prompt, response): ``[M, N]`` float32 on the CPU."""
        ...

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model to folder ``path`` (safetensors + ``rewardlab.json``)."""
        ...

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, progress: bool = True) -> RewardModel:
        """Read a folder written by :meth:`save` (safetensors and JSON only)."""
        ...


def require_backend(config: ModelConfig, name: str, cls: type) -> None:
    """Refuse to build backend class ``cls`` (registered as ``name``) from another backend's
    config: its settings would be silently ignored."""
    if config.backend != name:
        raise ValueError(f"{cls.__name__} needs backend={name!r}, got {config.backend!r}")


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


def write_model_info(folder: Path, backend: str, config: ModelConfig, **extra: Any) -> None:
    """Write ``rewardlab.json``: backend, format version, settings, backend extras, and a
    checksum of every file already in ``folder`` (so call it last, once the weights are
    written): :func:`verify_model_files` then refuses a damaged or half-replaced folder."""
    from rewardlab.config import config_dict

    info = {"backend": backend, "format_version": MODEL_FORMAT_VERSION,
            "config": config_dict(config), **extra, "files": _checksums(folder)}
    info["checksum"] = _info_checksum(info)
    atomic_write_text(folder / MODEL_INFO_FILE, json.dumps(info, indent=2) + "\n")


def _info_checksum(info: dict[str, Any]) -> str:
    """blake2b of ``info`` without its own ``checksum``, in canonical JSON: a changed setting
    (a flipped bit that still parses) is caught like a changed weight."""
    body = {k: v for k, v in info.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return "blake2b:" + hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def _checksums(folder: Path) -> dict[str, str]:
    """``relative path -> blake2b`` of every file under ``folder`` but ``rewardlab.json`` and
    hidden (temporary) files, in sorted order."""
    out = {}
    for file in sorted(folder.rglob("*")):
        rel = file.relative_to(folder)
        if file.is_file() and rel.as_posix() != MODEL_INFO_FILE and not any(
                part.startswith(".") for part in rel.parts):
            out[rel.as_posix()] = _file_digest(file)
    return out


def _file_digest(file: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(file, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return "blake2b:" + h.hexdigest()


def verify_model_files(path: str | os.PathLike[str], info: dict[str, Any]) -> None:
    """Check the files of a model folder against the checksums in its ``rewardlab.json``: a
    truncated, bit-flipped or missing weights file is a clear error, never read as weights.
    Folders saved before checksums were recorded are not checked."""
    files = info.get("files")
    if files is None:
        return
    if not isinstance(files, dict):
        raise ValueError(f"{Path(path) / MODEL_INFO_FILE}: malformed 'files' (expected an "
                         f"object of checksums)")
    for rel, digest in files.items():
        file = Path(path) / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise ValueError(f"{Path(path) / MODEL_INFO_FILE}: lists {rel!r}, outside the folder")
        if not file.is_file():
            raise ValueError(f"{file}: missing from the model folder (listed in "
                             f"{MODEL_INFO_FILE})")
        if _file_digest(file) != digest:
            raise ValueError(f"{file}: damaged (its checksum differs from the one in "
                             f"{MODEL_INFO_FILE}); the folder cannot be loaded. Train or copy "
                             f"it again")


def read_model_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``rewardlab.json`` of a saved model folder, checked: a clear error when it is missing,
    malformed, or written by a newer rewardlab."""
    info_file = Path(path) / MODEL_INFO_FILE
    if not Path(path).is_dir():
        raise FileNotFoundError(f"{path}: no such model folder")
    if not info_file.is_file():
        raise FileNotFoundError(f"{path}: not a rewardlab model folder (no {MODEL_INFO_FILE})")
    try:
        info = json.loads(info_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{info_file}: not valid JSON ({exc})") from None
    if (not isinstance(info, dict) or not isinstance(info.get("config"), dict)
            or not isinstance(info.get("backend"), str)):
        raise ValueError(f"{info_file}: malformed (expected an object with a 'backend' name and "
                         f"a 'config' object)")
    version = info.get("format_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{info_file}: malformed format_version {version!r} (expected a whole "
                         f"number from 1)")
    if version > MODEL_FORMAT_VERSION:
        raise ValueError(f"{info_file}: format version {version} is newer than this rewardlab "
                         f"reads ({MODEL_FORMAT_VERSION}); upgrade rewardlab")
    if "checksum" in info and info["checksum"] != _info_checksum(info):
        raise ValueError(f"{info_file}: damaged or edited (its checksum does not match its "
                         f"content); the folder cannot be trusted. Train or copy it again")
    return info
