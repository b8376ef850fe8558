"""Noise-rate estimators on saved strength: estimated share of wrong labels against the true one.

Reads the ``.npz`` files that ``bench_denoise.py --save-strength DIR`` writes (û ``[N]`` and the
known flip mask of one (data set, scheme, seed, rate)) and prints, for every candidate estimator,
its estimate beside the true share of flipped labels. Only û is used, as
``strength.estimate_noise_rate`` (what ``flip@auto`` and ``drop@auto`` cut) receives only û.

Candidates (all read û as cross-fitted: a model never scores a pair it trained on, so a wrong
label shows as the mirror image of its pair's strength, -û instead of û):

* ``negative``: the share with û < 0 (counts every model error as label noise).
* ``mirror-gauss``: the mirrored two-component Gaussian mixture (1-η)N(μ,s²)+ηN(-μ,s²) by EM
  (the first ``estimate_noise_rate``).
* ``confident``: confident learning's count (Northcutt et al., 2021) for a pair's two
  orientations: a pair is confidently right when σ(û) reaches the mean σ(û), confidently wrong
  when σ(-û) does; η = wrong / (right + wrong).
* ``anchor@q``: the share with û < 0 among the top ``q`` of pairs by |û| (anchor points: where
  the model is confident, its own errors are rare, so what disagrees is mostly label noise).
* ``floor``: P(û < 0 | |û| = x) = η + (1 - 2η)·σ(-c·x) fitted by maximum likelihood (the
  library's estimator: see ``rewardlab.strength.estimate_noise_rate``).

Reproduce:  .venv/bin/python benchmarks/bench_noise_rate.py /tmp/trustbench/strength/*.npz
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rewardlab.strength import estimate_noise_rate


def negative(u: np.ndarray) -> float:
    return float((u < 0).mean())


def mirror_gauss(x: np.ndarray, iterations: int = 200) -> float:
    """The first estimate_noise_rate: mirrored Gaussian mixture by EM."""
    eta, mu = 0.1, float(np.abs(x).mean())
    var = max(float(x.var()), 1e-12)
    for _ in range(iterations):
        log_ratio = np.clip(-2.0 * mu * x / var, -500, 500)
        odds = eta / (1 - eta) * np.exp(log_ratio)
        r = odds / (1 + odds)
        new_eta = float(r.mean())
        mu = max(float((x * (1 - 2 * r)).mean()), 0.0)
        var = max(float(((1 - r) * (x - mu) ** 2 + r * (x + mu) ** 2).mean()), 1e-12)
        if abs(new_eta - eta) < 1e-7:
            eta = new_eta
            break
        eta = min(max(new_eta, 1e-6), 0.5 - 1e-6)
    return float(min(max(eta, 0.0), 0.5))


def confident(u: np.ndarray) -> float:
    """Confident learning with the pair's two orientations as the two classes: both classes get
    the same threshold t = mean σ(û) by symmetry."""
    tau = max(float(np.log(np.mean(1 / (1 + np.exp(-u))) / np.mean(1 / (1 + np.exp(u))))), 0.0)
    right, wrong = int((u >= tau).sum()), int((u <= -tau).sum())
    return wrong / max(right + wrong, 1)


def anchor(q: float) -> Callable[[np.ndarray], float]:
    def est(u: np.ndarray) -> float:
        k = max(1, int(q * len(u)))
        top = np.argsort(-np.abs(u), kind="stable")[:k]
        return float((u[top] < 0).mean())
    return est


def _best_eta(y: np.ndarray, e: np.ndarray) -> tuple[float, float]:
    """argmax over η in [0, 0.5] of the log-likelihood of signs ``y`` with p = e + η(1 - 2e)
    (concave in η: bisection on the derivative), and the log-likelihood there."""
    def loglik(eta: float) -> float:
        p = np.clip(e + eta * (1 - 2 * e), 1e-12, 1 - 1e-12)
        return float(np.sum(y * np.log(p) + (1 - y) * np.log1p(-p)))

    def slope(eta: float) -> float:
        p = np.clip(e + eta * (1 - 2 * e), 1e-12, 1 - 1e-12)
        return float(np.sum((1 - 2 * e) * (y / p - (1 - y) / (1 - p))))

    lo, hi = 0.0, 0.5
    if slope(lo) <= 0:
        return 0.0, loglik(0.0)
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if slope(mid) > 0 else (lo, mid)
    return lo, loglik(lo)


def floor(u: np.ndarray) -> float:
    """P(û < 0 | |û| = x) = η + (1 - 2η)σ(-c x), by maximum likelihood over a grid of c."""
    x, y = np.abs(u), (u < 0).astype(np.float64)
    scale = max(float(np.median(x)), 1e-12)
    best = (-np.inf, 0.0)
    for c in np.geomspace(0.05, 200, 120) / scale:
        e = 1 / (1 + np.exp(np.clip(c * x, -500, 500)))
        eta, ll = _best_eta(y, e)
        best = max(best, (ll, eta))
    return best[1]


CANDIDATES: dict[str, Callable[[np.ndarray], float]] = {
    "negative": negative, "mirror-gauss": mirror_gauss, "confident": confident,
    "anchor@0.1": anchor(0.1), "anchor@0.2": anchor(0.2), "anchor@0.3": anchor(0.3),
    "floor": floor, "library": estimate_noise_rate,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", type=Path)
    args = p.parse_args()
    names = list(CANDIDATES)
    print("| file | true | " + " | ".join(names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    errors: dict[str, list[float]] = {n: [] for n in names}
    for f in sorted(args.files):
        z = np.load(f)
        u, true = z["u"], float(z["flipped"].mean())
        est = {n: fn(u) for n, fn in CANDIDATES.items()}
        for n in names:
            errors[n].append(est[n] - true)
        print(f"| {f.stem} | {true:.3f} | " + " | ".join(f"{est[n]:.3f}" for n in names) + " |")
    print("| mean abs error | | " + " | ".join(f"{np.mean(np.abs(errors[n])):.3f}"
                                            for n in names) + " |")


if __name__ == "__main__":
    main()
