"""The preference loss family, as one pure function of tensors, and the terms added to it.

Sign convention everywhere in rewardlab: ``delta = r(x, y_chosen) - r(x, y_rejected)``, so a
positive Δ means the model prefers the response labelled ``chosen``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["nuclear_diversity_loss", "preference_loss"]


def _as_pair_tensor(value: float | torch.Tensor, delta: torch.Tensor, name: str) -> torch.Tensor:
    """A scalar or a tensor of exactly ``delta``'s shape, on ``delta``'s device and dtype.

    Refusing other shapes is deliberate: a ``[B]`` margin against ``[B, 1]`` rewards would
    otherwise broadcast silently to ``[B, B]`` (a known bug in other toolkits).
    """
    if not torch.is_tensor(value):
        return torch.as_tensor(value, dtype=delta.dtype, device=delta.device)
    if value.dim() > 0 and value.shape != delta.shape:
        raise ValueError(
            f"{name} has shape {tuple(value.shape)} but delta has shape {tuple(delta.shape)}; "
            f"pass a scalar or one value per pair (squeeze [B, 1] rewards to [B] first)"
        )
    return value.to(device=delta.device, dtype=delta.dtype)


def preference_loss(
    delta: torch.Tensor,
    *,
    target: float | torch.Tensor = 1.0,
    margin: float | torch.Tensor = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Bradley-Terry loss with soft targets and margins.

    ``L = -[t · log σ(Δ - m) + (1 - t) · log σ(-(Δ - m))]``

    * ``t = 1, m = 0``: Bradley-Terry, ``-log σ(Δ)``.
    * ``t = 1 - α``: label smoothing (the paper's ``-(1-α) log p - α log(1-p)``).
    * ``m = û``: the adaptive margin, ``-log σ(Δ - û)``.
    * ``t = 0``: a flipped label.

    Args:
        delta: ``[...]`` reward differences, chosen minus rejected.
        target: probability that ``chosen`` is preferred; a scalar or one value per pair
            (same shape as ``delta``).
        margin: subtracted from Δ before the sigmoid; scalar or same shape as ``delta``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per-pair losses, shape of ``delta``).

    Uses ``logsigmoid``, so it stays finite for |Δ| up to 1e4 and beyond.
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    t = _as_pair_tensor(target, delta, "target")
    m = _as_pair_tensor(margin, delta, "margin")
    z = delta - m
    losses = -(t * F.logsigmoid(z) + (1 - t) * F.logsigmoid(-z))
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    return losses



def nuclear_diversity_loss(stacks: Sequence[torch.Tensor]) -> torch.Tensor:
    """Diversity term of a LoRA ensemble (Zhai et al. 2024, "diverse reward LoRA ensembles"):
    minus the nuclear norm of the members' LoRA A matrices stacked, averaged over layers.

    ``L_div = -(1/L) · Σ_l ||[A_l^1; A_l^2; ...; A_l^K]||_*``

    where ``A_l^k`` is member k's ``[r, d]`` down-projection at adapted layer l and ``||·||_*``
    the sum of singular values. Stacking K members gives a ``[K·r, d]`` matrix whose nuclear
    norm is largest, for rows of given lengths, when the members' rows span different
    directions: adding ``α · L_div`` to the loss pushes the members apart.

    Args:
        stacks: one ``[K, r, d]`` tensor per layer (members first; layers may differ in ``d``).
            Members whose matrices are passed detached act as fixed references.

    Returns:
        A scalar (0 for no layers); its gradient flows to every A that requires one.
    """
    if not stacks:
        return torch.zeros(())
    norms = [torch.linalg.matrix_norm(a.reshape(-1, a.shape[-1]), ord="nuc") for a in stacks]
    return -torch.stack(norms).mean()
