"""The finetune backend: M Hugging Face sequence-classification models, fine-tuned on accelerate.

Each member is ``AutoModelForSequenceClassification`` with one output (the reward), loaded from
any checkpoint, encoder (BERT, ...) or decoder-only causal LM (GPT-2, Llama, ...). Two kinds:

* full fine-tuning (``config.finetune.lora_r == 0``): M separate models, each from the backbone;
* LoRA (``lora_r > 0``): the backbone is loaded once and the M members are adapters on it
  (:mod:`rewardlab.models.lora`), each with its own reward head; only adapters are saved.

Members train one after another, each with its own seed (head and adapter initialization) and
its own data order. Causal LMs run chosen and rejected with their prompt once
(:mod:`rewardlab.models.packing`); the rewards are those of the two separate inputs.

Sign convention: ``Δ = r(prompt + chosen) - r(prompt + rejected)``; positive prefers chosen.

Under ``accelerate launch`` with ``--parallel data`` (DDP), every rank uses the same seeds, the
prepared data loader gives each rank its own slice of every global batch (``config.batch_size``
pairs per optimizer micro-step across all processes), and DDP averages the gradients, so all
ranks finish with identical weights. With ``--parallel members`` every process trains alone
(:func:`rewardlab.launch.alone`); the strength stage then gives each rank its own members.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rewardlab.config import ModelConfig
from rewardlab.evaluation import accuracy
from rewardlab.files import write_folder_atomically
from rewardlab.launch import Ranks, alone
from rewardlab.layout import MODEL_INFO_FILE
from rewardlab.losses import nuclear_diversity_loss, preference_loss
from rewardlab.models.base import (
    FitResult,
    Pairs,
    as_index,
    member_seed,
    per_pair_inputs,
    read_model_info,
    require_backend,
    resolve_device,
    write_model_info,
)
from rewardlab.models.lora import LoraEnsemble, adapter_name, check_base, weights_hash
from rewardlab.models.packing import pack_pairs, packed_rewards, supports_packing
from rewardlab.models.pooling import (
    freeze_unused_pooler,
    pooled_rewards,
    resolve_pooling,
    reward_head,
)
from rewardlab.models.text import (
    EncodedText,
    encode_pairs,
    encode_prompt_response,
    is_decoder_only,
    pad_encoded,
    prepare_tokenizer,
    resolve_model_path,
    truncation_counts,
)

if TYPE_CHECKING:  # accelerate is imported only when training starts
    from accelerate import Accelerator

__all__ = ["EncodedPairs", "FinetuneRewardModel", "LengthGroupedBatches", "PairScorer",
           "collate_packed", "collate_pairs", "pair_deltas"]

log = logging.getLogger("rewardlab")

_INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
_TOKENIZER_DIR = "tokenizer"


# -- inputs -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class EncodedPairs:
    """Tokenized pairs: ``chosen[i]`` and ``rejected[i]`` are the inputs ``prompt_i + response``."""

    chosen: list[EncodedText]
    rejected: list[EncodedText]

    def __len__(self) -> int:
        return len(self.chosen)

    def subset(self, index: Sequence[int] | np.ndarray | torch.Tensor) -> EncodedPairs:
        """The pairs at ``index`` (positions or a boolean mask)."""
        idx = as_index(index, len(self))
        return EncodedPairs([self.chosen[i] for i in idx], [self.rejected[i] for i in idx])

    def truncation(self) -> dict[str, int]:
        """How many of these pairs were cut to the token budget, and how
        (:func:`rewardlab.models.text.truncation_counts`)."""
        return truncation_counts(self.chosen, self.rejected)


def collate_pairs(data: EncodedPairs, pad_id: int,
                  indices: Sequence[int]) -> dict[str, torch.Tensor]:
    """A training or scoring batch of the pairs ``indices`` (``B`` of them).

    Returns ``chosen_input_ids``, ``chosen_attention_mask`` (and ``chosen_token_type_ids`` when
    the model uses token types), the same with ``rejected_``, all ``[B, L]`` padded to one
    length ``L`` so they can be stacked into one forward pass, plus ``index`` ``[B]`` (the pair
    indices, to look up per-pair targets and margins). Chosen and rejected are kept as separate
    keys, not pre-concatenated, so any row-wise split of the batch (as accelerate does across
    processes) keeps each pair's two halves together.
    """
    idx = list(indices)
    chosen = [data.chosen[i] for i in idx]
    rejected = [data.rejected[i] for i in idx]
    width = max((len(x) for x in chosen + rejected), default=0)
    batch = {f"chosen_{k}": v for k, v in pad_encoded(chosen, pad_id, width).items()}
    batch.update({f"rejected_{k}": v for k, v in pad_encoded(rejected, pad_id, width).items()})
    batch["index"] = torch.tensor(idx, dtype=torch.long)
    return batch


def collate_packed(data: EncodedPairs, pad_id: int,
                   indices: Sequence[int]) -> dict[str, torch.Tensor]:
    """A batch of the pairs ``indices`` with each prompt once
    (:func:`rewardlab.models.packing.pack_pairs`: ``[B, L]`` rows), plus ``index`` ``[B]``."""
    idx = list(indices)
    batch = pack_pairs([data.chosen[i] for i in idx], [data.rejected[i] for i in idx], pad_id)
    batch["index"] = torch.tensor(idx, dtype=torch.long)
    return batch


def pair_deltas(model: torch.nn.Module, batch: dict[str, torch.Tensor],
                pooling: str = "head") -> torch.Tensor:
    """Δ ``[B]`` float32 for a batch from :func:`collate_pairs` or :func:`collate_packed`.

    A padded batch concatenates chosen and rejected into ``[2B, L]`` so both go through the
    network together (one kernel launch per layer, and identical normalization statistics); a
    packed batch runs each pair as one row. ``pooling`` is what the reward head reads
    (:func:`rewardlab.models.pooling.resolve_pooling`; packed batches are decoder-only: the last
    token).
    """
    if "packed_input_ids" in batch:
        rewards = packed_rewards(model, batch)  # [B, 2]
        return rewards[:, 0] - rewards[:, 1]
    inputs = {name: torch.cat([batch[f"chosen_{name}"], batch[f"rejected_{name}"]])
              for name in _INPUT_NAMES if f"chosen_{name}" in batch}
    rewards = pooled_rewards(model, inputs, pooling)  # [2B]
    b = batch["chosen_input_ids"].shape[0]
    return rewards[:b] - rewards[b:]


class PairScorer(torch.nn.Module):
    """``model`` as a module whose forward takes a batch of pairs and returns Δ ``[B]``.

    Training prepares this wrapper (not the bare model), so a packed batch, which calls the
    backbone and the head apart, still runs through one DDP forward.
    """

    def __init__(self, model: torch.nn.Module, pooling: str = "head") -> None:
        super().__init__()
        self.model = model
        self.pooling = pooling

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return pair_deltas(self.model, batch, self.pooling)


# -- training helpers ---------------------------------------------------------------------------
def _zero_dropout(model_config: Any) -> None:
    """Set every dropout probability in a ``transformers`` config to 0 (in place).

    Dropout would draw independent masks for the chosen and rejected halves of a pair, adding
    noise to Δ that the preference loss then fits; reward-model trainers (e.g. TRL) turn it off.
    The config route also reaches attention dropout, which is a float, not an ``nn.Dropout``.
    """
    from transformers import PretrainedConfig

    for name, value in list(vars(model_config).items()):
        if isinstance(value, PretrainedConfig):  # e.g. the text_config of a multimodal model
            _zero_dropout(value)
        elif ("dropout" in name or name.endswith("pdrop")) and isinstance(value, float):
            setattr(model_config, name, 0.0)


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay on matrices only; biases and norm weights (1-D) are not shrunk,
    as decaying a LayerNorm gain towards 0 only hurts."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def _warmup_linear(optimizer: torch.optim.Optimizer, warmup: int,
                   total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate rising linearly from 0 over ``warmup`` steps, then falling linearly to 0 at
    ``total``."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class LengthGroupedBatches:
    """Random training batches of pairs of similar length (a batch sampler).

    Each epoch draws a random order from ``generator``, cuts it into spans of ``group`` batches,
    sorts each span by length and splits it into batches, then shuffles the batches. Every pair
    is seen once per epoch and the order is still the member's own random one, but a batch pads
    its inputs to a length its pairs share: on 1,000 HH pairs at 256 tokens, batches of 8 hold
    92% real tokens instead of 65% (as ``transformers``' ``group_by_length``).
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, generator: torch.Generator,
                 group: int = 50) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.drop_last = False  # read by accelerate when it shards the batches
        self.generator = generator
        self.group = group

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        n, size = len(self.lengths), self.batch_size
        order = torch.randperm(n, generator=self.generator).tolist()
        batches = []
        for start in range(0, n, size * self.group):
            span = sorted(order[start:start + size * self.group], key=self.lengths.__getitem__)
            batches += [span[k:k + size] for k in range(0, len(span), size)]
        for b in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[b]


