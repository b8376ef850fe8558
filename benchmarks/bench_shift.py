"""Off-distribution accuracy of the finetune backend's two shift methods: contrastive learning
(SimCSE, Secrets of RLHF Part II §3.1) and MetaRM (Dou et al. 2024), against plain BT.

Train on a random subset of the HH-RLHF training split (90/10, prompt-grouped, split seed 0);
evaluate on a sample of the HH held-out split (in distribution) and on PandaLM (another
distribution). PandaLM is split in two halves by prompt: MetaRM's meta set is one half's prompts
and responses *without their labels*; accuracy is measured on the other half only.

``--labels human`` uses the data's own labels. ``--labels teacher`` is the controlled shift:
one hidden teacher (:mod:`rewardlab.synthetic`, no flips) labels the texts of every set, so the
model can learn the labels on HH and the question is only whether they carry over to PandaLM.

Each run's result is appended to ``WORK/runs.jsonl`` as it finishes, and a rerun skips runs
already there (so a long benchmark can be stopped and resumed). Example::

    python benchmarks/bench_shift.py --labels teacher --seeds 0,1 --work /tmp/shift-teacher \\
        --methods baseline,simcse-diff@0.1,simcse-diff@1,metarm --json /tmp/shift-teacher.json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
from common import HH_FILES, SHARED, expand, write_results

PANDALM = str(SHARED / "pandalm" / "pandalm-test.jsonl")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--labels", choices=("human", "teacher"), default="human")
    p.add_argument("--methods", default="baseline,simcse-diff@0.1,simcse-diff@1,metarm",
                   help="comma-separated: baseline, simcse-diff@BETA, simcse-response@BETA, "
                        "metarm or metarm@ETA")
    p.add_argument("--seeds", default="0", help="model seeds (init and data order)")
    p.add_argument("--train-pairs", type=int, default=1000)
    p.add_argument("--test-pairs", type=int, default=400, help="HH held-out pairs scored")
    p.add_argument("--eval-pairs", type=int, default=400, help="PandaLM eval-half pairs scored")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--lr", type=float, default=None, help="default: the backend's")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--temperature", type=float, default=0.05)
    p.add_argument("--meta-batch-size", type=int, default=2, help="meta prompts per step")
    p.add_argument("--prepare-only", action="store_true", help="build the sets and stop")
    p.add_argument("--work", type=Path, required=True, help="folder for the meta file and runs")
    p.add_argument("--json", type=Path, help="also write the summary to this JSON file")
    return p.parse_args(argv)


def sample(ds: Any, n: int, seed: int) -> Any:
    """``n`` random rows of ``ds`` (all when ``n`` is 0 or too large)."""
    if n <= 0 or n >= len(ds):
        return ds
    return ds.select(sorted(random.Random(seed).sample(range(len(ds)), n)))


def relabel(sets: dict[str, Any]) -> dict[str, Any]:
    """Every set's texts labelled by one hidden teacher (one projection fitted on all texts)."""
    import datasets

    from rewardlab.config import ModelConfig
    from rewardlab.models.encode import default_cache_dir, get_encoder
    from rewardlab.synthetic import make_synthetic

    cfg = ModelConfig()
    enc = get_encoder(cfg.model, max_length=cfg.max_length, pooling=cfg.embedding.pooling,
                      batch_size=cfg.encode_batch_size, cache_dir=default_cache_dir(),
                      progress=False)
    parts = [ds.select_columns(["prompt", "chosen", "rejected"])
             .add_column("id", [f"{name}:{i}" for i in range(len(ds))])
             for name, ds in sets.items()]
    syn = make_synthetic(datasets.concatenate_datasets(parts), encoder=enc, flip_rate=0.0)
    names = [i.split(":", 1)[0].removeprefix("syn-") for i in syn["id"]]
    return {name: syn.select([k for k, n in enumerate(names) if n == name]) for name in sets}


def write_meta(ds: Any, path: Path) -> int:
    """The meta file: each prompt of ``ds`` with its distinct responses, labels dropped."""
    groups: dict[str, dict[str, None]] = {}
    for p, c, r in zip(ds["prompt"], ds["chosen"], ds["rejected"], strict=True):
        groups.setdefault(p, {}).update({c: None, r: None})
    path.write_text("".join(json.dumps({"prompt": p, "responses": list(rs)}) + "\n"
                            for p, rs in groups.items()), encoding="utf-8")
    return len(groups)


def load_sets(args: argparse.Namespace) -> tuple[dict[str, Any], Path]:
    """``{"train", "hh_test", "pandalm"}`` and the meta file (PandaLM's other half); kept under
    ``WORK/sets/`` so a rerun does not label them again."""
    import datasets

    from rewardlab.data import read_preferences, split_train_valid

    saved, meta = args.work / "sets", args.work / "meta.jsonl"
    sizes = {"train": args.train_pairs, "hh_test": args.test_pairs, "pandalm": args.eval_pairs}
    if saved.is_dir() and meta.is_file():  # a smaller run takes a subset of the saved sets
        return {name: sample(datasets.load_from_disk(str(saved / name)), n, 3)
                for name, n in sizes.items()}, meta
    hh, _ = read_preferences(expand([HH_FILES]), drop_suspicious=True)
    train, test = split_train_valid(hh, valid_frac=0.1, seed=0)
    pl, _ = read_preferences([PANDALM], on_bad="skip", drop_suspicious=True)
    pl_meta, pl_eval = split_train_valid(pl, valid_frac=0.5, seed=0)
    sets = {"train": sample(train, args.train_pairs, 0),
            "hh_test": sample(test, args.test_pairs, 1),
            "pandalm": sample(pl_eval, args.eval_pairs, 2)}
    if args.labels == "teacher":
        sets = relabel(sets)
    args.work.mkdir(parents=True, exist_ok=True)
    prompts = write_meta(pl_meta, meta)
    overlap = set(pl_meta["prompt"]) & set(sets["pandalm"]["prompt"])
    assert not overlap, "a PandaLM eval prompt is in the meta set"
    print(f"train {len(sets['train'])}, HH test {len(sets['hh_test'])}, PandaLM eval "
          f"{len(sets['pandalm'])}, meta {prompts} prompts ({len(pl_meta)} pairs)", file=sys.stderr)
    for name, ds in sets.items():
        ds.save_to_disk(str(saved / name))
    return sets, meta


