"""Denoising methods against known label noise (issue: experiments and denoising; issue 9: the cut).

For a training set with a known share of flipped labels and a *clean* validation set, it measures
each method's validation accuracy (mean ± std over model seeds) and the share of the
noise-induced accuracy loss it recovers:

    recovered = (acc(method, noisy) - acc(baseline, noisy))
                / (acc(baseline, clean) - acc(baseline, noisy))

At ``--rate 0`` nothing is lost, so it prints each method's difference from the baseline instead
(the "costs nothing on clean data" check). Beside the true share of flipped labels it prints
``strength.estimate_noise_rate`` of the strength it measured: the share ``flip@auto`` and
``drop@auto`` cut.

The split is 90/10 train/validation by prompt (``split_train_valid``) and there is no test split:
every method here has fixed settings and nothing is selected on this validation set, so its
accuracy is an honest held-out number. (``rewardlab run``, which *picks* a method, grades the pick
on a separate test split; see bench_run_default.py.)

Datasets:
* ``synthetic-uniform`` / ``synthetic-near-tie``: HH texts re-labelled by the hidden teacher
  (``rewardlab.synthetic``), split 90/10 by prompt, then ``--rate`` of the *training* labels
  flipped uniformly or concentrated on near ties. Validation labels are the teacher's.
* ``hh``: HH-RLHF with ``--rate`` of the training labels flipped uniformly (validation as
  published).

``--rate`` and ``--seed`` take comma-separated lists: every (seed, rate) is one experiment (the
seed picks the split, the flips and the models), and the clean baseline is trained once per seed.

Reproduce:  .venv/bin/python benchmarks/bench_denoise.py --dataset synthetic-uniform --seeds 3
            .venv/bin/python benchmarks/bench_denoise.py --scheme crossfit --rate 0,0.1,0.2,0.3 \\
                --seed 7,11 --methods baseline,flip,drop,flip@auto,drop@auto
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import HH_FILES

from rewardlab.config import ModelConfig, StrengthConfig
from rewardlab.data import read_preferences, split_train_valid
from rewardlab.denoise import DenoisePlan, resolve_plan
from rewardlab.evaluation import preference_metrics, seed_spread
from rewardlab.models import Pairs, PreparedPairs, prepare_pairs
from rewardlab.models.encode import default_cache_dir, get_encoder
from rewardlab.noise import choose_flips, swap_labels
from rewardlab.stages.strength import detection_summary, ensemble_deltas
from rewardlab.stages.train import train_reward_model
from rewardlab.strength import estimate_noise_rate
from rewardlab.synthetic import make_synthetic


def load_base(name: str, seed: int):
    """(clean train, valid, true gaps of the training pairs or None) for a benchmark dataset."""
    hh, _ = read_preferences(sorted(glob.glob(HH_FILES)), drop_suspicious=True)
    if name == "hh":
        base, gap_col = hh, None
    else:
        enc = get_encoder("all-MiniLM-L6-v2", max_length=256, pooling="mean", batch_size=64,
                          cache_dir=default_cache_dir(), progress=False)
        base, gap_col = make_synthetic(hh, encoder=enc, flip_rate=0.0, seed=seed), "teacher_gap"
    train, valid = split_train_valid(base, valid_frac=0.1, seed=seed)
    return train, valid, (np.asarray(train[gap_col]) if gap_col else None)


def noisy_train(train, name: str, rate: float, seed: int, gap: np.ndarray | None):
    """``train`` with ``rate`` of its labels flipped (uniformly, or near ties for near-tie)."""
    kind = "near-tie" if name.endswith("near-tie") else "uniform"
    return swap_labels(train, choose_flips(len(train), rate, seed=seed + 1, kind=kind, gap=gap))


def prepared(model: ModelConfig, ds) -> PreparedPairs:
    """Pairs with their encodings looked up once (every method and seed reuses them)."""
    return prepare_pairs(dataclasses.replace(model, members=1), Pairs.from_dataset(ds),
                         progress=False)


def accuracy_over_seeds(train: PreparedPairs, valid: PreparedPairs, plan: DenoisePlan,
                        u: np.ndarray | None, model: ModelConfig,
                        seeds: int) -> tuple[float, float, dict[str, Any]]:
    """Validation accuracy mean and std over ``seeds`` single models, and the denoise counts."""
    accs, counts = [], {}
    for k in range(seeds):
        cfg = dataclasses.replace(model, members=1, seed=model.seed + k)
        out = train_reward_model(train, model=cfg, plan=plan, strength_mean=u, progress=False)
        accs.append(preference_metrics(out.model.score(valid.inputs))["accuracy"])
        counts = out.denoise
    return (*seed_spread(accs), counts)


def one_rate(args: argparse.Namespace, seed: int, rate: float, clean, valid_p: PreparedPairs,
             gap: np.ndarray | None, clean_acc: tuple[float, float],
             model: ModelConfig) -> dict[str, Any]:
    """Strength, estimate and every method's accuracy for one (seed, rate)."""
    noisy = noisy_train(clean, args.dataset, rate, seed, gap)
    noisy_p = prepared(model, noisy)
    delta = ensemble_deltas(noisy_p.pairs, model=dataclasses.replace(model, members=args.members),
                            strength=StrengthConfig(scheme=args.scheme), progress=False)
    u = delta.mean(axis=0)
    flipped = np.asarray(noisy["injected_flip"], dtype=bool)
    if args.save_strength:
        args.save_strength.mkdir(parents=True, exist_ok=True)
        np.savez(args.save_strength / f"{args.dataset}-{args.scheme}-s{seed}-r{rate:g}.npz",
                 u=u, flipped=flipped, delta=delta)
    res: dict[str, Any] = {
        "seed": seed, "rate": rate, "true_rate": float(flipped.mean()),
        "estimated_rate": estimate_noise_rate(u), "fraction_negative": float((u < 0).mean()),
        "detection": detection_summary(u, flipped) if flipped.any() else None,
        "clean": clean_acc, "methods": {}}
    for name in args.methods.split(","):
        plan = resolve_plan(name, margin_scale=args.margin_scale)
        mean, std, counts = accuracy_over_seeds(noisy_p, valid_p, plan, u, model, args.seeds)
        res["methods"][name] = {"mean": mean, "std": std,
                                "cut": counts.get("estimated_noise_rate")}
    base = res["methods"].get("baseline", {"mean": clean_acc[0]})["mean"]
    lost = clean_acc[0] - base
    res["lost"] = lost
    for row in res["methods"].values():
        row["gain"] = row["mean"] - base
        row["recovered"] = row["gain"] / lost if rate > 0 and lost > 0 else None
    return res


