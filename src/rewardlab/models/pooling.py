"""What the finetune backend's reward head reads: one vector per input, pooled the way the
backbone was trained.

A ``transformers`` sequence classifier built on an encoder reads BERT's CLS *pooler* (a dense
layer and tanh on the first token). Sentence encoders such as all-MiniLM-L6-v2 were trained on
the *mean* of their token states instead, and their pooler never was: LoRA leaves it frozen, so
the head reads features the backbone never learned to make, and 600 HH pairs ended at a loss of
0.693 (BENCHMARKS.md, "The finetune backend learns"). So for encoders the reward is

    r(x) = head(pool(backbone(x).last_hidden_state, attention_mask))

with ``pool`` one of ``mean`` (over real tokens, special tokens included, as
sentence-transformers does), ``cls`` (the first token's state, no pooler) or ``last`` (the last
real token), and ``head`` the checkpoint class's own one-output classification layer
(BERT's ``classifier``). ``head`` as a pooling keeps the class's own forward (the pooler), as
rewardlab did before. Decoder-only LMs always read the last real token: their own head does
exactly that, and prefix sharing (:mod:`rewardlab.models.packing`) depends on it.

A saved member is still a plain ``AutoModelForSequenceClassification`` folder; with pooling
other than ``head`` its reward is the formula above, not ``model(**inputs).logits`` (the README
shows the four lines; ``rewardlab.json`` records the pooling).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rewardlab.config import ConfigError

__all__ = ["freeze_unused_pooler", "hf_model", "pool_states", "pooled_rewards", "resolve_pooling",
           "reward_head"]


def _sentence_transformers_pooling(model_path: str) -> str | None:
    """The pooling recorded in a sentence-transformers checkpoint (``1_Pooling/config.json``),
    or ``None`` when there is none (or it names a mode rewardlab does not offer)."""
    file = Path(model_path) / "1_Pooling" / "config.json"
    if not file.is_file():
        return None
    modes = json.loads(file.read_text(encoding="utf-8"))
    for key, name in (("pooling_mode_mean_tokens", "mean"), ("pooling_mode_cls_token", "cls"),
                      ("pooling_mode_lasttoken", "last")):
        if modes.get(key):
            return name
    return None


def resolve_pooling(choice: str, model_path: str, *, decoder_only: bool) -> str:
    """The pooling the finetune backend uses for ``--pooling choice``: ``mean``, ``cls``,
    ``last`` or ``head``.

    ``auto`` is the checkpoint's sentence-transformers pooling when it records one, else mean
    for encoders. Decoder-only LMs use their own head (the last real token) for ``auto``,
    ``last`` and ``head``; mean or CLS pooling of a causal LM is refused (its first tokens have
    not seen the response).
    """
    if decoder_only:
        if choice in ("mean", "cls"):
            raise ConfigError(f"--pooling {choice}: a decoder-only LM reads its reward at the "
                              f"last token (only it has seen the whole input); use auto or last")
        return "head"
    if choice == "auto":
        return _sentence_transformers_pooling(model_path) or "mean"
    return choice


def pool_states(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """``[B, H]`` vectors from token states ``hidden`` ``[B, L, H]`` and ``mask`` ``[B, L]``
    (1 on real tokens; inputs are right-padded): the masked mean, the first token, or the last
    real token."""
    if how == "mean":
        weights = mask.to(hidden.dtype).unsqueeze(-1)  # [B, L, 1]
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
    if how == "cls":
        return hidden[:, 0]
    if how == "last":
        last = (mask.sum(dim=1) - 1).clamp_min(0).long()  # [B]
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"unknown pooling {how!r}")


def hf_model(model: torch.nn.Module) -> Any:
    """The ``transformers`` model inside a peft wrapper (LoRA layers stay injected in it)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def reward_head(model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The classification layer of ``model`` as a map ``[B, H]`` -> ``[B, 1]``.

    BERT-likes end in a linear ``classifier``; RoBERTa-likes in a head that reads the first
    position of ``[B, L, H]`` (so it gets the pooled vector as a one-token sequence). Under peft
    the layer is the active member's copy. Anything else is refused, naming ``--pooling head``.
    """
    hf = hf_model(model)
    head = getattr(hf, "classifier", None)
    inner = getattr(head, "original_module", head)  # peft's modules_to_save wrapper
    if isinstance(inner, torch.nn.Linear):
        return head  # type: ignore[return-value]
    if inner is not None and hasattr(inner, "out_proj") and hasattr(inner, "dense"):
        return lambda pooled: head(pooled[:, None])  # type: ignore[misc]
    raise ConfigError(f"--pooling: rewardlab cannot apply {type(hf).__name__}'s classification "
                      f"head to a pooled vector; use --pooling head (the class's own head)")


def freeze_unused_pooler(model: torch.nn.Module) -> None:
    """Freeze the backbone's pooler when the head bypasses it: it still runs in the backbone's
    forward, and a trainable weight that gets no gradient stalls DDP's gradient reduction."""
    hf = hf_model(model)
    pooler = getattr(getattr(hf, getattr(hf, "base_model_prefix", ""), None), "pooler", None)
    if isinstance(pooler, torch.nn.Module):
        pooler.requires_grad_(False)


def pooled_rewards(model: torch.nn.Module, inputs: dict[str, torch.Tensor],
                   how: str) -> torch.Tensor:
    """Rewards ``[B]`` float32 of a padded batch (``input_ids``, ``attention_mask`` and maybe
    ``token_type_ids``, all ``[B, L]``) under pooling ``how`` (:func:`resolve_pooling`)."""
    if how == "head":
        return model(**inputs).logits.squeeze(-1).float()
    hf = hf_model(model)
    backbone = getattr(hf, hf.base_model_prefix)
    hidden = backbone(**inputs).last_hidden_state  # [B, L, H]
    pooled = pool_states(hidden, inputs["attention_mask"], how)
    return reward_head(model)(pooled).squeeze(-1).float()
