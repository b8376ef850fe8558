"""P(label wrong | û) against known flips, and whether σ̂ helps as a second input (issue 19).

Reads the strength that ``bench_denoise.py --save-strength DIR`` saved (per seed and rate: Δ
``[M, N]`` and the mask of injected flips) and, for each way of reading it, fits the noise floor
(:func:`rewardlab.strength.fit_noise_floor`) and scores its posterior against the flips:

* ``u``: the library's posterior, σ(logit η - c·û);
* ``u/sd``: the same floor fitted to û / (σ̂ + median σ̂), a t-like statistic, so that a pair the
  members disagree on counts as weaker evidence either way.

Metrics: the AUROC of the posterior for the flips, its Brier score (mean squared error against
the 0/1 flip mask; lower is better), and what ``flip@posterior`` would flip (P > 0.5): how many,
and the share of them that were really flipped (precision). Pick a variant on one seed, judge it
on the others.

Reproduce:  PYTHONPATH=src .venv/bin/python benchmarks/bench_posterior.py DIR/*.npz
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

from rewardlab.strength import auroc, fit_noise_floor


def statistics(delta: np.ndarray) -> dict[str, np.ndarray]:
    """The inputs each variant reads, from Δ ``[M, N]``."""
    u, sd = delta.mean(axis=0), delta.std(axis=0)
    return {"u": u, "u/sd": u / (sd + np.median(sd) + 1e-12)}


def score(x: np.ndarray, flipped: np.ndarray) -> dict[str, float]:
    floor = fit_noise_floor(x)
    p = floor.posterior(x)
    flips = p > 0.5
    return {"rate": floor.rate, "auroc": auroc(p, flipped) if p.any() else float("nan"),
            "brier": float(np.mean((p - flipped) ** 2)), "flipped": int(flips.sum()),
            "precision": float(flipped[flips].mean()) if flips.any() else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    args = ap.parse_args()
    print("| file | true rate | variant | est. rate | AUROC of P | Brier | flips P>0.5 | "
          "precision |\n|---|---:|---|---:|---:|---:|---:|---:|")
    for f in sorted(args.files):
        z = np.load(f)
        flipped = z["flipped"].astype(bool)
        if not re.search(r"-r0\.[1-9]", f.name):
            continue  # no flips: nothing to score
        for name, x in statistics(z["delta"]).items():
            s = score(x, flipped)
            print(f"| {f.stem} | {flipped.mean():.3f} | {name} | {s['rate']:.3f} | "
                  f"{s['auroc']:.3f} | {s['brier']:.4f} | {s['flipped']} | "
                  f"{s['precision']:.3f} |")


if __name__ == "__main__":
    main()