def method_settings(method: str, meta: Path, temperature: float,
                    meta_batch_size: int) -> dict[str, Any]:
    """The ``finetune`` config group of ``method`` (see ``--methods``)."""
    name, _, value = method.partition("@")
    if name == "baseline":
        return {}
    if name.startswith("simcse-"):
        return {"contrastive": name, "contrastive_weight": float(value or 0.1),
                "contrastive_temperature": temperature}
    if name == "metarm":
        return {"meta": str(meta), "meta_lr": float(value) if value else None,
                "meta_batch_size": meta_batch_size}
    raise SystemExit(f"--methods: unknown method {method!r}")


def run_one(args: argparse.Namespace, sets: dict[str, Any], meta: Path, method: str,
            seed: int) -> dict[str, Any]:
    """Train one model and score both evaluation sets."""
    from rewardlab.config import ModelConfig
    from rewardlab.models.base import Pairs
    from rewardlab.models.finetune import FinetuneRewardModel

    settings = {"backend": "finetune", "members": 1, "epochs": 1, "lr": args.lr,
                "batch_size": args.batch_size, "max_length": args.max_length, "seed": seed,
                "device": "cpu",
                "finetune": {"lora_r": args.lora_r,
                             **method_settings(method, meta, args.temperature,
                                               args.meta_batch_size)}}
    model = FinetuneRewardModel(ModelConfig.from_dict(settings), progress=False)
    fit = model.fit(Pairs.from_dataset(sets["train"]))
    out = {"method": method, "seed": seed, "steps": fit.steps, "train_loss": fit.train_loss,
           "fit_seconds": fit.seconds, "seconds_per_step": fit.seconds / max(fit.steps, 1)}
    for name in ("hh_test", "pandalm"):
        delta = model.score(Pairs.from_dataset(sets[name]))[0].numpy()
        out[f"{name}_correct"] = (delta > 0).astype(int).tolist()
        out[f"{name}_accuracy"] = float((delta > 0).mean())
    return out


def summarize(runs: list[dict[str, Any]], methods: list[str]) -> dict[str, Any]:
    """Mean ± std over seeds per method, and the paired gain over the baseline (pairs resampled,
    each pair's correctness averaged over the seeds both methods ran)."""
    from rewardlab.evaluation import paired_bootstrap

    out: dict[str, Any] = {}
    for method in methods:
        mine = sorted((r for r in runs if r["method"] == method), key=lambda r: r["seed"])
        if not mine:
            continue
        row: dict[str, Any] = {"seeds": [r["seed"] for r in mine],
                               "seconds_per_step": statistics.mean(r["seconds_per_step"]
                                                                   for r in mine)}
        for name in ("hh_test", "pandalm"):
            accs = [r[f"{name}_accuracy"] for r in mine]
            row[name] = {"mean": statistics.mean(accs),
                         "std": statistics.stdev(accs) if len(accs) > 1 else 0.0, "each": accs}
            base = {r["seed"]: r for r in runs if r["method"] == "baseline"}
            both = [r for r in mine if r["seed"] in base]
            if method != "baseline" and both:
                mean = np.mean([r[f"{name}_correct"] for r in both], axis=0)
                ref = np.mean([base[r["seed"]][f"{name}_correct"] for r in both], axis=0)
                row[name]["gain_vs_baseline"] = paired_bootstrap(mean, ref)
        out[method] = row
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    methods = args.methods.split(",")
    sets, meta = load_sets(args)
    if args.prepare_only:
        return {}
    log = args.work / "runs.jsonl"
    runs = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    done = {(r["method"], r["seed"]) for r in runs}
    for seed in (int(s) for s in args.seeds.split(",")):
        for method in methods:
            if (method, seed) in done:
                continue
            result = run_one(args, sets, meta, method, seed)
            runs.append(result)
            with log.open("a") as fh:
                fh.write(json.dumps(result) + "\n")
            print(f"{method} seed {seed}: HH {result['hh_test_accuracy']:.4f}  PandaLM "
                  f"{result['pandalm_accuracy']:.4f}  {result['seconds_per_step']:.2f} s/step",
                  file=sys.stderr, flush=True)
    summary = {"labels": args.labels, "summary": summarize(runs, methods),
               "settings": {k: str(v) for k, v in vars(args).items()}}
    print(json.dumps(summary["summary"], indent=1, default=str))
    return write_results(args.json, summary)


if __name__ == "__main__":
    main()
