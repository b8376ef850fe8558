"""The training losses, as pure functions of tensors: the preference loss family, and the
terms added to it (SimCSE's contrastive loss, MetaRM's difference loss, the nuclear-norm
diversity of LoRA ensembles).

Sign convention everywhere in rewardlab: ``delta = r(x, y_chosen) - r(x, y_rejected)``, so a
positive Δ means the model prefers the response labelled ``chosen``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["difference_loss", "nuclear_diversity_loss", "preference_loss", "simcse_loss"]


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



def simcse_loss(view_a: torch.Tensor, view_b: torch.Tensor, *,
                temperature: float = 0.05) -> torch.Tensor:
    """SimCSE's unsupervised InfoNCE loss (Gao et al. 2021, eq. 1), mean over the batch.

    ``ℓ_i = -log( exp(cos(a_i, b_i)/τ) / Σ_j exp(cos(a_i, b_j)/τ) )``

    ``a_i`` and ``b_i`` are two dropout views of the same input (the positive pair); the other
    ``b_j`` in the batch are its negatives. One direction (a -> b), as SimCSE. Wang et al. 2024
    ("Secrets of RLHF Part II", §3.1) add it to the reward model's loss, ``L = L_BT + β·L_cl``,
    on the representation of single responses or of the preference difference
    (``h(chosen) - h(rejected)``): the caller picks which vectors to pass.

    Args:
        view_a, view_b: ``[N, H]`` representations, row ``i`` of each from the same input.
        temperature: τ > 0 (SimCSE uses 0.05).

    Returns a scalar; ``log N`` when every similarity is equal, towards 0 as each ``a_i``
    matches its own ``b_i`` and no other. A batch of one has no negatives: the loss is 0.
    """
    if view_a.shape != view_b.shape or view_a.dim() != 2:
        raise ValueError(f"views must both be [N, H]; got {tuple(view_a.shape)} and "
                         f"{tuple(view_b.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = F.normalize(view_a, dim=-1) @ F.normalize(view_b, dim=-1).T / temperature  # [N, N]
    labels = torch.arange(view_a.shape[0], device=view_a.device)
    return F.cross_entropy(logits, labels)


def difference_loss(rewards: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """MetaRM's difference loss J (Dou et al. 2024, arXiv 2405.00438, §3, eq. 2), mean over
    prompts. Training *maximizes* it: larger J means the rewards of one prompt's responses are
    further apart, i.e. the model tells them apart.

    For one prompt with ``k`` responses ``s_1..s_k``:
    ``J = 2/k² · Σ_{i<j} σ(|r(x, s_i) - r(x, s_j)|)``

    The paper's normalization is ``2/k²`` (not one over the number of pairs), so a prompt's J
    lies in ``[(k-1)/(2k), (k-1)/k)``; with ``k = 2``, ``J = σ(|Δ|)/2`` in ``[0.25, 0.5)``.

    Args:
        rewards: ``[P, K]`` rewards of up to ``K`` responses for each of ``P`` prompts.
        mask: ``[P, K]`` bool, which entries are real responses (default: all). Prompts may have
            different ``k``; each uses its own. A prompt needs at least 2 responses.

    Returns a scalar: the mean over prompts of each prompt's J.
    """
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be [P, K], got shape {tuple(rewards.shape)}")
    if mask is None:
        mask = torch.ones_like(rewards, dtype=torch.bool)
    if mask.shape != rewards.shape:
        raise ValueError(f"mask has shape {tuple(mask.shape)} but rewards {tuple(rewards.shape)}")
    k = mask.sum(dim=1).to(rewards.dtype)  # [P]
    if bool((k < 2).any()):
        raise ValueError("every prompt needs at least 2 responses for the difference loss")
    gap = (rewards.unsqueeze(2) - rewards.unsqueeze(1)).abs()  # [P, K, K]
    both = mask.unsqueeze(2) & mask.unsqueeze(1)
    upper = torch.ones_like(both).triu(diagonal=1)  # each unordered pair once (i < j)
    per_prompt = (torch.sigmoid(gap) * (both & upper)).sum(dim=(1, 2))  # [P]
    return (2 * per_prompt / k**2).mean()


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
