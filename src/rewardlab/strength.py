"""Preference strength statistics from an ensemble's reward differences.

Pure: arrays in, arrays out.

Conventions: ``delta`` is ``M × N`` (members first, pairs second) with
``delta[m, i] = r_m(x_i, chosen_i) - r_m(x_i, rejected_i)``; positive means chosen preferred.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

__all__ = [
    "CATEGORIES",
    "CATEGORY_METHODS",
    "N_GROUPS",
    "NoiseFloor",
    "StrengthStats",
    "auroc",
    "categorize",
    "estimate_noise_rate",
    "fit_noise_floor",
    "lowest_count",
    "spearman",
    "strength_groups",
    "strength_ranks",
    "strength_statistics",
    "summarize_strength",
]

CATEGORIES = ("incorrect", "ambiguous", "normal")
CategoryMethod = Literal["paper", "threshold"]
CATEGORY_METHODS: tuple[str, ...] = get_args(CategoryMethod)
N_GROUPS = 10
"""Strength groups are tenths of the pairs by û: group 1 holds the lowest 10%."""


def lowest_count(fraction: float, n: int) -> int:
    """How many pairs "the lowest ``fraction``" of ``n`` pairs holds: ⌊fraction · n⌋.

    The one rounding rule of rewardlab, shared by categories, flip/drop cuts and strength
    groups, so that "the lowest 20%" is the same pairs everywhere (groups 1-2 are exactly the
    pairs ``flip@0.2`` flips). Rounding down never touches more pairs than asked; the tiny
    tolerance keeps ``0.29 · 100`` (28.999999999999996 in floating point) at 29.
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    return min(n, math.floor(fraction * n + 1e-9))


@dataclass(frozen=True)
class StrengthStats:
    """Per-pair strength: ``mean`` û ``[N]``, ``std`` σ̂ ``[N]`` (population std) and
    ``members`` ``[M, N]``."""

    mean: np.ndarray
    std: np.ndarray
    members: np.ndarray


