"""Known label noise: which pairs to flip, for benchmarks that need ground truth. Pure.

Two structures:

* ``uniform``: every pair is equally likely to be flipped.
* ``near-tie``: flips concentrate on pairs with a small true gap, as human annotators err on close
  calls. A pair's chance is proportional to ``exp(-|gap| / s)`` with ``s`` the median ``|gap|``
  divided by two (needs the true gap, so only for synthetic data).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any, Literal, get_args

import numpy as np

__all__ = ["NOISE_KINDS", "NoiseKind", "choose_flips", "flips_by_id", "inject_flips",
           "swap_labels"]

NoiseKind = Literal["uniform", "near-tie"]
NOISE_KINDS: tuple[str, ...] = get_args(NoiseKind)

log = logging.getLogger("rewardlab")


def choose_flips(n: int, fraction: float, *, seed: int, kind: str = "uniform",
                 gap: np.ndarray | None = None) -> np.ndarray:
    """A ``[n]`` bool mask with exactly ``round(fraction · n)`` pairs chosen to flip.

    Args:
        n: number of pairs.
        fraction: share to flip, in [0, 1).
        seed: the same seed gives the same mask.
        kind: ``"uniform"`` or ``"near-tie"`` (which needs ``gap``, ``[n]``, the true reward gap).
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; choose one of {', '.join(NOISE_KINDS)}")
    rng = np.random.default_rng(seed)
    k = round(fraction * n)
    mask = np.zeros(n, dtype=bool)
    if k == 0:
        return mask
    if kind == "uniform":
        mask[rng.choice(n, size=k, replace=False)] = True
        return mask
    if gap is None or np.asarray(gap).shape != (n,):
        raise ValueError("near-tie noise needs the true gap of every pair, shape [n]")
    g = np.abs(np.asarray(gap, dtype=np.float64))
    scale = max(float(np.median(g)) / 2, 1e-12)
    w = np.exp(-g / scale)
    mask[rng.choice(n, size=k, replace=False, p=w / w.sum())] = True
    return mask


def swap_labels(ds: Any, mask: np.ndarray) -> Any:
    """``ds`` (a ``datasets.Dataset``) with chosen and rejected swapped where ``mask`` (``[N]``
    bool), and the mask recorded in the column ``injected_flip``."""
    mask = np.asarray(mask, dtype=bool)

    def swap(row: dict[str, Any], i: int) -> dict[str, Any]:
        if mask[i]:
            row["chosen"], row["rejected"] = row["rejected"], row["chosen"]
        row["injected_flip"] = bool(mask[i])
        return row

    return ds.map(swap, with_indices=True, desc="flipping labels", load_from_cache_file=False)


def flips_by_id(ids: Sequence[str], fraction: float, *, seed: int) -> np.ndarray:
    """``[N]`` bool: which pairs a known-noise run flips, decided by each pair's id alone.

    A pair is flipped when a hash of ``(seed, id)``, read as a number in [0, 1), falls below
    ``fraction``. So its fate never depends on N, on the other pairs or on the split: the
    strength stage and a later ``train``/``compare`` on a different subset flip the same pairs,
    and their ids join in the same orientation. The count is about ``fraction · N`` (binomial),
    not exactly.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    out = np.zeros(len(ids), dtype=bool)
    for i, pair_id in enumerate(ids):
        digest = hashlib.blake2b(f"{seed}:{pair_id}".encode("utf-8", "surrogatepass"),
                                 digest_size=8).digest()
        out[i] = int.from_bytes(digest, "big") / 2**64 < fraction
    return out


def inject_flips(ds: Any, fraction: float, *, seed: int) -> Any:
    """Swap chosen and rejected on a known random share of the pairs of ``ds``
    (``--inject-flips``), recorded in ``injected_flip``; ``ds`` unchanged when the share is 0.

    Which pairs flip depends only on their ids and ``seed`` (:func:`flips_by_id`).
    """
    if fraction <= 0:
        return ds
    mask = flips_by_id(list(ds["id"]), fraction, seed=seed)
    log.info("injected %d label flips (seed %d)", int(mask.sum()), seed)
    return swap_labels(ds, mask)
