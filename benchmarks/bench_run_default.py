"""Which strength scheme should `rewardlab run` default to? (issue 9: decide the defaults)

Runs the real main job (``rewardlab.stages.run.run_all``, what ``rewardlab run`` calls) with
``--scheme insample`` and ``--scheme crossfit`` on each data set and split seed, with the
default methods plus ``flip@auto,drop@auto``. ``run`` splits train/valid/test 80/10/10 by prompt,
picks the method with the best validation accuracy and grades it on test; this script reports,
per data set and scheme, the method picked, its test accuracy, the baseline's test accuracy and
the gain on test (mean ± std over split seeds), plus the estimated noise rate of the strength
(``strength/summary.json``) and how ``flip@auto``/``drop@auto`` did on test.

Data sets:
* ``hh``: all 8,552 HH-RLHF pairs.
* ``pandalm``: PandaLM's 914 human-voted pairs, malformed records skipped (``--on-bad skip``).
* ``synthetic``: HH texts re-labelled by the hidden teacher (``rewardlab synthetic
  --flip-rate 0``), then ``--inject-flips 0.2``: 20% of the *training* labels flipped, validation
  and test labels clean (so test accuracy is against the truth).

Within one split seed both schemes see the same split and the same experiment seeds, so the
baseline's numbers are identical and the schemes differ only in û (and hence in what the
strength-reading methods do and which method is picked).

Reproduce:  .venv/bin/python benchmarks/bench_run_default.py --out /tmp/trustbench/run-default
"""

from __future__ import annotations

import argparse
import glob
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import HH_FILES, SHARED

from rewardlab.config import (
    ExperimentConfig,
    LoadConfig,
    ModelConfig,
    NoiseConfig,
    SplitConfig,
    StrengthConfig,
)
from rewardlab.files import read_json, write_jsonl
from rewardlab.layout import RunLayout
from rewardlab.stages.run import RunSettings, run_all
from rewardlab.strength import estimate_noise_rate

DEFAULT_METHODS = ExperimentConfig().methods
PANDALM = str(SHARED / "pandalm" / "pandalm-test.jsonl")


def synthetic_file(folder: Path) -> str:
    """The clean semi-synthetic set (teacher labels, no flips), written once."""
    path = folder / "synthetic-clean.jsonl"
    if not path.is_file():
        from rewardlab.data import read_preferences
        from rewardlab.models.encode import default_cache_dir, get_encoder
        from rewardlab.synthetic import make_synthetic

        hh, _ = read_preferences(sorted(glob.glob(HH_FILES)), drop_suspicious=True)
        enc = get_encoder("all-MiniLM-L6-v2", max_length=256, pooling="mean", batch_size=64,
                          cache_dir=default_cache_dir(), progress=False)
        write_jsonl(path, make_synthetic(hh, encoder=enc, flip_rate=0.0, seed=0).to_list())
    return str(path)


def datasets(names: list[str], folder: Path, inject: float) -> dict[str, tuple[list[str], Any]]:
    """name -> (paths, (LoadConfig, NoiseConfig)) for each requested data set."""
    table = {
        "hh": lambda: (sorted(glob.glob(HH_FILES)), (LoadConfig(), NoiseConfig())),
        "pandalm": lambda: ([PANDALM], (LoadConfig(on_bad="skip"), NoiseConfig())),
        "synthetic": lambda: ([synthetic_file(folder)],
                              (LoadConfig(), NoiseConfig(inject_flips=inject, inject_seed=1))),
    }
    return {name: table[name]() for name in names}


