"""The gauge: how well an ensemble sees wrong labels on the user's own data. Pure.

Every number rewardlab reports comes from one instrument, the members' reward differences Δ. A
self-test tells a blind instrument from clean data: flip a known share of the training labels,
measure cross-fitted strength on that copy, and score how well low û finds the flips. This
module turns that measurement into numbers and words; the strength stage runs it
(:func:`rewardlab.stages.strength.self_test`).

The self-test reads *low* on noisy data, never high: a flip that lands on a label that was
already wrong makes it right. For an instrument that separates wrong from right labels at AUROC A,
on data with a share w of wrong labels, the self-test sees 0.5 + (A - 0.5)(1 - 2w), whatever
share it flips. So a pass is trustworthy, and a fail on very noisy data may undersell the
ensemble; ``adjusted_auroc`` undoes the attenuation where the noise floor on the copy names w.

Conventions: ``mean`` is û ``[N]`` as labelled *in the flipped copy* (positive agrees with the
copy's label); ``flipped`` ``[N]`` bool marks the labels the self-test flipped.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rewardlab.strength import auroc, fit_noise_floor, lowest_count

__all__ = ["INSTRUMENT_MIN_AUROC", "auroc_interval", "instrument_summary", "instrument_words"]

INSTRUMENT_MIN_AUROC = 0.70
"""The self-test passes when the lower end of the 95% interval of its detection AUROC reaches
this. Why 0.70 (BENCHMARKS.md, "The gauge"): frozen MiniLM read 0.53-0.69 on human labels
(HH-RLHF, PandaLM), where the noise floor found no evidence and no method beat the baseline beyond
the seed noise, and 0.86-0.88 on the semi-synthetic set, where the cuts recover part of the loss.
Any threshold between about 0.63 and 0.83 separates them; at 0.70 the lowest 10% of û hold about
2.6 times the chance share of known flips at a 10% flip rate (binormal reading). The interval's
lower end, not the point, so that small data must show it with confidence."""


def auroc_interval(scores: np.ndarray, labels: np.ndarray, *, samples: int = 400,
                   seed: int = 0) -> list[float]:
    """95% bootstrap interval ``[low, high]`` of :func:`auroc` (``scores`` ``[N]`` finding
    ``labels`` ``[N]`` bool), resampling pairs within each class so every resample has both.
    ``[nan, nan]`` when a class is empty."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    if pos.size == 0 or neg.size == 0:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    lab = np.r_[np.ones(pos.size, bool), np.zeros(neg.size, bool)]
    values = [auroc(np.r_[s[rng.choice(pos, pos.size)], s[rng.choice(neg, neg.size)]], lab)
              for _ in range(samples)]
    low, high = np.percentile(values, [2.5, 97.5])
    return [float(low), float(high)]


def instrument_summary(mean: np.ndarray, flipped: np.ndarray, *, rate: float,
                       seed: int = 0) -> dict[str, Any]:
    """How well û finds the self-test's known flips, and whether that is enough to act on.

    Args:
        mean: ``[N]`` cross-fitted û of the flipped copy, as labelled in the copy.
        flipped: ``[N]`` bool, the labels the self-test flipped.
        rate: the share the self-test asked for (the realized share is ``flipped.mean()``).

    Returns ``auroc`` and ``auroc_ci95`` (of -û), ``precision_lowest_10``/``_20`` and their
    ``enrichment`` over the realized flip share (1 is chance), the noise floor fitted on the copy
    (``estimated_rate``, which counts the data's own wrong labels too), the out-of-fold accuracy
    (share of pairs whose û agrees with the label *before* the flips) and ``ok``.
    """
    u = np.asarray(mean, dtype=np.float64)
    f = np.asarray(flipped, dtype=bool)
    if u.shape != f.shape or u.ndim != 1:
        raise ValueError(f"mean and flipped must both be [N], got {u.shape} and {f.shape}")
    share = float(f.mean()) if f.size else float("nan")
    order = np.argsort(u, kind="stable")
    out: dict[str, Any] = {"pairs": int(u.size), "flipped": int(f.sum()), "rate": rate,
                           "auroc": auroc(-u, f), "auroc_ci95": auroc_interval(-u, f, seed=seed)}
    for pct in (10, 20):
        k = lowest_count(pct / 100, u.size)
        precision = float(f[order[:k]].mean()) if k else float("nan")
        out[f"precision_lowest_{pct}"] = precision
        out[f"enrichment_lowest_{pct}"] = precision / share if share > 0 else float("nan")
    out["estimated_rate"] = fit_noise_floor(u).rate
    out.update(_adjusted(out["auroc"], out["estimated_rate"], share))
    # Before the flips, a flipped pair's label is the other side: û < 0 agrees with it.
    out["oof_accuracy"] = float(np.where(f, u < 0, u > 0).mean()) if u.size else float("nan")
    low = out["auroc_ci95"][0]
    out["ok"] = bool(np.isfinite(low) and low >= INSTRUMENT_MIN_AUROC)
    out["min_auroc"] = INSTRUMENT_MIN_AUROC
    out["verdict"] = instrument_words(out)
    return out


def _adjusted(auroc_seen: float, rate_on_copy: float, share: float) -> dict[str, float | None]:
    """The data's own share of wrong labels w, from the floor fitted on the copy (whose wrong
    share is w + r(1 - 2w) for flips at rate r), and the AUROC with the attenuation by w undone:
    0.5 + (AUROC - 0.5) / (1 - 2w). ``None`` when the floor names no rate above the flips'."""
    if not (rate_on_copy > share and 0 < share < 0.5 and np.isfinite(auroc_seen)):
        return {"data_noise_estimate": None, "adjusted_auroc": None}
    w = min((rate_on_copy - share) / (1.0 - 2.0 * share), 0.45)
    return {"data_noise_estimate": float(w),
            "adjusted_auroc": float(min(1.0, 0.5 + (auroc_seen - 0.5) / (1.0 - 2.0 * w)))}


def instrument_words(s: dict[str, Any]) -> str:
    """The self-test's verdict in one sentence, from :func:`instrument_summary`'s record."""
    a, (low, high) = s["auroc"], s["auroc_ci95"]
    if not np.isfinite(a):
        return ("this ensemble could not be tested on your data (too few pairs to flip): its "
                "ranks of wrong labels are unverified")
    found = f"this ensemble finds known wrong labels at AUROC {a:.2f} ({low:.2f}-{high:.2f})"
    if not s["ok"]:
        return (f"{found} on your data: too weak to act on (it needs {s['min_auroc']:.2f} at the "
                f"interval's low end); 'incorrect' pairs are its lowest ranks, not verdicts")
    return (f"{found} on your data: strong enough; the lowest 20% are about "
            f"{s['enrichment_lowest_20']:.1f}x richer in wrong labels than chance")
