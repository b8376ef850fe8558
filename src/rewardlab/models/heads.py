"""M independent MLP reward heads, trained as one batched computation.

The weights of all members are stacked along a leading member axis, and one ``torch.bmm`` runs
every member's forward pass at once. The members share nothing but the frozen input features:
each has its own initialisation and (in the trainer) its own data order, and Adam's update is
elementwise, so a joint step is exactly M separate steps.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

__all__ = ["EnsembleHeads", "feature_subspaces", "fit_projection", "pair_features"]


EIGEN_FLOOR = 1e-4
"""Directions whose variance is below this share of the top direction's are not whitened: with
fewer texts than dimensions most eigenvalues are rounding noise (~1e-16 of the top), and
scaling them to unit variance blew held-out features up to 1e5."""


def fit_projection(vectors: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A whitening PCA: the mean ``[D]`` and a ``[D, k]`` matrix onto the top ``k`` components,
    each scaled to unit variance.

    k = min(dim, D, the number of components with variance above :data:`EIGEN_FLOOR` times the
    largest). Fitted on training texts only. Projecting frozen vectors onto fewer, whitened
    dimensions makes each head much cheaper (the ensemble's cost is in its first layer) and
    regularises it.
    """
    x = vectors.double()
    mean = x.mean(dim=0)
    cov = (x - mean).T @ (x - mean) / max(x.shape[0] - 1, 1)
    # numpy's eigh: torch's multi-threaded one was seen to stall for seconds on a busy 2-core box.
    w, v = np.linalg.eigh(cov.numpy())  # ascending
    eigval, eigvec = torch.from_numpy(w), torch.from_numpy(v)
    eigval, eigvec = eigval.flip(0), eigvec.flip(1)  # descending
    real = int((eigval > EIGEN_FLOOR * max(float(eigval[0]), 1e-300)).sum())
    k = max(1, min(dim, x.shape[1], real))
    top_val, top_vec = eigval[:k], eigvec[:, :k]
    # Fix each component's sign (largest loading positive) so the projection is reproducible.
    signs = torch.sign(top_vec.gather(0, top_vec.abs().argmax(0, keepdim=True)))
    matrix = top_vec * signs / top_val.clamp(min=1e-12).sqrt()
    return mean.float(), matrix.float()


def pair_features(prompt: torch.Tensor, response: torch.Tensor, tokens: torch.Tensor, *,
                  kind: str = "prompt-response") -> torch.Tensor:
    """Features of (prompt, response) for a head.

    Args:
        prompt: ``[N, D]`` pooled prompt vectors.
        response: ``[N, D]`` pooled response vectors.
        tokens: ``[N]`` response token counts; ``log1p`` of it is one feature, since response
            length is a strong (if shallow) signal in human preference data.
        kind: ``"prompt-response"`` gives ``[p, r, p⊙r, len]`` (``[N, 3D + 1]``), ``"response"``
            gives ``[r, len]`` (``[N, D + 1]``).
    """
    length = torch.log1p(tokens.to(response.dtype)).unsqueeze(-1) / 5.0  # ~unit scale
    if kind == "response":
        return torch.cat([response, length], dim=-1)
    if kind == "prompt-response":
        return torch.cat([prompt, response, prompt * response, length], dim=-1)
    raise ValueError(f"unknown head features {kind!r}; choose prompt-response or response")


def feature_subspaces(in_dim: int, seeds: list[int], *, kind: str, keep: float) -> torch.Tensor:
    """``[M, F]`` 0/1 masks for ``--diversity subspace``: member m sees its own random ``keep``
    share of the D vector dimensions (the same ones in p, r and p⊙r, as laid out by
    :func:`pair_features`) and always the length feature. Drawn from each member's seed."""
    parts = 3 if kind == "prompt-response" else 1
    dim = (in_dim - 1) // parts
    if dim * parts + 1 != in_dim:
        raise ValueError(f"{in_dim} features do not fit the {kind!r} layout")
    rows = []
    for seed in seeds:
        dims = torch.zeros(dim)
        chosen = torch.randperm(dim, generator=torch.Generator().manual_seed(seed + 11))
        dims[chosen[:max(1, round(keep * dim))]] = 1.0
        rows.append(torch.cat([dims] * parts + [torch.ones(1)]))
    return torch.stack(rows)


