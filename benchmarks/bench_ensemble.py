"""Benchmark the embedding backend's ensemble training: how fit time grows with the ensemble
size M, given cached frozen features.

HH-RLHF is split 90/10 by prompt (``split_train_valid(valid_frac=0.1, seed=0)``). The frozen
vectors of both sides are computed once before any timing (from the feature cache: on a machine
that has encoded HH before, nothing is encoded), so what is timed is ``fit(train_pairs)`` alone:
the whitening-PCA projection fit, feature assembly and the vectorized training of all M heads.
For each M in ``--members`` the fit runs ``--repeats`` times (after one untimed warm-up fit on a
small subset) and the median wall time is reported, with its ratio to the first M (target: M=10
at most 1.5x M=1), the training loop's own seconds (``FitResult.seconds``; the rest of
``fit`` is the projection fit and feature assembly), milliseconds per training step (the loop's
time over its steps, each step updating all M heads), the validation accuracy of the ensemble's
mean Δ and the mean of the members' own accuracies.

Reproduce (from the repository root, on a quiet machine)::

    .venv/bin/python benchmarks/bench_ensemble.py --members 1,10 --repeats 3 \\
        --json bench_ensemble.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from common import expand, write_results

from rewardlab.config import ModelConfig

DEFAULT_DATA = str(Path(__file__).resolve().parents[1].parent
                   / "shared" / "data" / "hh-rlhf" / "*.jsonl.gz")
DEFAULTS = ModelConfig()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", nargs="+", default=[DEFAULT_DATA],
                   help="preference files or glob patterns (HH-RLHF *.jsonl.gz)")
    p.add_argument("--members", default="1,10", help="comma-separated ensemble sizes M")
    p.add_argument("--repeats", type=int, default=3, help="timed fits per M (median reported)")
    p.add_argument("--epochs", type=int, default=DEFAULTS.epochs,
                   help="training epochs; None: the embedding default")
    p.add_argument("--hidden", type=int, default=DEFAULTS.embedding.hidden)
    p.add_argument("--proj-dim", type=int, default=DEFAULTS.embedding.proj_dim)
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size,
                   help="pairs per step; None: the embedding default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=DEFAULTS.device)
    p.add_argument("--cache-dir", default=None,
                   help="feature cache folder; None: rewardlab's default cache")
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    return args


def load_pairs(patterns: list[str]):
    """``(train, valid)`` Pairs from a prompt-grouped 90/10 split."""
    from rewardlab.data import read_preferences, split_train_valid
    from rewardlab.models.base import Pairs

    ds, _ = read_preferences(expand(patterns))
    train, valid = split_train_valid(ds, valid_frac=0.1, seed=0)
    return Pairs.from_dataset(train), Pairs.from_dataset(valid)


def config_for(args: argparse.Namespace, members: int) -> ModelConfig:
    return ModelConfig.from_dict({
        "members": members, "epochs": args.epochs, "hidden": args.hidden,
        "proj_dim": args.proj_dim, "batch_size": args.batch_size, "seed": args.seed,
        "device": args.device, "cache_dir": args.cache_dir})


def new_model(args: argparse.Namespace, members: int):
    from rewardlab.models.embedding import EmbeddingRewardModel

    return EmbeddingRewardModel(config_for(args, members), progress=False)


def valid_accuracy(model, valid) -> tuple[float, float]:
    """Accuracy of the ensemble's mean Δ, and the mean of the members' own accuracies."""
    from rewardlab.evaluation import accuracy

    delta = model.score(valid)  # [M, N]
    return accuracy(delta.mean(dim=0)), statistics.fmean(accuracy(d) for d in delta)


def bench_members(args: argparse.Namespace, members: int, train, valid) -> dict[str, float]:
    """Median ``fit`` seconds over the repeats, per-step time and validation accuracy."""
    walls, loops = [], []
    model = None
    for _ in range(args.repeats):
        model = new_model(args, members)
        t0 = time.perf_counter()
        fit = model.fit(train)
        walls.append(time.perf_counter() - t0)
        loops.append(fit.seconds)
    ensemble_acc, member_acc = valid_accuracy(model, valid)
    return {"members": members, "fit_seconds": statistics.median(walls),
            "fit_seconds_all": walls, "steps": fit.steps,
            "loop_seconds": statistics.median(loops),
            "ms_per_step": 1000 * statistics.median(loops) / fit.steps,
            "valid_accuracy": ensemble_acc, "member_accuracy": member_acc}


def markdown(results: dict) -> str:
    base = results["runs"][0]
    lines = [f"train {results['train_pairs']} / valid {results['valid_pairs']} pairs, "
             f"repeats {results['repeats']}, CPUs {results['cpu_count']}, "
             f"torch threads {results['torch_threads']}, config {results['config']}",
             "",
             "| M | median fit s | ratio vs M="
             f"{base['members']} | training loop s | steps | ms/step | valid acc (mean Δ) "
             "| mean member acc |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results["runs"]:
        lines.append(f"| {r['members']} | {r['fit_seconds']:.3f} | {r['ratio']:.2f} | "
                     f"{r['loop_seconds']:.3f} | {r['steps']} | {r['ms_per_step']:.2f} | "
                     f"{r['valid_accuracy']:.4f} | {r['member_accuracy']:.4f} |")
    lines += ["", "target: M=10 fit at most 1.5x M=1. Fit = projection fit + feature assembly "
              "+ training loop; ms/step is the loop's time over its steps (all M heads per step)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    sizes = [int(m) for m in args.members.split(",") if m.strip()]
    train, valid = load_pairs(args.data)
    print(f"data: {len(train)} train / {len(valid)} valid pairs; encoding (cached) ...",
          file=sys.stderr)
    probe = new_model(args, 1)
    probe.vectors(train)  # memoised per Pairs object: later fits never touch the cache
    probe.vectors(valid)
    new_model(args, 1).fit(train.subset(range(min(256, len(train)))))  # untimed warm-up
    runs = [bench_members(args, m, train, valid) for m in sizes]
    for r in runs:
        r["ratio"] = r["fit_seconds"] / runs[0]["fit_seconds"]
    cfg = config_for(args, sizes[0])
    results = {"train_pairs": len(train), "valid_pairs": len(valid), "repeats": args.repeats,
               "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
               "config": {"epochs": cfg.resolved_epochs, "batch_size": cfg.resolved_batch_size,
                          "hidden": cfg.embedding.hidden, "proj_dim": cfg.embedding.proj_dim,
                          "lr": cfg.resolved_lr},
               "runs": runs}
    print(markdown(results))
    return write_results(args.json, results)


if __name__ == "__main__":
    main()
