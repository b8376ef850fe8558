"""Benchmark the finetune backend: train on a subset of HH-RLHF, report validation accuracy and
seconds per optimizer step.

The data are split 90/10 by prompt (a prompt never lands on both sides); a random
``--train-pairs`` subset of the training side is fine-tuned on, and the validation side (or a
random ``--valid-pairs`` subset of it) is scored. Example (the default run; slow on a CPU)::

    python benchmarks/bench_finetune.py --train-pairs 1000

A smoke run that finishes in seconds::

    python benchmarks/bench_finetune.py --train-pairs 16 --valid-pairs 16 --max-steps 2
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

from common import write_results

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hh-rlhf"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from rewardlab.config import DEFAULT_MODEL

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", nargs="+", default=[str(DEFAULT_DATA)],
                   help="preference files or folders (HH-RLHF *.jsonl.gz)")
    p.add_argument("--train-pairs", type=int, default=1000, help="training pairs sampled")
    p.add_argument("--valid-pairs", type=int, default=0,
                   help="validation pairs sampled (0: the whole validation side)")
    p.add_argument("--valid-frac", type=float, default=0.1, help="share of prompts held out")
    p.add_argument("--model", default=DEFAULT_MODEL, help="backbone folder or hub id")
    p.add_argument("--members", type=int, default=1)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=None,
                   help="default: the backend's (2e-5 full fine-tuning, 1e-3 LoRA)")
    p.add_argument("--pooling", default="auto", help="what the reward head reads (--pooling)")
    p.add_argument("--lora-targets", default="all-linear", help="--lora-targets")
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--lora-r", type=int, default=0)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=0,
                   help="stop after this many optimizer steps (one epoch over the first "
                        "max-steps x batch-size x grad-accum sampled pairs); 0: no limit")
    p.add_argument("--curve", action="store_true",
                   help="also record the validation curve during training (slower)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    return p.parse_args(argv)


def sample(ds: object, n: int, seed: int) -> object:
    """``n`` random rows of a ``datasets.Dataset`` (all of them when ``n`` is 0 or too large)."""
    size = len(ds)  # type: ignore[arg-type]
    if n <= 0 or n >= size:
        return ds
    rows = sorted(random.Random(seed).sample(range(size), n))
    return ds.select(rows)  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    from rewardlab.config import ModelConfig
    from rewardlab.data import read_preferences, split_train_valid
    from rewardlab.evaluation import accuracy
    from rewardlab.losses import preference_loss
    from rewardlab.models.base import Pairs
    from rewardlab.models.finetune import FinetuneRewardModel

    t0 = time.perf_counter()
    ds, _report = read_preferences(args.data)
    train_ds, valid_ds = split_train_valid(ds, valid_frac=args.valid_frac, seed=args.seed)
    train_ds = sample(train_ds, args.train_pairs, args.seed)
    valid_ds = sample(valid_ds, args.valid_pairs, args.seed + 1)
    epochs = args.epochs
    if args.max_steps > 0:
        epochs = 1
        cap = args.max_steps * args.batch_size * args.grad_accum
        train_ds = train_ds.select(range(min(cap, len(train_ds))))
    train, valid = Pairs.from_dataset(train_ds), Pairs.from_dataset(valid_ds)
    load_seconds = time.perf_counter() - t0
    print(f"data: {len(ds)} pairs read, {len(train)} train / {len(valid)} valid "
          f"({load_seconds:.1f} s)", file=sys.stderr)

    config = ModelConfig.from_dict({
        "backend": "finetune", "model": args.model, "members": args.members, "epochs": epochs,
        "lr": args.lr, "batch_size": args.batch_size, "max_length": args.max_length,
        "lora_r": args.lora_r, "grad_accum": args.grad_accum, "seed": args.seed,
        "pooling": args.pooling, "lora_targets": args.lora_targets,
        "device": args.device})
    model = FinetuneRewardModel(config)
    fit = model.fit(train, valid=valid if args.curve else None)
    t1 = time.perf_counter()
    delta = model.score(valid).mean(dim=0)  # [N_valid], ensemble mean Δ
    score_seconds = time.perf_counter() - t1
    results = {
        "train_pairs": len(train),
        "valid_pairs": len(valid),
        "members": args.members,
        "steps": fit.steps,
        "train_loss": fit.train_loss,
        "lr": config.resolved_lr,
        "valid_accuracy": accuracy(delta),
        "valid_loss": float(preference_loss(delta)),
        # How far the ensemble moved off "no preference": today's untrained heads sit at ~0.
        "mean_abs_u": float(delta.abs().mean()),
        # fit's wall time over all members' steps; it includes tokenization and model loading,
        # which matter only for very short runs.
        "seconds_per_step": fit.seconds / max(fit.steps * args.members, 1),
        "fit_seconds": fit.seconds,
        "score_seconds": score_seconds,
    }
    print(f"validation accuracy {results['valid_accuracy']:.4f}  "
          f"loss {results['valid_loss']:.4f}  mean |û| {results['mean_abs_u']:.4f}  |  "
          f"{fit.steps} steps x {args.members} member(s), "
          f"{results['seconds_per_step']:.3f} s/step  |  scoring {score_seconds:.1f} s")
    if args.curve:
        results["curve"] = fit.curve  # type: ignore[assignment]
    return write_results(args.json, results)


if __name__ == "__main__":
    main()
