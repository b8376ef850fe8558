"""Preference strength on real and semi-synthetic data (issue: strength measurements).

Measures, for the in-sample (paper) and cross-fitted schemes, with M members:

1. HH-RLHF (all pairs in ../shared/data/hh-rlhf): share of pairs with mean strength < 0, quantiles
   of û and σ̂, per-group mean û and σ̂, Spearman(û, σ̂).
2. PandaLM (../shared/data/pandalm): mean û of unanimous (3-0) against split pairs, and the AUROC
   of û for separating them.
3. The semi-synthetic set built from the HH texts (teacher labels) at 10/20/30% uniform flips:
   AUROC of -û for finding the flipped pairs, precision of the lowest-20% list.

Reproduce:  .venv/bin/python benchmarks/bench_strength.py --out runs/bench-strength
"""

from __future__ import annotations

import argparse
import glob
import json
import time
from pathlib import Path

from common import HH_FILES, ROOT, SHARED

from rewardlab.config import ModelConfig, StrengthConfig
from rewardlab.data import read_preferences
from rewardlab.layout import RunLayout
from rewardlab.models.encode import default_cache_dir, get_encoder
from rewardlab.stages.strength import run_strength
from rewardlab.synthetic import make_synthetic


def strength(ds, out: Path, *, scheme: str, members: int, seed: int) -> dict:
    t0 = time.perf_counter()
    res = run_strength(ds, model=ModelConfig(members=members, seed=seed),
                       strength=StrengthConfig(scheme=scheme), layout=RunLayout.of(out),
                       progress=False)
    return {**res.summary, "seconds": round(time.perf_counter() - t0, 1)}


def hh_section(args: argparse.Namespace) -> dict:
    ds, _ = read_preferences(sorted(glob.glob(HH_FILES)))
    out = {}
    for scheme in ("insample", "crossfit"):
        s = strength(ds, args.out / f"hh-{scheme}", scheme=scheme, members=args.members,
                     seed=args.seed)
        out[scheme] = {k: s[k] for k in ("n", "fraction_negative", "quantiles", "groups",
                                         "spearman_mean_std", "category_counts", "seconds")}
        print(f"HH {scheme}: fraction_negative {s['fraction_negative']:.4f}  "
              f"spearman(û,σ̂) {s['spearman_mean_std']:+.3f}  ({s['seconds']} s)", flush=True)
    return out


def pandalm_section(args: argparse.Namespace) -> dict:
    ds, report = read_preferences(str(SHARED / "pandalm" / "pandalm-test.jsonl"), on_bad="skip")
    out = {"pairs": len(ds), "skipped": report.skipped}
    for scheme in ("insample", "crossfit"):
        s = strength(ds, args.out / f"pandalm-{scheme}", scheme=scheme, members=args.members,
                     seed=args.seed)
        out[scheme] = {**s["human_agreement"], "fraction_negative": s["fraction_negative"]}
        a = s["human_agreement"]
        print(f"PandaLM {scheme}: û unanimous {a['mean_strength_unanimous']:+.3f} vs split "
              f"{a['mean_strength_split']:+.3f}, AUROC {a['auroc_unanimous_vs_split']:.3f} "
              f"({a['unanimous']} vs {a['split']})", flush=True)
    return out


def synthetic_section(args: argparse.Namespace) -> dict:
    base, _ = read_preferences(sorted(glob.glob(HH_FILES)),
                               drop_suspicious=True)
    enc = get_encoder("all-MiniLM-L6-v2", max_length=256, pooling="mean", batch_size=64,
                      cache_dir=default_cache_dir(), progress=False)
    out = {}
    for rate in (0.1, 0.2, 0.3):
        syn = make_synthetic(base, encoder=enc, flip_rate=rate, seed=args.seed)
        for scheme in ("insample", "crossfit"):
            s = strength(syn, args.out / f"syn-{int(rate * 100)}-{scheme}", scheme=scheme,
                         members=args.members, seed=args.seed)
            d = s["detection"]
            out[f"{rate:.1f}/{scheme}"] = d
            print(f"synthetic {rate:.0%} {scheme}: AUROC {d['auroc']:.3f}  precision@20% "
                  f"{d['precision_lowest_20']:.3f}  recall@20% {d['recall_lowest_20']:.3f}",
                  flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-strength")
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", choices=["hh", "pandalm", "synthetic"], default=None)
    args = p.parse_args()
    sections = {"hh": hh_section, "pandalm": pandalm_section, "synthetic": synthetic_section}
    results = {name: fn(args) for name, fn in sections.items()
               if args.only in (None, name)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"wrote {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
