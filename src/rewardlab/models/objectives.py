"""What the finetune training loop needs beyond Δ for its two extra objectives.

* Contrastive learning (Secrets of RLHF Part II, §3.1): :class:`HeadInputs` records the vector
  the reward head reads, the representation the SimCSE term compares, and
  :func:`contrastive_views` turns two dropout passes into the two views.
* MetaRM (Dou et al. 2024, arXiv 2405.00438): :class:`MetaBatches` tokenizes the meta set and
  gives each step's reward matrix ``[P, K]`` for :func:`rewardlab.losses.difference_loss`, and
  :func:`ascended` moves the weights to ``θ' = θ + η·∇J(θ)`` for the duration of a block.
  :func:`metarm_step` composes them into one step, the unit the tests check.

The losses themselves live in :mod:`rewardlab.losses`; the loop calls them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from rewardlab.data.meta import MetaSet
from rewardlab.models.text import EncodedText, encode_prompt_response, pad_encoded

__all__ = ["HeadInputs", "MetaBatches", "ascended", "contrastive_views", "metarm_step"]

_HEAD_NAMES = ("classifier", "score")


# -- MetaRM -------------------------------------------------------------------------------------
@contextlib.contextmanager
def ascended(params: Sequence[torch.nn.Parameter], objective: torch.Tensor | None,
             lr: float) -> Iterator[None]:
    """Inside the block the weights are ``θ' = θ + lr·∇objective(θ)`` (one gradient *ascent*
    step); on exit they are ``θ`` again, bit for bit (restored from a copy, not subtracted).

    ``objective`` is a scalar computed from ``params`` (MetaRM's J); ``None`` makes the block a
    no-op, so one loop serves training with and without MetaRM. Gradients taken in the block
    (``loss.backward()``) are those at ``θ'`` and stay in ``.grad`` after the block: this is the
    first-order MetaRM update, ``∇_θ L(θ') ≈ ∇L(θ')``, dropping the ``lr·∇²J(θ)·∇L(θ')`` term
    that differentiating through the ascent step would add. Backward must happen inside the
    block (autograd refuses weights changed after its forward).
    """
    if objective is None:
        yield
        return
    params = [p for p in params if p.requires_grad]
    grads = torch.autograd.grad(objective, params, allow_unused=True)
    saved = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, g in zip(params, grads, strict=True):
            if g is not None:
                p.add_(g, alpha=lr)
    try:
        yield
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved, strict=True):
                p.copy_(s)


def metarm_step(params: Sequence[torch.nn.Parameter], meta_objective: Callable[[], torch.Tensor],
                task_loss: Callable[[], torch.Tensor], *, meta_lr: float,
                backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """One first-order MetaRM step, before the optimizer's: returns ``(J(θ), L(θ'))``, detached.

    ``J = meta_objective()`` at θ; ascend to ``θ' = θ + meta_lr·∇J(θ)``; ``L = task_loss()`` at
    θ' and ``backward(L)``; back to θ. ``.grad`` then holds ``∇L(θ')`` for the optimizer to
    apply to θ, i.e. ``θ ← θ - α·∇L(θ')`` with plain SGD (Dou et al. 2024, Algorithm 1).
    """
    j = meta_objective()
    with ascended(params, j, meta_lr):
        loss = task_loss()
        backward(loss)
    return j.detach(), loss.detach()


class MetaBatches:
    """The meta set, tokenized once, served ``prompts`` prompts at a time in a random order
    (reshuffled at each pass) drawn from the seed of the last :meth:`restart`.

    ``rewards(reward_of, device)`` runs the next batch's responses through ``reward_of`` (a
    padded batch -> rewards ``[T]``, with gradients) and returns ``(rewards [P, K], mask [P,
    K])`` for
    :func:`rewardlab.losses.difference_loss`; ``K`` is the most responses of any prompt in the
    batch.
    """

    def __init__(self, meta: MetaSet, tokenizer: Any, pad_id: int, *, max_length: int,
                 pair_format: bool, prompts: int) -> None:
        prompt_texts = [p for p, rs in zip(meta.prompts, meta.responses, strict=True) for _ in rs]
        flat = encode_prompt_response(tokenizer, prompt_texts,
                                      [r for rs in meta.responses for r in rs],
                                      max_length=max_length, pair_format=pair_format)
        self.groups: list[list[EncodedText]] = []
        start = 0
        for rs in meta.responses:
            self.groups.append(flat[start:start + len(rs)])
            start += len(rs)
        self.pad_id = pad_id
        self.prompts = max(1, min(prompts, len(self.groups)))
        self.restart(0)

    def restart(self, seed: int) -> None:
        """Start a new random order from ``seed`` (each member draws its own)."""
        self.generator = torch.Generator().manual_seed(seed)
        self._order: list[int] = []

    def _next(self) -> list[int]:
        if len(self._order) < self.prompts:
            self._order = torch.randperm(len(self.groups), generator=self.generator).tolist()
        picked, self._order = self._order[:self.prompts], self._order[self.prompts:]
        return picked

    def rewards(self, reward_of: Callable[[dict[str, torch.Tensor]], torch.Tensor],
                device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        groups = [self.groups[g] for g in self._next()]
        items = [item for group in groups for item in group]
        inputs = {k: v.to(device) for k, v in pad_encoded(items, self.pad_id).items()}
        flat = reward_of(inputs).float()  # [T]
        width = max(len(group) for group in groups)
        mask = torch.zeros(len(groups), width, dtype=torch.bool, device=device)
        for row, group in enumerate(groups):
            mask[row, :len(group)] = True
        rewards = flat.new_zeros(len(groups), width).masked_scatter(mask, flat)
        return rewards, mask


# -- contrastive learning -----------------------------------------------------------------------
class HeadInputs:
    """Records, while active, the representation the reward head of ``model`` reads, ``[rows,
    H]`` per forward.

    The head is the shallowest module named ``classifier`` (BERT-like models) or ``score``
    (causal LMs); under peft that is the wrapper around every member's copy, so it sees the
    active member's input. A head fed pooled vectors ``[rows, H]`` is recorded as is. A head
    fed the whole sequence ``[rows, L, H]`` is pooled where the model reads its reward: the last
    real token for causal LMs (``last_token``; right padding), the first for encoders.
    """

    def __init__(self, model: torch.nn.Module, *, last_token: bool) -> None:
        self.last_token = last_token
        heads = [(name.count("."), name, module) for name, module in model.named_modules()
                 if name.rsplit(".", 1)[-1] in _HEAD_NAMES]
        if not heads:
            raise ValueError(f"--contrastive: found no reward head (a module named "
                             f"{' or '.join(_HEAD_NAMES)}) in {type(model).__name__}")
        self.head = min(heads, key=lambda h: (h[0], h[1]))[2]
        self.seen: list[torch.Tensor] = []

    @contextlib.contextmanager
    def recording(self, attention_mask: torch.Tensor) -> Iterator[list[torch.Tensor]]:
        """Within the block, each forward appends the head's input to the yielded list.
        ``attention_mask`` ``[rows, L]`` is that of the forwards' inputs."""
        self.seen = []
        last = attention_mask.sum(dim=1) - 1  # [rows]

        def keep(_module: torch.nn.Module, args: tuple[Any, ...]) -> None:
            x = args[0]
            if x.dim() == 3:
                x = x[torch.arange(x.shape[0], device=x.device), last] if self.last_token \
                    else x[:, 0]
            self.seen.append(x)

        handle = self.head.register_forward_pre_hook(keep)
        try:
            yield self.seen
        finally:
            handle.remove()


def contrastive_views(kind: str, first: torch.Tensor,
                      second: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two SimCSE views from two dropout passes over one padded pair batch.

    ``first`` and ``second`` are the head inputs ``[2B, H]`` of each pass (chosen rows, then
    rejected rows, as :func:`rewardlab.models.finetune.pair_deltas` runs them).
    ``"simcse-diff"``: ``h(chosen) - h(rejected)`` per pair, ``[B, H]`` each (the preference
    difference); ``"simcse-response"``: every response on its own, ``[2B, H]`` each.
    """
    if kind == "simcse-response":
        return first, second
    if kind == "simcse-diff":
        b = first.shape[0] // 2
        return first[:b] - first[b:], second[:b] - second[b:]
    raise ValueError(f"unknown contrastive kind {kind!r}")
