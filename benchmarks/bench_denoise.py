"""Denoising methods against known label noise (issue: experiments and denoising).

For a training set with known flipped labels and a *clean* validation set, it measures each
method's validation accuracy (mean ± std over seeds) and the share of the noise-induced accuracy
loss it recovers:

    recovered = (acc(method, noisy) - acc(baseline, noisy))
                / (acc(baseline, clean) - acc(baseline, noisy))

Datasets:
* ``synthetic-uniform`` / ``synthetic-near-tie``: HH texts re-labelled by the hidden teacher
  (``rewardlab.synthetic``), split 90/10 by prompt, then ``--rate`` of the *training* labels
  flipped uniformly or concentrated on near ties. Validation labels are the teacher's.
* ``hh``: HH-RLHF with ``--rate`` of the training labels flipped uniformly (validation as
  published).

Reproduce:  .venv/bin/python benchmarks/bench_denoise.py --dataset synthetic-uniform --seeds 3
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import time
from pathlib import Path

import numpy as np
from common import HH_FILES

from rewardlab.config import ModelConfig, StrengthConfig
from rewardlab.data import read_preferences, split_train_valid
from rewardlab.denoise import DenoisePlan, resolve_plan
from rewardlab.evaluation import preference_metrics
from rewardlab.models.base import Pairs
from rewardlab.models.encode import default_cache_dir, get_encoder
from rewardlab.noise import choose_flips, swap_labels
from rewardlab.stages.strength import detection_summary, ensemble_deltas
from rewardlab.stages.train import train_reward_model
from rewardlab.synthetic import make_synthetic


def load_dataset(name: str, rate: float, seed: int):
    """(noisy train, clean train, valid) for a benchmark dataset."""
    hh, _ = read_preferences(sorted(glob.glob(HH_FILES)),
                             drop_suspicious=True)
    if name == "hh":
        base = hh
        gap_col = None
    else:
        enc = get_encoder("all-MiniLM-L6-v2", max_length=256, pooling="mean", batch_size=64,
                          cache_dir=default_cache_dir(), progress=False)
        base = make_synthetic(hh, encoder=enc, flip_rate=0.0, seed=seed)
        gap_col = "teacher_gap"
    train, valid = split_train_valid(base, valid_frac=0.1, seed=seed)
    kind = "near-tie" if name.endswith("near-tie") else "uniform"
    gap = np.asarray(train[gap_col]) if gap_col else None
    mask = choose_flips(len(train), rate, seed=seed + 1, kind=kind, gap=gap)
    return swap_labels(train, mask), train, valid


def accuracy_over_seeds(train: Pairs, valid: Pairs, plan: DenoisePlan, u: np.ndarray | None,
                        model: ModelConfig, seeds: int) -> tuple[float, float]:
    accs = []
    for k in range(seeds):
        cfg = dataclasses.replace(model, members=1, seed=model.seed + k)
        out = train_reward_model(train, model=cfg, plan=plan, strength_mean=u, progress=False)
        accs.append(preference_metrics(out.model.score(valid))["accuracy"])
    return float(np.mean(accs)), float(np.std(accs))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=["synthetic-uniform", "synthetic-near-tie", "hh"],
                   default="synthetic-uniform")
    p.add_argument("--rate", type=float, default=0.2)
    p.add_argument("--scheme", choices=["insample", "crossfit"], default="insample")
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--methods", default="baseline,flip,drop,smooth,margin,flip+margin,"
                                        "soft+margin,soft+margin:flipped")
    p.add_argument("--margin-scale", type=float, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--proj-dim", type=int, default=None)
    p.add_argument("--hidden", type=int, default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()

    t0 = time.perf_counter()
    noisy, clean, valid = load_dataset(args.dataset, args.rate, args.seed)
    over = {k: v for k, v in (("epochs", args.epochs), ("proj_dim", args.proj_dim),
                               ("hidden", args.hidden)) if v is not None}
    model = ModelConfig.from_dict({"seed": args.seed, **over})
    noisy_p, clean_p, valid_p = (Pairs.from_dataset(d) for d in (noisy, clean, valid))
    delta = ensemble_deltas(noisy_p, model=dataclasses.replace(model, members=args.members),
                            strength=StrengthConfig(scheme=args.scheme), progress=False)
    u = delta.mean(axis=0)
    det = detection_summary(u, np.asarray(noisy["injected_flip"], dtype=bool))
    clean_acc = accuracy_over_seeds(clean_p, valid_p, DenoisePlan(), None, model, args.seeds)
    rows = []
    base_acc = None
    plans = {m: resolve_plan(m, margin_scale=args.margin_scale) for m in args.methods.split(",")}
    for name, plan in plans.items():
        acc = accuracy_over_seeds(noisy_p, valid_p, plan, u, model, args.seeds)
        if name == "baseline":
            base_acc = acc
        rows.append((name, acc))
    lost = clean_acc[0] - base_acc[0] if base_acc else float("nan")
    print(f"dataset {args.dataset}, {args.rate:.0%} flips, scheme {args.scheme}, "
          f"M={args.members}, seeds {args.seeds}, train {len(noisy)}, valid {len(valid)}, "
          f"settings {over or 'defaults'}")
    print(f"detection: AUROC {det['auroc']:.3f}, precision@20% {det['precision_lowest_20']:.3f}")
    print(f"clean baseline {clean_acc[0]:.4f} ± {clean_acc[1]:.4f}; noise cost {lost:.4f}\n")
    print("| method | valid accuracy | recovered |\n|---|---|---|")
    result = {"args": vars(args) | {"json": None}, "detection": det, "clean": clean_acc,
              "methods": {}}
    for name, (mean, std) in rows:
        rec = (mean - base_acc[0]) / lost if base_acc and lost > 0 else float("nan")
        result["methods"][name] = {"mean": mean, "std": std, "recovered": rec}
        print(f"| {name} | {mean:.4f} ± {std:.4f} | {rec:+.0%} |")
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
