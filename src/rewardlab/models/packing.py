"""Prefix sharing for decoder-only reward models: a pair's prompt runs once, with both responses.

A causal LM's reward for ``prompt + response`` is read at the response's last token, and every
token attends only to earlier ones. So chosen and rejected can share one copy of the prompt: the
row ``prompt + chosen + rejected``, with an attention mask in which rejected tokens see the
prompt and earlier rejected tokens but never chosen, and position ids that restart the rejected
tokens right after the prompt. Each reward is then the unpacked one up to float summation order
(``tests/models/test_packing.py`` checks it), and the prompt's tokens are computed once instead of
twice, with no padding between the two inputs.

Pairs whose two inputs kept different prompt tokens (truncation cut them differently) go in the
same row as two independent segments, still exact. Encoders (bidirectional attention) cannot
share a prefix: the prompt attends to the response there.

Each token carries a *branch*: 0 the shared prompt, 1 chosen, 2 rejected, -1 padding. Token ``i``
attends to ``j`` when ``j <= i`` and ``j`` is in the prompt or in ``i``'s own branch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rewardlab.models.pooling import hf_model
from rewardlab.models.text import EncodedText

__all__ = ["PACKED_KEYS", "attention_mask_4d", "pack_pairs", "packed_rewards", "supports_packing"]

PACKED_KEYS = ("packed_input_ids", "packed_branch", "packed_position_ids", "packed_read")
"""The batch keys of a packed batch (plus ``index``)."""

_PAD_BRANCH = -1


def _read_at(ids: Sequence[int], rows: Sequence[int], pad_id: int) -> int:
    """Row index where a sequence-classification head reads one input's reward.

    ``ids`` are the input's tokens in order and ``rows`` their places in the packed row. As
    ``transformers`` does, the reward is read at the rightmost token that is not the pad token
    (the first token when all are), which matters when the pad token doubles as eos.
    """
    for k in range(len(ids) - 1, -1, -1):
        if ids[k] != pad_id:
            return rows[k]
    return rows[0]


def _pack_one(chosen: EncodedText, rejected: EncodedText,
              pad_id: int) -> tuple[list[int], list[int], list[int], tuple[int, int]]:
    """One row: token ids, branches, position ids, and where chosen's and rejected's rewards are
    read."""
    shared = chosen.prompt_end
    if shared != rejected.prompt_end or chosen.input_ids[:shared] != rejected.input_ids[:shared]:
        shared = 0  # prompts cut differently: two independent segments
    c_tail, r_tail = chosen.input_ids[shared:], rejected.input_ids[shared:]
    ids = [*chosen.input_ids[:shared], *c_tail, *r_tail]
    branch = [0] * shared + [1] * len(c_tail) + [2] * len(r_tail)
    positions = [*range(shared + len(c_tail)), *range(shared, shared + len(r_tail))]
    c_rows = list(range(shared + len(c_tail)))
    r_rows = [*range(shared), *range(shared + len(c_tail), len(ids))]
    read = (_read_at(chosen.input_ids, c_rows, pad_id),
            _read_at(rejected.input_ids, r_rows, pad_id))
    return ids, branch, positions, read


def pack_pairs(chosen: Sequence[EncodedText], rejected: Sequence[EncodedText],
               pad_id: int) -> dict[str, torch.Tensor]:
    """A packed batch of ``B`` pairs.

    Returns ``packed_input_ids``, ``packed_branch`` and ``packed_position_ids`` (``[B, L]`` long,
    right-padded to the longest row) and ``packed_read`` (``[B, 2]``: the row index of chosen's
    and rejected's reward).
    """
    rows = [_pack_one(c, r, pad_id) for c, r in zip(chosen, rejected, strict=True)]
    width = max((len(r[0]) for r in rows), default=0)
    b = len(rows)
    ids = torch.full((b, width), pad_id, dtype=torch.long)
    branch = torch.full((b, width), _PAD_BRANCH, dtype=torch.long)
    positions = torch.zeros((b, width), dtype=torch.long)
    read = torch.zeros((b, 2), dtype=torch.long)
    for i, (row_ids, row_branch, row_pos, row_read) in enumerate(rows):
        n = len(row_ids)
        ids[i, :n] = torch.tensor(row_ids, dtype=torch.long)
        branch[i, :n] = torch.tensor(row_branch, dtype=torch.long)
        positions[i, :n] = torch.tensor(row_pos, dtype=torch.long)
        read[i] = torch.tensor(row_read, dtype=torch.long)
    return {"packed_input_ids": ids, "packed_branch": branch, "packed_position_ids": positions,
            "packed_read": read}


def attention_mask_4d(branch: torch.Tensor, *, additive_dtype: torch.dtype | None = None
                      ) -> torch.Tensor:
    """The ``[B, 1, L, L]`` attention mask of packed rows with ``branch`` ``[B, L]``.

    Boolean (``True``: may attend) for SDPA; with ``additive_dtype``, 0 where allowed and the
    dtype's minimum elsewhere (eager attention adds the mask to the scores). Padding attends to
    itself only, so no softmax row is empty.
    """
    length = branch.shape[1]
    q, k = branch[:, :, None], branch[:, None, :]
    causal = torch.ones(length, length, dtype=torch.bool, device=branch.device).tril()
    allowed = ((k == 0) | (k == q)) & (k != _PAD_BRANCH) & (q != _PAD_BRANCH) & causal
    allowed |= torch.eye(length, dtype=torch.bool, device=branch.device)
    allowed = allowed[:, None]
    if additive_dtype is None:
        return allowed
    zero = torch.zeros((), dtype=additive_dtype, device=branch.device)
    return torch.where(allowed, zero, torch.finfo(additive_dtype).min)


def supports_packing(model: torch.nn.Module) -> bool:
    """Whether ``model`` is a decoder-only sequence classifier this module can feed: a backbone
    under ``base_model_prefix``, a ``score`` head, and eager or SDPA attention (flash-attention
    kernels take no custom mask)."""
    hf = hf_model(model)
    impl = getattr(hf.config, "_attn_implementation", None)
    prefix = getattr(hf, "base_model_prefix", "")
    return (hasattr(hf, "score") and bool(prefix) and hasattr(hf, prefix)
            and impl in ("sdpa", "eager"))


def packed_rewards(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Rewards ``[B, 2]`` float32 (chosen, rejected) of a batch from :func:`pack_pairs`.

    Runs the backbone once over the packed rows and applies the reward head only at the two
    read positions of each row (the head is per token, so this equals heading every token).
    """
    hf = hf_model(model)
    backbone = getattr(hf, hf.base_model_prefix)
    eager = hf.config._attn_implementation == "eager"
    dtype = next(backbone.parameters()).dtype
    mask = attention_mask_4d(batch["packed_branch"], additive_dtype=dtype if eager else None)
    hidden = backbone(input_ids=batch["packed_input_ids"], attention_mask=mask,
                      position_ids=batch["packed_position_ids"], use_cache=False)[0]  # [B, L, H]
    rows = torch.arange(hidden.shape[0], device=hidden.device)[:, None]
    picked = hidden[rows, batch["packed_read"]]  # [B, 2, H]
    return hf.score(picked).squeeze(-1).float()