def print_rate(res: dict[str, Any], args: argparse.Namespace, n_train: int, n_valid: int) -> None:
    det = res["detection"]
    print(f"\n### seed {res['seed']}, {res['rate']:.0%} flips ({args.dataset}, scheme "
          f"{args.scheme}, M={args.members}, {args.seeds} model seeds, train {n_train}, "
          f"valid {n_valid})")
    print(f"true rate {res['true_rate']:.3f}, estimated {res['estimated_rate']:.3f}, "
          f"share with û < 0 {res['fraction_negative']:.3f}"
          + (f"; detection AUROC {det['auroc']:.3f}" if det else ""))
    print(f"clean baseline {res['clean'][0]:.4f} ± {res['clean'][1]:.4f}; noise cost "
          f"{res['lost']:+.4f}\n")
    print("| method | cut | valid accuracy | vs baseline | recovered |\n|---|---:|---:|---:|---:|")
    for name, row in res["methods"].items():
        cut = f"{row['cut']:.3f}" if row["cut"] is not None else ""
        rec = f"{row['recovered']:+.0%}" if row["recovered"] is not None else "n/a"
        print(f"| {name} | {cut} | {row['mean']:.4f} ± {row['std']:.4f} | "
              f"{row['gain'] * 100:+.2f} | {rec} |")


def print_summary(results: list[dict[str, Any]], methods: list[str]) -> None:
    """One row per rate: estimates and each method's recovery (vs baseline at rate 0), per seed
    and averaged."""
    rates = sorted({r["rate"] for r in results})
    print("\n## Summary over seeds (recovered; at 0% flips: points vs baseline)\n")
    print("| flips | seeds | true | estimated | noise cost | " + " | ".join(methods) + " |")
    print("|---:|---|---:|---:|---:|" + "---:|" * len(methods))
    for rate in rates:
        rows = [r for r in results if r["rate"] == rate]
        cells = []
        for m in methods:
            if rate > 0:
                vals = [r["methods"][m]["recovered"] for r in rows]
                # None: the noise cost nothing at that seed, so nothing was there to recover.
                known = [v for v in vals if v is not None]
                cells.append(" / ".join("n/a" if v is None else f"{v:+.0%}" for v in vals)
                             + (f" (mean {np.mean(known):+.0%})" if len(known) > 1 else ""))
            else:
                vals = [r["methods"][m]["gain"] * 100 for r in rows]
                cells.append(" / ".join(f"{v:+.2f}" for v in vals))
        est = " / ".join(f"{r['estimated_rate']:.3f}" for r in rows)
        cost = " / ".join(f"{r['lost'] * 100:.1f}" for r in rows)
        seeds = ",".join(str(r["seed"]) for r in rows)
        print(f"| {rate:.0%} | {seeds} | {np.mean([r['true_rate'] for r in rows]):.3f} | {est} "
              f"| {cost} | " + " | ".join(cells) + " |")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=["synthetic-uniform", "synthetic-near-tie", "hh"],
                   default="synthetic-uniform")
    p.add_argument("--rate", default="0.2", help="share(s) of training labels to flip: 0.3 or "
                                                 "0,0.1,0.2,0.3")
    p.add_argument("--scheme", choices=["insample", "crossfit"], default="insample")
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--seeds", type=int, default=3, help="model seeds per setting")
    p.add_argument("--seed", default="0", help="split/flip/model seed(s): 7 or 7,11")
    p.add_argument("--methods", default="baseline,flip,drop,smooth,margin,flip+margin,"
                                        "soft+margin,soft+margin:flipped")
    p.add_argument("--margin-scale", type=float, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--proj-dim", type=int, default=None)
    p.add_argument("--hidden", type=int, default=None)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--save-strength", type=Path, default=None,
                   help="folder for each (seed, rate)'s û, Δ and flip mask (.npz)")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    t0 = time.perf_counter()
    over = {k: v for k, v in (("epochs", args.epochs), ("proj_dim", args.proj_dim),
                               ("hidden", args.hidden)) if v is not None}
    results = []
    for seed in map(int, args.seed.split(",")):
        clean, valid, gap = load_base(args.dataset, seed)
        model = ModelConfig.from_dict({"seed": seed, **over})
        valid_p = prepared(model, valid)
        acc = accuracy_over_seeds(prepared(model, clean), valid_p, DenoisePlan(), None, model,
                                  args.seeds)
        for rate in map(float, args.rate.split(",")):
            res = one_rate(args, seed, rate, clean, valid_p, gap, acc[:2], model)
            print_rate(res, args, len(clean), len(valid))
            results.append(res)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        out = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
               "results": results}
        args.json.write_text(json.dumps(out, indent=2))
    print_summary(results, args.methods.split(","))
    print(f"\n(settings {over or 'defaults'}; {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
