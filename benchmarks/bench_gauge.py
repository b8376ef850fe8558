"""The gauge against the truth (issue 19): does the self-test predict how well the ensemble finds
real injected noise, and what do the methods that act on it gain?

For each data set and seed it runs the whole job twice, exactly as a user would
(``rewardlab run --scheme crossfit``): once on the data as published, once with 20% of the
training labels flipped (``--inject-flips 0.2``). From the noisy run it reads

* ``detection``: the AUROC of -û for the 20% injected flips (what the instrument really does),
* ``instrument``: the self-test's own AUROC (10% more flips on a copy of the same training data)
  and its verdict,

and from the run on the data as given, the gauge a user would see: it should predict the noisy
run's detection AUROC. (The self-test *of the noisy run* reads lower: a flip that lands on a label
that is already wrong makes it right, so its AUROC is 0.5 + (A - 0.5)(1 - 2w) for an instrument of
AUROC A on data with a share w of wrong labels, and the injected 20% raise w.)

and from both runs every method's test accuracy, so that the gain of each method over the
baseline, with and without noise, sits beside the gauge that allowed or forbade it.

Data sets: ``pandalm`` (908 pairs), ``hh`` (a fixed 3,000-pair sample of the HH-RLHF test
splits, written once under --work), ``synthetic`` (the same HH texts re-labelled by the hidden
teacher of ``rewardlab synthetic``: labels a frozen encoder can learn).

Reproduce:  PYTHONPATH=src .venv/bin/python benchmarks/bench_gauge.py --data pandalm,hh,synthetic \\
                --seeds 0,1,2 --json /tmp/gauge.json
"""

from __future__ import annotations

import argparse
import glob
import json
import resource
from pathlib import Path
from typing import Any

import numpy as np
from common import HH_FILES, SHARED, write_results

from rewardlab.cli import main as cli

METHODS = "baseline,flip,flip@auto,flip@posterior,soft@posterior"


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def data_file(name: str, work: Path, hh_pairs: int) -> tuple[list[str], list[str]]:
    """The data arguments of ``rewardlab run`` for a data set (files written once)."""
    if name == "pandalm":
        return [str(SHARED / "pandalm" / "pandalm-test.jsonl")], ["--on-bad", "skip"]
    sample = work / f"hh-{hh_pairs}.jsonl"
    if not sample.is_file():
        from rewardlab.data import read_preferences

        ds, _ = read_preferences(sorted(glob.glob(HH_FILES)), drop_suspicious=True)
        pick = np.sort(np.random.default_rng(12345).choice(len(ds), hh_pairs, replace=False))
        with sample.open("w", encoding="utf-8") as f:
            for row in ds.select(pick.tolist()).select_columns(["prompt", "chosen", "rejected"]):
                f.write(json.dumps(row) + "\n")
    if name == "hh":
        return [str(sample)], []
    synthetic = work / f"synthetic-{hh_pairs}.jsonl"
    if not synthetic.is_file():
        cli(["synthetic", str(sample), "-o", str(synthetic), "--flip-rate", "0", "--quiet"])
    return [str(synthetic)], []


def one_run(files: list[str], extra: list[str], out: Path, seed: int, inject: float,
            args: argparse.Namespace) -> dict[str, Any]:
    """``rewardlab run`` (or, with ``--strength-only``, ``rewardlab strength`` on all the
    pairs) once; the numbers this benchmark reads from its folder."""
    t0 = cpu_seconds()
    argv = ["run" if not args.strength_only else "strength", *files, *extra, "-o", str(out),
            "--seed", str(seed), "--scheme", "crossfit", "--members", str(args.members),
            "--quiet"]
    if not args.strength_only:
        argv += ["--methods", METHODS, "--seeds", "3", "--no-report"]
    if inject:
        argv += ["--inject-flips", str(inject), "--inject-seed", str(seed)]
    if cli(argv) != 0:
        raise SystemExit(f"run failed: {' '.join(argv)}")
    summary = json.loads((out / "strength" / "summary.json").read_text())
    res = {"cpu_s": cpu_seconds() - t0, "detection": summary.get("detection"),
           "instrument": summary.get("instrument"), "noise": summary.get("noise")}
    if not args.strength_only:
        compare = json.loads((out / "compare" / "compare.json").read_text())
        res["test"] = {r["method"]: r.get("test_accuracy_mean") for r in compare}
        res["best"] = json.loads((out / "run.json").read_text())["best_method"]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="pandalm,hh,synthetic")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--members", type=int, default=10)
    ap.add_argument("--inject", type=float, default=0.2)
    ap.add_argument("--hh-pairs", type=int, default=3000)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_gauge"))
    ap.add_argument("--strength-only", action="store_true",
                    help="only strength with its self-test (no experiments)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.data.split(","):
        files, extra = data_file(name, args.work, args.hh_pairs)
        for seed in (int(s) for s in args.seeds.split(",")):
            noisy = one_run(files, extra, args.work / f"{name}-s{seed}-noisy", seed, args.inject,
                            args)
            clean = one_run(files, extra, args.work / f"{name}-s{seed}-clean", seed, 0.0, args)
            rows.append({"data": name, "seed": seed, "noisy": noisy, "clean": clean})
            print_row(rows[-1])
    write_results(args.json, rows)


def print_row(r: dict[str, Any]) -> None:
    n, c = r["noisy"], r["clean"]
    inst, det = n["instrument"], n["detection"]
    gauge = c["instrument"]
    print(f"{r['data']:<10} seed {r['seed']}: 20% injected found at AUROC {det['auroc']:.3f}; "
          f"gauge on the data as given {gauge['auroc']:.3f} ({gauge['auroc_ci95'][0]:.3f}-"
          f"{gauge['auroc_ci95'][1]:.3f}) ok={gauge['ok']}, |diff| "
          f"{abs(det['auroc'] - gauge['auroc']):.3f}; gauge on the noisy copy {inst['auroc']:.3f};"
          f" oof accuracy {gauge['oof_accuracy']:.3f}; cpu {n['cpu_s']:.0f}+{c['cpu_s']:.0f} s")
    if "test" not in n:
        return
    gains = {m: (n["test"][m] - n["test"]["baseline"]) * 100 for m in n["test"]}
    clean = {m: (c["test"][m] - c["test"]["baseline"]) * 100 for m in c["test"]}
    print("   test gain over baseline, points (noisy | clean): " + ", ".join(
        f"{m} {gains[m]:+.2f} | {clean[m]:+.2f}" for m in gains if m != "baseline"))


if __name__ == "__main__":
    main()