def strength_statistics(delta: np.ndarray) -> StrengthStats:
    """û_i = (1/M) Σ_m d_im and σ̂_i = sqrt(Σ_m (d_im - û_i)² / M).

    σ̂ is the population std, as in the paper.

    Args:
        delta: ``[M, N]`` reward differences (an ``[N]`` array is taken as M = 1, σ̂ = 0).
    """
    d = np.asarray(delta, dtype=np.float64)
    if d.ndim == 1:
        d = d[None, :]
    if d.ndim != 2 or d.shape[0] < 1:
        raise ValueError(f"delta must be [M, N] with M >= 1, got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("delta holds NaN or infinite values")
    mean = d.mean(axis=0)
    std = np.sqrt(((d - mean) ** 2).mean(axis=0))
    return StrengthStats(mean=mean, std=std, members=d)


def strength_ranks(mean: np.ndarray) -> np.ndarray:
    """Rank of each pair by û: 0 is the lowest. Ties keep input order (a stable sort)."""
    order = np.argsort(np.asarray(mean), kind="stable")
    ranks = np.empty(order.shape[0], dtype=np.int64)
    ranks[order] = np.arange(order.shape[0], dtype=np.int64)
    return ranks


def strength_groups(ranks: np.ndarray, *, n_groups: int = N_GROUPS) -> np.ndarray:
    """Group of each pair, 1..n_groups, by rank; group 1 holds the lowest û.

    Groups 1..k together hold exactly :func:`lowest_count` (k / n_groups, N) pairs, so group
    sizes differ by at most one.
    """
    r = np.asarray(ranks, dtype=np.int64)
    n = r.shape[0]
    if n_groups < 1:
        raise ValueError(f"n_groups must be at least 1, got {n_groups}")
    # Rank r is in group g when the first g - 1 groups hold no more than r pairs.
    ends = np.array([lowest_count(k / n_groups, n) for k in range(1, n_groups + 1)])
    return np.searchsorted(ends, r, side="right").astype(np.int64) + 1


def categorize(
    mean: np.ndarray, *, method: str = "paper", ranks: np.ndarray | None = None, tau: float = 0.5,
    incorrect_frac: float = 0.2, ambiguous_frac: float = 0.2,
) -> np.ndarray:
    """Name each pair ``incorrect``, ``ambiguous`` or ``normal``.

    * ``method="paper"``: the paper's reading of its group experiment, by rank: the lowest
      ``incorrect_frac`` of pairs are incorrect, the next ``ambiguous_frac`` ambiguous.
    * ``method="threshold"``: û < -tau is incorrect, |û| <= tau ambiguous, the rest normal.

    Returns an object array of strings, ``[N]``.
    """
    m = np.asarray(mean, dtype=np.float64)
    out = np.full(m.shape[0], "normal", dtype=object)
    if method == "paper":
        r = strength_ranks(m) if ranks is None else np.asarray(ranks)
        n = m.shape[0]
        # Rank-based cut points, by the rule every "lowest p%" follows.
        n_bad = lowest_count(incorrect_frac, n)
        n_amb = lowest_count(incorrect_frac + ambiguous_frac, n)
        out[r < n_amb] = "ambiguous"
        out[r < n_bad] = "incorrect"
    elif method == "threshold":
        if tau < 0:
            raise ValueError(f"tau must be >= 0, got {tau}")
        out[np.abs(m) <= tau] = "ambiguous"
        out[m < -tau] = "incorrect"
    else:
        raise ValueError(f"unknown category method {method!r}; choose one of "
                         f"{', '.join(CATEGORY_METHODS)}")
    return out


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..N with ties given their average rank (as Spearman and Mann-Whitney need)."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    ranks = np.empty(x.shape[0], dtype=np.float64)
    # Runs of equal values share the mean of their 1-based positions, (start + end + 1) / 2.
    first = np.r_[True, sorted_x[1:] != sorted_x[:-1]]
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], x.shape[0]]
    ranks[order] = ((starts + ends + 1) / 2.0)[np.cumsum(first) - 1]
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (Pearson on average ranks); NaN when either side is constant."""
    ra, rb = _average_ranks(np.asarray(a)), _average_ranks(np.asarray(b))
    if ra.shape != rb.shape:
        raise ValueError(f"shapes differ: {ra.shape} and {rb.shape}")
    if ra.size < 2 or ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for finding ``labels == True`` (ties count half).

    Equals the probability that a random positive scores above a random negative.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def summarize_strength(stats: StrengthStats, groups: np.ndarray,
                       categories: np.ndarray) -> dict[str, Any]:
    """JSON-able summary: share of û < 0, quantiles, per-group means, Spearman(û, σ̂),
    category counts."""
    qs = (0.05, 0.25, 0.5, 0.75, 0.95)

    def quantiles(x: np.ndarray) -> dict[str, float]:
        if x.size == 0:
            return {str(q): float("nan") for q in qs}
        return {str(q): float(v) for q, v in zip(qs, np.quantile(x, qs))}

    group_rows = []
    for g in range(1, 11):
        sel = groups == g
        group_rows.append({
            "group": g,
            "n": int(sel.sum()),
            "mean_strength": float(stats.mean[sel].mean()) if sel.any() else float("nan"),
            "std_strength_mean": float(stats.std[sel].mean()) if sel.any() else float("nan"),
        })
    return {
        "fraction_negative": float((stats.mean < 0).mean()) if stats.mean.size else float("nan"),
        "quantiles": {"strength_mean": quantiles(stats.mean), "strength_std": quantiles(stats.std)},
        "mean": {"strength_mean": float(stats.mean.mean()),
                 "strength_std": float(stats.std.mean())},
        "groups": group_rows,
        "spearman_mean_std": spearman(stats.mean, stats.std),
        "category_counts": {c: int((categories == c).sum()) for c in CATEGORIES},
        # "incorrect" is a rank (the lowest 20%), not a verdict: how many of them the ensemble
        # still agrees with.
        "incorrect_with_positive_strength": int(((categories == "incorrect")
                                                 & (stats.mean > 0)).sum()),
    }


NOISE_RATE_BINS = 2000
"""``estimate_noise_rate`` pools pairs into this many bins of similar |û| (exact below it)."""
NOISE_RATE_EVIDENCE = 3.32
"""Log-likelihood gain over "no wrong labels" (η = 0) that an estimate must show: half the 99th
percentile of χ² with one degree of freedom, a likelihood-ratio test at the 1% level."""


@dataclass(frozen=True)
class NoiseFloor:
    """The fitted floor model of wrong labels (see :func:`fit_noise_floor`).

    ``P(û < 0 | |û| = x) = η + (1 - 2η)·σ(-c·x)``: ``eta`` is η, ``slope`` is c (per unit of
    û), ``evidence`` the log-likelihood gain of the fit over η = 0. ``instrument_ok`` is the
    self-test's verdict on the ensemble that measured û (``None``: not measured).
    """

    eta: float
    slope: float
    evidence: float
    n: int
    instrument_ok: bool | None = None

    @property
    def has_evidence(self) -> bool:
        """Whether the floor explains the signs clearly better than no wrong labels (a
        likelihood-ratio test at the 1% level)."""
        return self.eta > 0 and self.evidence >= NOISE_RATE_EVIDENCE

    @property
    def rate(self) -> float:
        """The share of wrong labels to act on: η with evidence from an instrument that is not
        known to be blind, else 0."""
        return self.eta if self.has_evidence and self.instrument_ok is not False else 0.0

    @property
    def status(self) -> str:
        """``"estimated"`` (a rate to act on), ``"clean"`` (an instrument that passed its
        self-test found no evidence of wrong labels) or ``"no evidence"`` (the ensemble is too
        weak to tell, or was never tested, so 0 does not mean clean)."""
        if self.rate > 0:
            return "estimated"
        return "clean" if self.instrument_ok else "no evidence"

    def posterior(self, mean: np.ndarray) -> np.ndarray:
        """``[N]`` P(label wrong | û) = σ(logit η - c·û); zeros when :attr:`rate` is 0.

        Bayes on the floor model: a label is wrong with prior η, and the ensemble errs on a
        pair of strength x with probability σ(-c·x), so the odds of a wrong label are
        η/(1-η)·e^(-c·û) whatever the sign of û. Positive û (the ensemble agrees with the label)
        lowers them.
        """
        u = np.asarray(mean, dtype=np.float64)
        if self.rate <= 0:
            return np.zeros_like(u)
        logit = math.log(self.eta / (1.0 - self.eta)) - self.slope * u
        return 0.5 * (1.0 + np.tanh(0.5 * np.clip(logit, -1e3, 1e3)))  # σ without overflow

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "rate": self.rate, "eta": self.eta,
                "slope": self.slope, "evidence": self.evidence, "n": self.n,
                "instrument_ok": self.instrument_ok}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NoiseFloor:
        return cls(float(d["eta"]), float(d["slope"]), float(d["evidence"]), int(d["n"]),
                   d.get("instrument_ok"))


def fit_noise_floor(mean: np.ndarray) -> NoiseFloor:
    """Fit the floor model to cross-fitted û ``[N]`` (see :func:`estimate_noise_rate`).

    η = 0 with no evidence for fewer than 10 pairs or non-finite input.
    """
    x = np.asarray(mean, dtype=np.float64)
    if x.shape[0] < 10 or not np.isfinite(x).all():
        return NoiseFloor(0.0, 0.0, 0.0, int(x.shape[0]))
    mags, neg, counts = _by_magnitude(np.abs(x), x < 0, NOISE_RATE_BINS)
    scale = max(float(np.median(np.abs(x))), 1e-12)
    best_ll, best_eta, best_c, none_ll = -math.inf, 0.0, 0.0, -math.inf
    # c from nearly 0 (signs a coin toss at every |û|) to a sharp boundary.
    for c in np.geomspace(1e-3, 200.0, 150) / scale:
        own = 0.5 * (1.0 - np.tanh(0.5 * np.minimum(c * mags, 1e3)))  # σ(-c·x), no overflow
        eta, ll = _floor_fit(neg, counts, own)
        if ll > best_ll:
            best_ll, best_eta, best_c = ll, eta, float(c)
        none_ll = max(none_ll, _log_likelihood(neg, counts, own))
    return NoiseFloor(float(best_eta), best_c, float(best_ll - none_ll), int(x.shape[0]))


def estimate_noise_rate(mean: np.ndarray) -> float:
    """The share of wrong labels implied by cross-fitted û ``[N]`` (what ``flip@auto`` flips).

    A model that never saw a pair errs where the pair is hard (small |û|), while a wrong label
    is wrong whatever the pair's strength: it shows as a mirrored sign at *any* |û|. So the share
    of û < 0 among pairs of strength |û| = x is modelled as a floor plus the model's own errors,

        P(û < 0 | |û| = x) = η + (1 - 2η)·σ(-c·x),

    fitted by maximum likelihood over η ∈ [0, 0.5] and a grid of c; η is the estimate. (A
    mirrored Gaussian mixture is the special case c = 2μ/s².) It does not depend on the reward
    scale. It is 0 unless the floor explains the signs clearly better than the model's errors
    alone (a likelihood-ratio test against η = 0 at the 1% level): a model near chance, whose
    signs are a coin toss at every |û|, gives no evidence of any rate. Also 0 for fewer than 10
    pairs or non-finite input.
    """
    return fit_noise_floor(mean).rate


def _by_magnitude(mags: np.ndarray, neg: np.ndarray,
                  bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs sorted by |û| and pooled into at most ``bins`` equal-count bins: each bin's mean
    |û|, number of û < 0 and number of pairs (so a million pairs fit as fast as 2,000)."""
    order = np.argsort(mags, kind="stable")
    edges = np.linspace(0, len(mags), min(bins, len(mags)) + 1).round().astype(np.int64)
    sums = np.add.reduceat(mags[order], edges[:-1])
    negs = np.add.reduceat(neg[order].astype(np.float64), edges[:-1])
    counts = np.diff(edges).astype(np.float64)
    return sums / counts, negs, counts


def _floor_fit(neg: np.ndarray, counts: np.ndarray, own: np.ndarray) -> tuple[float, float]:
    """The η in [0, 0.5] that maximizes the binomial log-likelihood of ``neg`` of ``counts`` with
    p = own + η(1 - 2·own), and that log-likelihood. Concave in η: bisection on the slope."""
    def p_of(eta: float) -> np.ndarray:
        return np.clip(own + eta * (1.0 - 2.0 * own), 1e-12, 1.0 - 1e-12)

    def slope(eta: float) -> float:
        p = p_of(eta)
        return float(np.sum((1.0 - 2.0 * own) * (neg / p - (counts - neg) / (1.0 - p))))

    lo, hi = 0.0, 0.5
    if slope(0.0) > 0:
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if slope(mid) > 0 else (lo, mid)
    return lo, _log_likelihood(neg, counts, p_of(lo))


def _log_likelihood(neg: np.ndarray, counts: np.ndarray, p: np.ndarray) -> float:
    """Binomial log-likelihood of ``neg`` of ``counts`` signs negative with probability ``p``."""
    p = np.clip(p, 1e-12, 1.0 - 1e-12)
    return float(np.sum(neg * np.log(p) + (counts - neg) * np.log1p(-p)))
