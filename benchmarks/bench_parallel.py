"""Benchmark ``--parallel members``: wall time of ``rewardlab strength`` (finetune backend, M
members) on P processes against one, with the same threads per process, and check that both
write the same ``strength.parquet`` byte for byte.

The first ``--pairs`` HH pairs (a seeded sample) are written to a JSONL file under ``--work``;
each run is a fresh output folder. The P-process run goes through ``accelerate launch`` (the
torchrun launcher; on CPUs ``--multi_gpu`` is what starts several processes, and the finetune
backend's ``--device cpu`` keeps them on the CPU). Example::

    python benchmarks/bench_parallel.py --members 4 --processes 2 --pairs 256 \\
        --json bench_parallel.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import write_results
from lm_common import WORK, hh_pairs

from rewardlab.launch import launch_command


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="backbone (default: MiniLM)")
    p.add_argument("--members", type=int, default=4)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--pairs", type=int, default=256)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--lora-r", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--work", type=Path, default=WORK / "parallel")
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    return p.parse_args(argv)


def _command(a: argparse.Namespace, data: Path, out: Path, processes: int) -> list[str]:
    args = ["strength", str(data), "-o", str(out), "--backend", "finetune", "--model", a.model,
            "--members", str(a.members), "--epochs", str(a.epochs), "--batch-size",
            str(a.batch_size), "--max-length", str(a.max_length), "--lora-r", str(a.lora_r),
            "--device", a.device, "--parallel", "members", "--quiet"]
    target = ["-m", "rewardlab.cli", *args]
    return [sys.executable, *target] if processes == 1 else launch_command(processes, target)


def _timed(cmd: list[str], threads: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-4000:]}")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict[str, Any]:
    a = parse_args(argv)
    a.work.mkdir(parents=True, exist_ok=True)
    pairs = hh_pairs(a.pairs, seed=0)
    data = a.work / f"hh-{a.pairs}.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "chosen": c, "rejected": r}) + "\n"
                            for p, c, r in zip(pairs.prompt, pairs.chosen, pairs.rejected)),
                    encoding="utf-8")
    outs = {p: a.work / f"out-{p}proc-{time.strftime('%H%M%S')}" for p in (1, a.processes)}
    seconds = {p: _timed(_command(a, data, out, p), a.threads) for p, out in outs.items()}
    same = all((out / "strength" / "strength.parquet").read_bytes()
               == (outs[1] / "strength" / "strength.parquet").read_bytes()
               for out in outs.values())
    result = {"members": a.members, "pairs": a.pairs, "threads_per_process": a.threads,
              "seconds_1_process": seconds[1], f"seconds_{a.processes}_processes":
              seconds[a.processes], "speedup": seconds[1] / seconds[a.processes],
              "identical_parquet": same}
    print(f"M={a.members}, {a.pairs} pairs, {a.threads} thread(s) per process: 1 process "
          f"{seconds[1]:.1f} s, {a.processes} processes {seconds[a.processes]:.1f} s "
          f"({result['speedup']:.2f}x); strength.parquet identical: {same}")
    return write_results(a.json, result)


if __name__ == "__main__":
    main(sys.argv[1:])