class EnsembleHeads(nn.Module):
    """``members`` two-layer MLPs ``F -> H -> 1`` with GELU, as stacked weights.

    ``forward`` takes ``[M, B, F]`` (each member its own batch) and returns rewards ``[M, B]``.
    """

    def __init__(self, members: int, in_dim: int, hidden: int, *, seeds: list[int],
                 feature_mask: torch.Tensor | None = None) -> None:
        super().__init__()
        if len(seeds) != members:
            raise ValueError(f"need one seed per member: {members} members, {len(seeds)} seeds")
        self.members, self.in_dim, self.hidden = members, in_dim, hidden
        w1, b1, w2, b2 = [], [], [], []
        for seed in seeds:
            g = torch.Generator().manual_seed(seed)
            # nn.Linear's default init (Kaiming-uniform with a=sqrt(5)), one generator per member.
            bound1 = 1 / math.sqrt(in_dim)
            w1.append((torch.rand(in_dim, hidden, generator=g) * 2 - 1) * bound1)
            b1.append((torch.rand(hidden, generator=g) * 2 - 1) * bound1)
            bound2 = 1 / math.sqrt(hidden)
            w2.append((torch.rand(hidden, generator=g) * 2 - 1) * bound2)
            b2.append(torch.zeros(()))
        self.w1 = nn.Parameter(torch.stack(w1))  # [M, F, H]
        self.b1 = nn.Parameter(torch.stack(b1))  # [M, H]
        self.w2 = nn.Parameter(torch.stack(w2))  # [M, H]
        self.b2 = nn.Parameter(torch.stack(b2))  # [M]
        self.feature_mask: torch.Tensor | None
        if feature_mask is not None:  # [M, F]: each member reads only its own features
            self.register_buffer("feature_mask", feature_mask.to(self.w1.dtype))
        else:
            self.feature_mask = None

    def forward(self, x: torch.Tensor, *, dropout: float = 0.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """``[M, B, F]`` features -> ``[M, B]`` rewards.

        ``dropout`` (training only) zeroes hidden units with masks drawn from ``generator``, so
        a seeded run repeats exactly. Pass the same mask for chosen and rejected by running both
        in one call: a pair's two responses then see the same sub-network, so dropout adds no
        noise to Δ beyond the regularisation.
        """
        if x.dim() != 3 or x.shape[0] != self.members or x.shape[2] != self.in_dim:
            raise ValueError(f"expected [{self.members}, B, {self.in_dim}], got {tuple(x.shape)}")
        if self.feature_mask is not None:
            x = x * self.feature_mask.unsqueeze(1)
        h = torch.nn.functional.gelu(torch.baddbmm(self.b1.unsqueeze(1), x, self.w1))
        if dropout > 0:
            half = x.shape[1] // 2  # [chosen; rejected] halves share one mask per pair
            keep = torch.rand(self.members, half, self.hidden, generator=generator) >= dropout
            mask = torch.cat([keep, keep], dim=1).to(h.dtype).to(h.device) / (1 - dropout)
            h = h * mask
        return (h * self.w2.unsqueeze(1)).sum(-1) + self.b2.unsqueeze(1)

    def score_all(self, x: torch.Tensor, *, chunk: int = 4096) -> torch.Tensor:
        """Every member's reward for the same inputs: ``[N, F]`` -> ``[M, N]``, in chunks."""
        outs = []
        for s in range(0, x.shape[0], chunk):
            xb = x[s:s + chunk].unsqueeze(0).expand(self.members, -1, -1)
            outs.append(self.forward(xb))
        return torch.cat(outs, dim=1) if outs else torch.zeros(self.members, 0)
