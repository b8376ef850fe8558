"""Metrics of reward differences against the dataset's labels. Pure: arrays in, dict out.

Every metric reads Δ = r(chosen) - r(rejected): a pair counts as correct only when Δ > 0, so a
tie (Δ == 0) is wrong, which keeps a constant model from scoring 0.5 for free.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from rewardlab.losses import preference_loss

__all__ = ["accuracy", "expected_calibration_error", "paired_bootstrap", "pick_stability",
           "preference_metrics", "seed_spread"]


def accuracy(delta: np.ndarray | torch.Tensor) -> float:
    """Share of pairs with Δ > 0 (ties count as wrong). ``delta``: ``[N]``."""
    d = np.asarray(delta, dtype=np.float64)
    return float((d > 0).mean()) if d.size else float("nan")


def expected_calibration_error(delta: np.ndarray | torch.Tensor, *, bins: int = 10) -> float:
    """Top-label ECE of P(chosen ≻ rejected) = σ(Δ), with ``bins`` equal-width confidence bins.

    Each pair's prediction is the more likely side, with confidence max(σ(Δ), 1 - σ(Δ)) in
    [0.5, 1]; ECE is the weighted mean gap between confidence and accuracy over the bins. Ties
    (Δ == 0) predict neither side and count as wrong, as in :func:`accuracy`.
    """
    d = np.asarray(delta, dtype=np.float64)
    if d.size == 0:
        return float("nan")
    p = 1.0 / (1.0 + np.exp(-np.clip(d, -500, 500)))
    conf = np.maximum(p, 1 - p)
    correct = (d > 0).astype(np.float64)
    edges = np.linspace(0.5, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            ece += in_bin.mean() * abs(conf[in_bin].mean() - correct[in_bin].mean())
    return float(ece)


def preference_metrics(
    delta: np.ndarray | torch.Tensor, *, source: Sequence[Any] | None = None
) -> dict[str, Any]:
    """All metrics for an ensemble's Δ.

    Args:
        delta: ``[M, N]`` (members × pairs) or ``[N]``. The ensemble's prediction is the mean
            over members.
        source: optional ``[N]`` labels (e.g. the file each pair came from) for per-source
            accuracy.

    Returns:
        ``{"n", "members", "accuracy", "mean_delta", "bt_loss", "ece", "member_accuracy",
        "member_accuracy_mean", "accuracy_by_source"?}``, where ``accuracy`` is that of the
        mean Δ.
    """
    d = torch.as_tensor(np.asarray(delta, dtype=np.float32))
    if d.dim() == 1:
        d = d.unsqueeze(0)
    if d.dim() != 2:
        raise ValueError(f"delta must be [N] or [M, N], got shape {tuple(d.shape)}")
    mean = d.mean(dim=0)
    member_acc = [accuracy(row) for row in d]
    out: dict[str, Any] = {
        "n": int(d.shape[1]),
        "members": int(d.shape[0]),
        "accuracy": accuracy(mean),
        "mean_delta": float(mean.mean()) if mean.numel() else float("nan"),
        "bt_loss": float(preference_loss(mean)) if mean.numel() else float("nan"),
        "ece": expected_calibration_error(mean),
        "member_accuracy": member_acc,
        "member_accuracy_mean": float(np.mean(member_acc)),
    }
    if source is not None:
        labels = np.asarray([str(s) for s in source])
        if labels.shape[0] != d.shape[1]:
            raise ValueError(f"source has {labels.shape[0]} entries for {d.shape[1]} pairs")
        out["accuracy_by_source"] = {
            str(s): {"n": int((labels == s).sum()), "accuracy": accuracy(mean[labels == s])}
            for s in sorted(set(labels.tolist()))
        }
    return out


def seed_spread(values: Any) -> tuple[float, float]:
    """Mean and *sample* standard deviation (n - 1) of per-seed values: a handful of seeds
    estimates the spread of a new seed, which the population std understates. The std of one
    value is 0."""
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def paired_bootstrap(correct: np.ndarray, reference: np.ndarray, *, samples: int = 2000,
                     seed: int = 0, chunk: int = 200) -> dict[str, Any]:
    """The accuracy gain of one method over another on the same pairs, with a 95% interval.

    Args:
        correct: per-pair correctness of the method, ``[N]`` (in [0, 1], e.g. a share of seeds)
            or ``[S, N]`` (one row per training seed, 0/1).
        reference: the same for the reference (the baseline), pair by pair (and seed by seed).
        samples: bootstrap resamples.
        seed: seed of the resampling.

    Returns ``{"gain", "ci95": [low, high], "n", "seeds"}``: the mean of ``correct -
    reference`` and the 2.5th and 97.5th percentiles of its bootstrap distribution. Pairing the
    two methods on the same resampled pairs is what makes a small gain detectable at all. With
    ``[S, N]`` inputs each resample also draws S training seeds with replacement (the same
    seed indices for both methods), so the interval counts the spread between seeds as well as
    between pairs.
    """
    diff = np.asarray(correct, dtype=np.float64) - np.asarray(reference, dtype=np.float64)
    if diff.ndim == 1:
        diff = diff[None, :]
    if diff.ndim != 2:
        raise ValueError(f"correct and reference must both be [N] or [S, N], got {diff.shape}")
    n_seeds, n = diff.shape
    if n == 0:
        return {"gain": float("nan"), "ci95": [float("nan"), float("nan")], "n": 0,
                "seeds": n_seeds}
    rng = np.random.default_rng(seed)
    means = []
    for k in range(0, samples, chunk):
        size = min(chunk, samples - k)
        rows = rng.integers(0, n_seeds, size=(size, n_seeds)) if n_seeds > 1 else None
        # Per resample: the seed-average of each pair over the drawn seeds, then drawn pairs.
        per_pair = (diff.mean(axis=0)[None, :] if rows is None
                    else diff[rows].mean(axis=1))  # [size, N]
        cols = rng.integers(0, n, size=(size, n))
        means.append(np.take_along_axis(per_pair, cols, axis=1).mean(axis=1))
    low, high = np.percentile(np.concatenate(means), [2.5, 97.5])
    return {"gain": float(diff.mean()), "ci95": [float(low), float(high)], "n": n,
            "seeds": n_seeds}


def pick_stability(correct: dict[str, np.ndarray], *, samples: int = 1000,
                   seed: int = 0) -> dict[str, float]:
    """How often each method would be picked: the share of bootstrap resamples of the pairs in
    which it has the highest accuracy (ties split evenly).

    Args:
        correct: method name -> ``[N]`` per-pair correctness on the pairs the pick is made on
            (validation), the same pairs in the same order for every method.

    A pick made on few pairs among many close methods is a coin toss: this says how much of one.
    """
    names = list(correct)
    table = np.stack([np.asarray(correct[m], dtype=np.float64) for m in names])  # [K, N]
    n = table.shape[1]
    wins = np.zeros(len(names))
    if n == 0:
        return dict.fromkeys(names, float("nan"))
    rng = np.random.default_rng(seed)
    for _ in range(samples):
        acc = table[:, rng.integers(0, n, size=n)].mean(axis=1)
        best = np.flatnonzero(acc == acc.max())
        wins[best] += 1.0 / best.size
    return {m: float(w / samples) for m, w in zip(names, wins)}
