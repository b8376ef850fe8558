"""A semi-synthetic preference set with ground truth, built from real texts.

Real responses (for instance the two responses of every HH-RLHF pair) are re-labelled by a
hidden *teacher*: a fixed random two-layer network on the same frozen features the embedding
backend sees, ``r*(x, y) = v · tanh(W [p, y, p⊙y])``, where ``p`` and ``y`` are the pooled
prompt and response vectors projected onto the pool's top ``teacher_dim`` principal components
(whitened). Preferences that depend on the main directions of variation, rather than on
near-constant ones, are what a learner from a few thousand pairs can hope to recover.

The teacher's preferred response becomes ``chosen``; then a known share of labels is flipped
(uniformly, or concentrated on near ties). Because the teacher is realisable by the student,
what remains is exactly the question this set exists to answer: does preference strength find
the flipped pairs, and do the denoising methods recover the accuracy the flips cost?

Columns added: ``teacher_gap`` (r*(chosen) - r*(rejected) as finally labelled, so negative on
flipped pairs), ``near_tie`` (|gap| in the lowest ``near_tie_quantile``), ``injected_flip``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rewardlab.models.heads import fit_projection
from rewardlab.noise import choose_flips

__all__ = ["make_synthetic", "teacher_rewards"]


def teacher_rewards(prompt: torch.Tensor, response: torch.Tensor, *, seed: int = 0,
                    hidden: int = 64) -> torch.Tensor:
    """The hidden teacher's reward of each (prompt, response): ``[N, d]``, ``[N, d]`` -> ``[N]``.

    Inputs are the projected (whitened) vectors; see the module docstring.
    """
    d = prompt.shape[1]
    g = torch.Generator().manual_seed(10_007 + seed)
    w = torch.randn(3 * d, hidden, generator=g) / np.sqrt(3 * d)
    v = torch.randn(hidden, generator=g) / np.sqrt(hidden)
    x = torch.cat([prompt, response, prompt * response], dim=-1).float()
    return torch.tanh(x @ w) @ v


def _near_tie_subsample(near: np.ndarray, share: float | None,
                        rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of the largest subset in which ``share`` of the pairs are near ties
    (``near`` ``[N]`` bool); every index when ``share`` is ``None``."""
    if share is None:
        return np.arange(len(near))
    if not 0 <= share <= 1:
        raise ValueError(f"near_tie_share must be in [0, 1], got {share}")
    n_near_avail, n_far_avail = int(near.sum()), int((~near).sum())
    total = int(min(n_near_avail / max(share, 1e-12), n_far_avail / max(1 - share, 1e-12),
                    len(near)))
    k_near = round(share * total)
    pick = np.concatenate([
        rng.choice(np.flatnonzero(near), size=k_near, replace=False),
        rng.choice(np.flatnonzero(~near), size=total - k_near, replace=False)])
    return np.sort(pick)


def make_synthetic(ds: Any, *, encoder: Any, flip_rate: float = 0.2, noise: str = "uniform",
                   near_tie_share: float | None = None, near_tie_quantile: float = 0.2,
                   seed: int = 0, teacher_seed: int = 0, teacher_dim: int = 16) -> Any:
    """Re-label the pairs of ``ds`` (a ``datasets.Dataset``) by the teacher and inject flips.

    Args:
        ds: pairs with ``prompt``, ``chosen``, ``rejected``; only the texts are used.
        encoder: a :class:`rewardlab.models.encode.TextEncoder` (its cache makes this cheap).
        flip_rate: share of labels flipped after teacher labelling.
        noise: ``"uniform"`` or ``"near-tie"`` (see :mod:`rewardlab.noise`).
        near_tie_share: when given, subsample so that this share of the returned pairs are near
            ties (|gap| in the lowest ``near_tie_quantile`` of the pool); ``None`` keeps all.
        seed: seed of the flips and of any subsampling.
        teacher_seed: seed of the teacher network.
        teacher_dim: principal components the teacher reads.

    Returns:
        A new Dataset with the canonical columns, ``source``, and the ground-truth columns.
    """
    import datasets

    prompt = encoder.encode(list(ds["prompt"]), side="prompt").vectors
    a = encoder.encode(list(ds["chosen"]), side="response").vectors
    b = encoder.encode(list(ds["rejected"]), side="response").vectors
    mean, matrix = fit_projection(torch.cat([prompt, a, b]), teacher_dim)
    prompt, a, b = ((x - mean) @ matrix for x in (prompt, a, b))
    gap = (teacher_rewards(prompt, a, seed=teacher_seed)
           - teacher_rewards(prompt, b, seed=teacher_seed)).numpy().astype(np.float64)
    near = np.abs(gap) <= np.quantile(np.abs(gap), near_tie_quantile)
    index = _near_tie_subsample(near, near_tie_share, np.random.default_rng(seed))
    gap, near = gap[index], near[index]
    flips = choose_flips(len(index), flip_rate, seed=seed, kind=noise, gap=gap)
    a_first = (gap > 0) != flips  # A is labelled chosen when the teacher prefers it, unless flipped
    texts_a = [ds["chosen"][int(i)] for i in index]
    texts_b = [ds["rejected"][int(i)] for i in index]
    prompts = [ds["prompt"][int(i)] for i in index]
    chosen = [x if f else y for x, y, f in zip(texts_a, texts_b, a_first)]
    rejected = [y if f else x for x, y, f in zip(texts_a, texts_b, a_first)]
    labelled_gap = np.where(a_first, gap, -gap)
    ids = list(ds["id"]) if "id" in ds.column_names else [str(i) for i in range(len(ds))]
    return datasets.Dataset.from_dict({
        "id": [f"syn-{ids[int(i)]}" for i in index],
        "prompt": prompts,
        "chosen": chosen,
        "rejected": rejected,
        "source": [f"synthetic-{noise}"] * len(index),
        "teacher_gap": labelled_gap.tolist(),
        "near_tie": near.tolist(),
        "injected_flip": flips.tolist(),
    })