@dataclasses.dataclass
class _MemberRun:
    """What training one member produced."""

    model: torch.nn.Module | None  # the trained model (full fine-tuning; LoRA keeps adapters)
    steps: int
    last_epoch_loss: float
    eval_points: list[tuple[int, float]]  # (optimizer step, epoch) of each validation point
    valid_deltas: list[torch.Tensor]  # Δ [N_valid] at each validation point


# -- the backend --------------------------------------------------------------------------------
class FinetuneRewardModel:
    """An ensemble of M fine-tuned ``AutoModelForSequenceClassification`` reward models.

    ``r_m(x, y)`` is member m's single logit on the input ``x + y`` (see
    :mod:`rewardlab.models.text` for the layout and truncation).
    """

    trains_members_jointly = False
    """Members train one after another (the strength stage plans one job per member)."""

    pack_prompts = True
    """Causal LMs: run each pair's prompt once with both responses (exact; fewer tokens). The
    benchmarks switch it off to measure what it saves."""

    routed_scoring = False
    """LoRA ensembles: score all members in one pass over the shared weights (peft routes each
    row to its adapter) instead of one pass per member. Off: on the CPU the loop measured faster
    (BENCHMARKS.md, "LoRA ensembles"); the benchmarks switch it per run."""

    def __init__(self, config: ModelConfig, *, progress: bool = True, label: str = "") -> None:
        require_backend(config, "finetune", type(self))
        self.config = config
        self.progress = progress
        # What the progress bar calls the members (default "member m/M"): a strength job trains
        # one member of a larger ensemble and names it.
        self.label = label
        self._pooling: str | None = None
        self.model_path = resolve_model_path(config.model)
        self._tokenizer: Any = None
        self._pad_id: int | None = None
        self._pair_format: bool | None = None
        self._models: list[torch.nn.Module] = []
        self._lora: LoraEnsemble | None = None
        self._bf16_base = False

    @property
    def members(self) -> int:
        """Ensemble size M."""
        return self.config.members

    @property
    def models(self) -> list[torch.nn.Module]:
        """The trained full fine-tuned members (plain ``transformers`` models on the CPU); empty
        before fit and for LoRA ensembles (see :attr:`lora`)."""
        return list(self._models)

    @property
    def lora(self) -> LoraEnsemble | None:
        """The LoRA ensemble (one peft model, adapter ``member_m`` per member), when trained or
        loaded with ``lora_r > 0``."""
        return self._lora

    def _trained(self) -> bool:
        return bool(self._models) or self._lora is not None

    # -- tokenization -----------------------------------------------------------------------------
    @property
    def tokenizer(self) -> Any:
        """The backbone's tokenizer, with a pad token and right padding."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._set_tokenizer(AutoTokenizer.from_pretrained(self.model_path))
        return self._tokenizer

    def _set_tokenizer(self, tokenizer: Any) -> None:
        self._pad_id = prepare_tokenizer(tokenizer)
        self._tokenizer = tokenizer

    @property
    def pad_id(self) -> int:
        """Token id batches are padded with (the eos token's when the tokenizer has no pad)."""
        self.tokenizer  # noqa: B018 - loading the tokenizer sets the pad id
        assert self._pad_id is not None
        return self._pad_id

    @property
    def pair_format(self) -> bool:
        """``True``: encoder pair template; ``False``: concatenation for decoder-only LMs."""
        if self._pair_format is None:
            from transformers import AutoConfig

            self._pair_format = not is_decoder_only(AutoConfig.from_pretrained(self.model_path))
        return self._pair_format

    @property
    def pooling(self) -> str:
        """What the reward head reads: ``mean``, ``cls``, ``last`` or ``head``
        (:func:`rewardlab.models.pooling.resolve_pooling` of ``--pooling``)."""
        if self._pooling is None:
            self._pooling = resolve_pooling(self.config.pooling, self.model_path,
                                            decoder_only=not self.pair_format)
        return self._pooling

    def prepare(self, pairs: Pairs | EncodedPairs) -> EncodedPairs:
        """Tokenize ``pairs`` into model inputs (``prompt + chosen`` and ``prompt + rejected``).

        Inputs hold at most ``config.max_length`` tokens, and never more than the tokenizer's
        ``model_max_length`` (a BERT's position table ends at 512). Longer ones are cut, never
        dropped: the responses keep their start, and both inputs the same end of the prompt
        (``truncation()`` counts them).
        """
        if isinstance(pairs, EncodedPairs):
            return pairs
        chosen, rejected = encode_pairs(self.tokenizer, pairs.prompt, pairs.chosen,
                                        pairs.rejected, max_length=self.max_length,
                                        pair_format=self.pair_format)
        return EncodedPairs(chosen, rejected)

    @property
    def max_length(self) -> int:
        """Tokens per input: ``config.max_length``, capped by the tokenizer's limit."""
        limit = getattr(self.tokenizer, "model_max_length", None) or self.config.max_length
        return min(self.config.max_length, limit)

    def _collate(self, model: torch.nn.Module) -> Callable[..., dict[str, torch.Tensor]]:
        """How batches for ``model`` are built: packed (each prompt once) for decoder-only
        models that take a custom mask, padded pairs otherwise."""
        packed = self.pack_prompts and not self.pair_format and supports_packing(model)
        return collate_packed if packed else collate_pairs

    # -- members ----------------------------------------------------------------------------------
    def _base_dtype(self) -> torch.dtype:
        """bfloat16 for a frozen LoRA backbone on a GPU that has it (half the memory; the
        trained adapters and heads stay float32), float32 otherwise (full fine-tuning keeps
        float32 master weights)."""
        device = resolve_device(self.config.device)
        if (self.config.finetune.lora_r > 0 and device.type == "cuda"
                and torch.cuda.is_bf16_supported()):
            return torch.bfloat16
        return torch.float32

    def _load_backbone(self) -> tuple[torch.nn.Module, list[str]]:
        """The backbone as a one-output sequence classifier, and the modules the checkpoint
        lacked (newly drawn from the torch RNG: the reward head, at least)."""
        from transformers import AutoConfig, AutoModelForSequenceClassification

        pad_id = self.pad_id
        model_config = AutoConfig.from_pretrained(self.model_path, num_labels=1)
        # The sequence-classification heads of causal LMs read the reward at the last token
        # that is not pad_token_id; without it they refuse batches larger than one.
        model_config.pad_token_id = pad_id
        if model_config.get_text_config() is not model_config:
            model_config.get_text_config().pad_token_id = pad_id
        _zero_dropout(model_config)
        dtype = self._base_dtype()
        self._bf16_base = dtype == torch.bfloat16
        model, info = AutoModelForSequenceClassification.from_pretrained(
            self.model_path, config=model_config, dtype=dtype, output_loading_info=True)
        fresh = sorted({key.rsplit(".", 1)[0] for key in info.get("missing_keys", ())})
        return model, fresh

    def _next_member(self, base: tuple[torch.nn.Module, list[str]] | None) -> torch.nn.Module:
        """The next member to train; call after seeding (what is new is drawn from the torch
        RNG). Full fine-tuning: a fresh model. LoRA: a new adapter on the shared ``base``, the
        only trainable one, returned as the peft model."""
        f = self.config.finetune
        if f.lora_r == 0:
            member = self._load_backbone()[0]
        else:
            model, fresh = base if base is not None else (None, [])
            self._lora = LoraEnsemble.grow(self._lora, model, rank=f.lora_r, fresh=fresh,
                                           targets=f.lora_targets)
            member = self._lora.model
        if self.pooling != "head":
            reward_head(member)  # refuses, naming --pooling, a head it cannot feed
            freeze_unused_pooler(member)
        return member

    def _make_accelerator(self) -> Accelerator:
        """The accelerator of one ``fit``: bf16 autocast on a GPU that has it, fp32 otherwise.

        ``--parallel members``: a single-process accelerator even under a launcher (each rank
        trains alone), on the rank's own GPU.
        """
        from accelerate import Accelerator
        from accelerate.utils import DataLoaderConfiguration

        device = self.config.device
        cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
        bf16 = not cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        members = self.config.finetune.parallel == "members"
        with alone() if members else contextlib.nullcontext(Ranks()) as ranks:
            _refuse_joined_state(members)
            if members and not cpu and device == "auto":
                torch.cuda.set_device(ranks.local_rank % torch.cuda.device_count())
            elif device.startswith("cuda:") and int(os.environ.get("WORLD_SIZE", "1")) == 1:
                # accelerate puts a single process on the current CUDA device.
                torch.cuda.set_device(torch.device(device))
            return Accelerator(
                cpu=cpu,
                mixed_precision="bf16" if bf16 else "no",
                gradient_accumulation_steps=self.config.finetune.grad_accum,
                # batch_size counts pairs per step across all processes: the same run on 1 or
                # N processes takes the same number of steps, on the same global batches.
                dataloader_config=DataLoaderConfiguration(split_batches=True),
            )

    # -- training ---------------------------------------------------------------------------------
    def fit(
        self,
        pairs: Pairs | EncodedPairs,
        *,
        target: torch.Tensor | None = None,
        margin: torch.Tensor | None = None,
        valid: Pairs | EncodedPairs | None = None,
        eval_every: int = 0,
    ) -> FitResult:
        """Fine-tune M fresh members on ``pairs`` (earlier members are replaced).

        Args:
            pairs: ``N`` training pairs.
            target: ``[N]`` P(chosen ≻ rejected), default 1; see
                :func:`rewardlab.losses.preference_loss`.
            margin: ``[N]`` margin subtracted from Δ, default 0.
            valid: validation pairs; with them, ``curve`` records the accuracy and loss of the
                ensemble's mean Δ every ``eval_every`` optimizer steps (0: about 20 points).

        Returns:
            ``steps`` is the number of optimizer steps per member; ``train_loss`` the mean
            training loss over each member's last epoch, averaged over members; ``truncation``
            counts the training pairs cut to ``max_length``.
        """
        c = self.config
        n = len(pairs)
        t, mg = per_pair_inputs(n, target, margin)
        t0 = time.perf_counter()
        batch = min(c.resolved_batch_size, n)
        accelerator = self._checked_accelerator(batch)
        data = self.prepare(pairs)
        truncation = data.truncation()
        if truncation["truncated"]:
            log.info("finetune: %d of %d training pairs cut to --max-length %d (prompt cut: "
                     "%d, response cut: %d); none dropped", truncation["truncated"], n,
                     self.max_length, truncation["prompt_cut"], truncation["response_cut"])
        valid_data = self.prepare(valid) if valid is not None and len(valid) else None
        self._models, self._lora = [], None
        # LoRA: one backbone for every member, loaded before any member's seed is drawn.
        base = self._load_backbone() if c.finetune.lora_r > 0 else None
        runs = [self._train_member(m, accelerator, data, t, mg, batch=batch, valid=valid_data,
                                   eval_every=eval_every, base=base)
                for m in range(self.members)]
        self._models = [run.model for run in runs if run.model is not None]
        curve = _ensemble_curve(runs) if valid_data is not None else []
        return FitResult(
            train_loss=sum(r.last_epoch_loss for r in runs) / len(runs),
            steps=runs[0].steps,
            curve=curve,
            seconds=time.perf_counter() - t0,
            truncation=truncation,
        )

    def _checked_accelerator(self, batch: int) -> Accelerator:
        """The accelerator of one ``fit``, refusing what it cannot run: a global batch of
        ``batch`` pairs not divisible by the processes, full fine-tuning under ZeRO-3."""
        accelerator = self._make_accelerator()
        plugin = getattr(accelerator.state, "deepspeed_plugin", None)
        if self.config.finetune.lora_r == 0 and getattr(plugin, "zero_stage", 0) == 3:
            raise ValueError("DeepSpeed ZeRO-3 is supported for LoRA ensembles (--lora-r > 0), "
                             "whose frozen backbone it shards; full fine-tuning under ZeRO-3 is "
                             "not (its members are moved to the CPU whole)")
        if batch % accelerator.num_processes:
            raise ValueError(f"--batch-size {batch} must be a multiple of the "
                             f"{accelerator.num_processes} processes")
        return accelerator

    def _train_member(self, m: int, accelerator: Accelerator, data: EncodedPairs,
                      target: torch.Tensor, margin: torch.Tensor, *, batch: int,
                      valid: EncodedPairs | None, eval_every: int,
                      base: tuple[torch.nn.Module, list[str]] | None) -> _MemberRun:
        """Train member ``m``; a full model comes back unwrapped, on the CPU, in eval mode (a
        LoRA member stays in :attr:`lora`).

        ``target`` and ``margin`` are ``[N]``; ``batch`` is the global batch size in pairs.
        """
        from accelerate.utils import set_seed
        from torch.utils.data import DataLoader

        c, f = self.config, self.config.finetune
        seed = member_seed(c.seed, m)
        # Same seed on every rank: identical head initialization and data order everywhere.
        set_seed(seed)
        model = self._next_member(base)
        lengths = [len(a) + len(b) for a, b in zip(data.chosen, data.rejected, strict=True)]
        loader = DataLoader(
            range(len(data)),
            batch_sampler=LengthGroupedBatches(lengths, batch,
                                               torch.Generator().manual_seed(seed)),
            collate_fn=partial(self._collate(model), data, self.pad_id),
        )
        total = math.ceil(len(loader) / f.grad_accum) * c.resolved_epochs
        optimizer = torch.optim.AdamW(_param_groups(model, c.weight_decay), lr=c.resolved_lr)
        scheduler = _warmup_linear(optimizer, round(f.warmup_ratio * total), total)
        prepared = accelerator.prepare(PairScorer(model, self.pooling), optimizer, loader,
                                       scheduler)
        run = self._member_loop(m, accelerator, *prepared, target.to(accelerator.device),
                                margin.to(accelerator.device), total=total, valid=valid,
                                every=eval_every or max(1, total // 20))
        trained = accelerator.unwrap_model(prepared[0], keep_fp32_wrapper=False).model
        run.model = None if f.lora_r > 0 else trained.to("cpu").eval()
        trained.eval()
        accelerator.free_memory()  # drop the prepared wrappers before the next member
        return run

    def _member_loop(self, m: int, accelerator: Accelerator, scorer: torch.nn.Module,
                     optimizer: torch.optim.Optimizer, loader: Any, scheduler: Any,
                     target: torch.Tensor, margin: torch.Tensor, *, total: int,
                     valid: EncodedPairs | None, every: int) -> _MemberRun:
        """The training loop of one member: ``total`` optimizer steps over its epochs.
        ``scorer`` is the prepared :class:`PairScorer`."""
        from tqdm.auto import tqdm

        c = self.config
        name = f"member {m + 1}/{self.members}"
        if self.label:
            name = self.label if self.members == 1 else f"{self.label}, {name}"
        bar = tqdm(total=total, desc=f"finetune {name}", unit="step",
                   disable=not self.progress or not accelerator.is_local_main_process)
        run = _MemberRun(None, 0, float("nan"), [], [])
        scorer.train()
        for epoch in range(c.resolved_epochs):
            losses = []
            for b, inputs in enumerate(loader):
                with accelerator.accumulate(scorer):
                    delta = scorer(inputs)  # [B_rank]
                    idx = inputs["index"]
                    loss = preference_loss(delta, target=target[idx], margin=margin[idx])
                    accelerator.backward(loss + self._diversity_term())
                    if accelerator.sync_gradients and c.finetune.max_grad_norm > 0:
                        accelerator.clip_grad_norm_(scorer.parameters(),
                                                    c.finetune.max_grad_norm)
                    # The accelerate wrappers skip these on accumulation micro-steps.
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                losses.append(float(accelerator.reduce(loss.detach(), "mean")))
                if not accelerator.sync_gradients:
                    continue
                run.steps += 1
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
                if valid is not None and (run.steps % every == 0 or run.steps == total):
                    run.eval_points.append((run.steps, epoch + (b + 1) / len(loader)))
                    run.valid_deltas.append(self._member_deltas(
                        accelerator.unwrap_model(scorer).model, valid, accelerator.device))
                    scorer.train()
            run.last_epoch_loss = sum(losses) / max(len(losses), 1)
        bar.close()
        return run

    def _diversity_term(self) -> torch.Tensor | float:
        """What ``--diversity nuclear`` adds to the member's loss: α times minus the nuclear norm
        of its LoRA A matrices stacked under the earlier members' (fixed), per layer; 0 without.

        Members train one after another, so member m maximizes the joint nuclear norm given
        members 0..m-1 (a greedy, block-coordinate form of the paper's joint objective): one
        member's memory and time per step, and each member stays resumable on its own.
        """
        if self.config.diversity != "nuclear" or self._lora is None:
            return 0.0
        return self.config.diversity_weight * nuclear_diversity_loss(self._lora.a_stacks())

    # -- scoring ----------------------------------------------------------------------------------
    def _autocast(self, device: torch.device) -> contextlib.AbstractContextManager[Any]:
        """bf16 autocast where the backbone is bf16 (LoRA on a GPU), nothing otherwise."""
        if self._bf16_base and device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _length_order(self, data: EncodedPairs) -> list[int]:
        """Pair positions from shortest to longest, so each scoring batch pads little."""
        lengths = [max(len(a), len(b)) for a, b in zip(data.chosen, data.rejected, strict=True)]
        return sorted(range(len(data)), key=lengths.__getitem__)

    @torch.no_grad()
    def _member_deltas(self, model: torch.nn.Module, data: EncodedPairs,
                       device: torch.device) -> torch.Tensor:
        """Δ ``[N]`` float32 on the CPU of one member (``model`` with that member active), in eval
        mode. Results come back in the original order."""
        out = torch.empty(len(data), dtype=torch.float32)
        pairs_per_batch = max(1, self.config.encode_batch_size // 2)
        order = self._length_order(data)
        collate = self._collate(model)
        was_training = model.training
        model.eval()
        try:
            for start in range(0, len(data), pairs_per_batch):
                idx = order[start:start + pairs_per_batch]
                inputs = {k: v.to(device) for k, v in collate(data, self.pad_id, idx).items()}
                with self._autocast(device):
                    out[idx] = pair_deltas(model, inputs, self.pooling).float().cpu()
        finally:
            model.train(was_training)
        return out

    @torch.no_grad()
    def _routed_deltas(self, data: EncodedPairs, device: torch.device) -> torch.Tensor:
        """Δ ``[M, N]`` of a LoRA ensemble with every member in each forward pass: the batch is
        repeated M times, member-major, and peft sends each copy through its own adapter."""
        assert self._lora is not None
        ens, members = self._lora, self._lora.members
        model = ens.model.to(device).eval()
        out = torch.empty(members, len(data), dtype=torch.float32)
        pairs_per_batch = max(1, self.config.encode_batch_size // (2 * members))
        order, collate = self._length_order(data), self._collate(model)
        for start in range(0, len(data), pairs_per_batch):
            idx = order[start:start + pairs_per_batch]
            batch = collate(data, self.pad_id, idx)
            rows = [name for name in ens.names for _ in idx]  # member-major, one per pair
            inputs = {k: v.repeat(members, *[1] * (v.ndim - 1)).to(device)
                      for k, v in batch.items()}
            # A padded batch runs chosen rows, then rejected rows: each gets the adapter list.
            names = rows if "packed_input_ids" in batch else rows + rows
            with ens.routed(names), self._autocast(device):
                out[:, idx] = pair_deltas(model, inputs, self.pooling).float().cpu().view(
                    members, len(idx))
        return out

    def score(self, pairs: Pairs | EncodedPairs) -> torch.Tensor:
        """Δ ``[M, N]`` float32 on the CPU: ``r_m(prompt + chosen) - r_m(prompt + rejected)``;
        positive means member m prefers chosen."""
        if not self._trained():
            raise RuntimeError("the model is not trained: call fit() or load() first")
        data = self.prepare(pairs)
        if len(data) == 0:
            return torch.zeros(self.members, 0)
        if self._lora is not None and self.routed_scoring:
            return self._routed_deltas(data, resolve_device(self.config.device))
        return self._each_member(lambda model, device: self._member_deltas(model, data, device))

    def _each_member(self, run: Callable[[torch.nn.Module, torch.device], torch.Tensor]
                     ) -> torch.Tensor:
        """``run(model, device)`` -> ``[N]`` for every member, stacked to ``[M, N]``."""
        device = resolve_device(self.config.device)
        if self._lora is not None:
            # One backbone: it moves to the device once, and each member takes its turn on it.
            model = self._lora.model.to(device)
            return self._lora.each(lambda _: run(model, device))
        rows = []
        for model in self._models:
            # Members live on the CPU and visit the device one at a time: M large models need
            # not fit in accelerator memory together.
            model.to(device)
            rows.append(run(model, device))
            model.to("cpu")
        return torch.stack(rows)

    @torch.no_grad()
    def rewards(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """Rewards ``[M, N]`` of each (prompt, response), by every member."""
        if not self._trained():
            raise RuntimeError("the model is not trained: call fit() or load() first")
        items = encode_prompt_response(self.tokenizer, prompts, responses,
                                       max_length=self.max_length, pair_format=self.pair_format)
        if not items:
            return torch.zeros(self.members, 0)
        step = max(1, self.config.encode_batch_size)

        def member_rewards(model: torch.nn.Module, device: torch.device) -> torch.Tensor:
            out = []
            model.eval()
            for start in range(0, len(items), step):
                batch = pad_encoded(items[start:start + step], self.pad_id)
                batch = {k: v.to(device) for k, v in batch.items()}
                with self._autocast(device):
                    out.append(pooled_rewards(model, batch, self.pooling).cpu())
            return torch.cat(out)

        return self._each_member(member_rewards)

    # -- persistence ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``rewardlab.json`` and ``member_{m}/`` into folder ``path``, atomically at the
        folder level.

        Full fine-tuning: each member folder is a plain ``transformers`` model (safetensors,
        config, tokenizer; loads with ``AutoModelForSequenceClassification``). LoRA: each member
        folder is a peft adapter (loads with ``PeftModel.from_pretrained`` onto the base), the
        tokenizer sits in ``tokenizer/``, and ``rewardlab.json`` names the base and the hash of
        its weights. Only rank 0 of a launch writes; under DDP every rank returns once the
        folder is complete.
        """
        if not self._trained():
            raise RuntimeError("nothing to save: the model is not trained")
        path = Path(path)
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        rank = torch.distributed.get_rank() if distributed else Ranks.from_env().rank
        gathered = self._lora.gathered() if self._lora is not None else contextlib.nullcontext()
        with gathered:  # every rank gathers ZeRO-3 partitions; rank 0 writes
            if rank == 0:
                write_folder_atomically(path, self._write_into, marker=MODEL_INFO_FILE,
                                        kind="rewardlab model folder")
        if distributed:
            torch.distributed.barrier()
        return path

    def _write_into(self, folder: Path) -> None:
        if self._lora is not None:
            self._lora.save(folder)
            self.tokenizer.save_pretrained(folder / _TOKENIZER_DIR)
            lora = {"base_model": self.config.model,
                    "base_weights_hash": weights_hash(self.model_path),
                    "adapters": self._lora.names}
            write_model_info(folder, "finetune", self.config, members=self._lora.members,
                             pair_format=self.pair_format, pooling=self.pooling, lora=lora)
            return
        for m, model in enumerate(self._models):
            member_dir = folder / adapter_name(m)
            # transformers writes safetensors (the only format in 5.x, the default since 4.35).
            model.save_pretrained(member_dir)
            self.tokenizer.save_pretrained(member_dir)
        write_model_info(folder, "finetune", self.config, members=len(self._models),
                         pair_format=self.pair_format, pooling=self.pooling)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, progress: bool = True) -> FinetuneRewardModel:
        """Load a folder written by :meth:`save` (safetensors and JSON only: nothing unpickled).

        A LoRA folder is attached to its base checkpoint, which must hash to the recorded
        weights hash (a clear error otherwise).
        """
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = Path(path)
        info = read_model_info(path)
        if info.get("backend") != "finetune":
            raise ValueError(f"{path}: backend {info.get('backend')!r}, not 'finetune'")
        obj = cls(ModelConfig.from_dict(info["config"]), progress=progress)
        members = int(info["members"])
        if "lora" in info:
            check_base(info["lora"], obj.model_path, path)
            obj._set_tokenizer(AutoTokenizer.from_pretrained(path / _TOKENIZER_DIR))
            obj._lora = LoraEnsemble.load(path, obj._load_backbone()[0], members)
        else:
            obj._set_tokenizer(AutoTokenizer.from_pretrained(path / adapter_name(0)))
            obj._models = [
                AutoModelForSequenceClassification.from_pretrained(
                    path / adapter_name(m), use_safetensors=True).eval()
                for m in range(members)
            ]
        if "pair_format" in info:
            obj._pair_format = bool(info["pair_format"])
        else:
            obj._pair_format = not is_decoder_only(obj._models[0].config)
        # Folders written before --pooling reached this backend read the class's own head.
        obj._pooling = str(info.get("pooling", "head"))
        return obj


def _refuse_joined_state(members: bool) -> None:
    """``--parallel members`` needs this process's accelerate state to be single-process; one
    set up earlier in a process group cannot be undone."""
    if not members:
        return
    from accelerate.state import PartialState

    if PartialState._shared_state and PartialState().num_processes > 1:
        raise RuntimeError("--parallel members: this process already joined a process group "
                           "(an earlier --parallel data step); run the steps separately")


def _ensemble_curve(runs: Sequence[_MemberRun]) -> list[dict[str, float]]:
    """Validation curve of the ensemble's mean Δ, one record per evaluation point.

    Members train one after another but on the same step schedule, so each member's Δ at step s
    is known; the mean over members at step s is the ensemble's Δ had they trained side by side.
    """
    curve = []
    for k, (step, epoch) in enumerate(runs[0].eval_points):
        mean_delta = torch.stack([r.valid_deltas[k] for r in runs]).mean(dim=0)  # [N_valid]
        curve.append({"step": step, "epoch": epoch, "valid_accuracy": accuracy(mean_delta),
                      "valid_loss": float(preference_loss(mean_delta))})
    return curve