def one_run(paths: list[str], configs: Any, scheme: str, seed: int, args: argparse.Namespace,
            out: Path) -> dict[str, Any]:
    """One `rewardlab run`; returns the numbers this benchmark reads from its folder."""
    load, noise = configs
    over = {k: v for k, v in (("epochs", args.epochs),) if v is not None}
    settings = RunSettings(
        load=load, split=SplitConfig(),
        model=ModelConfig.from_dict({"members": args.members, "seed": seed, **over}),
        strength=StrengthConfig(scheme=scheme), noise=noise,
        experiment=ExperimentConfig(seeds=args.seeds, methods=args.methods))
    t0 = time.perf_counter()
    res = run_all(paths, out=RunLayout.of(out), settings=settings, progress=False, report=False)
    layout = RunLayout.of(out)
    compare = {r["method"]: r for r in read_json(layout.compare_json)}
    summary = read_json(layout.strength_summary)
    import pyarrow.parquet as pq

    # The estimate of the current code (summary.json keeps the one of the run that wrote it),
    # over the pairs that carry a preference (identical pairs have no rank).
    table = pq.read_table(layout.strength_parquet, columns=["strength_mean", "strength_rank"])
    ranked = np.asarray(table.column("strength_rank").is_valid())
    u = table.column("strength_mean").to_numpy()[ranked]
    best = res.best_method
    return {
        "picked": best["method"], "gain": best["gain_over_baseline"],
        "picked_test": best["test_accuracy_mean"],
        "baseline_test": compare["baseline"]["test_accuracy_mean"],
        "estimated_noise_rate": estimate_noise_rate(np.asarray(u, dtype=np.float64)),
        "fraction_negative": summary.get("fraction_negative"),
        "auroc": (summary.get("detection") or {}).get("auroc"),
        "test": {m: r.get("test_accuracy_mean") for m, r in compare.items()},
        "valid": {m: r.get("valid_accuracy_mean") for m, r in compare.items()},
        "seconds": time.perf_counter() - t0,
    }


def _ms(values: list[float], scale: float = 1.0, fmt: str = ".4f") -> str:
    arr = np.asarray(values, dtype=np.float64) * scale
    return f"{arr.mean():{fmt}} ± {arr.std(ddof=1):{fmt}}"


def print_tables(results: dict[str, dict[str, list[dict[str, Any]]]]) -> None:
    print("\n| data | scheme | picked on valid (per seed) | picked: test acc | baseline: test acc "
          "| gain on test (points) | est. noise rate | flip@auto vs baseline | "
          "drop@auto vs baseline |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for data, by_scheme in results.items():
        for scheme, runs in by_scheme.items():
            auto = {m: (_ms([r["test"][m] - r["test"]["baseline"] for r in runs], 100, "+.2f")
                        if all(m in r["test"] for r in runs) else "") for m in
                    ("flip@auto", "drop@auto")}
            print(f"| {data} | {scheme} | {', '.join(r['picked'] for r in runs)} | "
                  f"{_ms([r['picked_test'] for r in runs])} | "
                  f"{_ms([r['baseline_test'] for r in runs])} | "
                  f"{_ms([r['gain'] for r in runs], 100, '+.2f')} | "
                  f"{_ms([r['estimated_noise_rate'] for r in runs], 1, '.3f')} | "
                  f"{auto['flip@auto']} | {auto['drop@auto']} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="hh,pandalm,synthetic")
    p.add_argument("--schemes", default="insample,crossfit")
    p.add_argument("--split-seeds", default="0,1,2")
    p.add_argument("--methods", default=DEFAULT_METHODS + ",flip@auto,drop@auto")
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--seeds", type=int, default=3, help="experiment seeds per method")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--inject-flips", type=float, default=0.2, help="for the synthetic set")
    p.add_argument("--out", type=Path, default=Path("/tmp/trustbench/run-default"))
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for data, (paths, configs) in datasets(args.data.split(","), args.out,
                                           args.inject_flips).items():
        for seed in map(int, args.split_seeds.split(",")):
            for scheme in args.schemes.split(","):
                folder = args.out / f"{data}-{scheme}-s{seed}"
                r = one_run(paths, configs, scheme, seed, args, folder)
                results.setdefault(data, {}).setdefault(scheme, []).append(r)
                print(f"{data} {scheme} seed {seed}: picked {r['picked']} (test "
                      f"{r['picked_test']:.4f}, baseline {r['baseline_test']:.4f}, gain "
                      f"{r['gain'] * 100:+.2f}); est. noise {r['estimated_noise_rate']:.3f}; "
                      f"{r['seconds']:.0f} s", flush=True)
                (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print_tables(results)


if __name__ == "__main__":
    main()
