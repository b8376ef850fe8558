"""Scale benchmarks of the embedding path (issue: one million pairs), on synthetic pairs with a
tiny random encoder (``scale_inputs.py``), so they measure rewardlab's pipeline, not MiniLM.

* ``curve``: ``rewardlab strength``, M = 10, in-sample, under ``/usr/bin/time -v``, for each
  ``--pairs`` size: wall time, peak RSS, time per pair. Cold (an empty feature cache: encoding
  included), and with ``--warm`` again on the filled cache (the pipeline without encoding).
* ``resume``: ``rewardlab encode`` killed with SIGKILL after ``--kill-after`` seconds, then run
  again: how many texts the second run encodes (it should skip every finished shard).
* ``processes``: cold ``rewardlab encode`` in 1 process against 2 (``accelerate launch``).

Every timing records the load average before and after (``/proc/loadavg``): on a shared machine
wall times are only comparable at equal load. Peak RSS is not affected by load.

Reproduce (from the repository root)::

    python benchmarks/bench_scale.py curve --pairs 10000 100000 --warm --out /tmp/ooc_bench
    nice python benchmarks/bench_scale.py curve --pairs 1000000 --warm --out /tmp/ooc_bench

(``--threads 1`` on a machine others are loading: see BENCHMARKS.md.)
    python benchmarks/bench_scale.py resume --pairs 100000 --kill-after 120 --out /tmp/ooc_bench
    python benchmarks/bench_scale.py processes --pairs 20000 --out /tmp/ooc_bench
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from scale_inputs import build_tiny_encoder, write_pairs

BIN = Path(sys.executable).parent
SRC = Path(__file__).resolve().parents[1] / "src"


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


THREADS: dict[str, str] = {}
"""``--threads N``: OMP/MKL thread counts for every run (empty: torch's default)."""


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, **THREADS, "REWARDLAB_CACHE": str(cache), "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}


def timed(cmd: list[str], cache: Path, log: Path) -> dict[str, object]:
    """Run ``cmd`` under ``/usr/bin/time -v``; its wall time, peak RSS and load averages."""
    before = load_average()
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        rc = subprocess.run(["/usr/bin/time", "-v", *cmd], env=_env(cache), stdout=fh,
                            stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - t0
    text = log.read_text(errors="replace")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    return {"returncode": rc, "wall_s": round(wall, 1), "threads": THREADS.get("OMP_NUM_THREADS"),
            "peak_rss_gb": round(int(peak.group(1)) / 1024**2, 3) if peak else None,
            "load_before": before, "load_after": load_average(), "log": str(log)}


def curve(args: argparse.Namespace) -> list[dict[str, object]]:
    tiny = build_tiny_encoder(args.out / "tiny-encoder")
    rows = []
    for n in args.pairs:
        data = args.out / f"pairs-{n}.jsonl"
        if not data.is_file():
            write_pairs(data, n)
        cache = args.out / f"cache-{n}"
        shutil.rmtree(cache, ignore_errors=True)
        for run in ("cold", "warm") if args.warm else ("cold",):
            out = args.out / f"strength-{n}-{run}"
            shutil.rmtree(out, ignore_errors=True)
            cmd = [str(BIN / "rewardlab"), "strength", str(data), "-o", str(out), "--model",
                   str(tiny), "--members", "10", "--scheme", "insample", "--seed", "0",
                   "--quiet"]
            row = {"pairs": n, "run": run, **timed(cmd, cache, args.out / f"{out.name}.log")}
            row["ms_per_pair"] = round(1000 * float(row["wall_s"]) / n, 3)  # type: ignore[arg-type]
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def resume(args: argparse.Namespace) -> dict[str, object]:
    (n,) = args.pairs
    tiny = build_tiny_encoder(args.out / "tiny-encoder")
    data = args.out / f"pairs-{n}.jsonl"
    if not data.is_file():
        write_pairs(data, n)
    cache = args.out / f"cache-resume-{n}"
    shutil.rmtree(cache, ignore_errors=True)
    cmd = [str(BIN / "rewardlab"), "encode", str(data), "--model", str(tiny), "--quiet"]
    proc = subprocess.Popen(cmd, env=_env(cache), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(args.kill_after)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    shards = len(list(cache.glob("features/*/shard-*.safetensors")))
    again = subprocess.run(cmd, env=_env(cache), capture_output=True, text=True)
    found = re.search(r"encoded (\d+) of (\d+) distinct texts", again.stdout)
    row = {"pairs": n, "killed_after_s": args.kill_after, "shards_kept": shards,
           "second_run_encoded": int(found.group(1)) if found else None,
           "distinct_texts": int(found.group(2)) if found else None,
           "returncode": again.returncode}
    print(json.dumps(row), flush=True)
    return row


def processes(args: argparse.Namespace) -> list[dict[str, object]]:
    (n,) = args.pairs
    tiny = build_tiny_encoder(args.out / "tiny-encoder")
    data = args.out / f"pairs-{n}.jsonl"
    if not data.is_file():
        write_pairs(data, n)
    rows = []
    for procs in (1, 2):
        cache = args.out / f"cache-procs{procs}-{n}"
        shutil.rmtree(cache, ignore_errors=True)
        cmd = [str(BIN / "rewardlab"), "encode", str(data), "--model", str(tiny), "--quiet"]
        if procs > 1:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            cmd = [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes",
                   str(procs), "--num_machines", "1", "--mixed_precision", "no",
                   "--dynamo_backend", "no", "--main_process_port", str(port), "-m",
                   "rewardlab.cli", *cmd[1:]]
        row = {"pairs": n, "processes": procs,
               **timed(cmd, cache, args.out / f"encode-procs{procs}-{n}.log")}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["curve", "resume", "processes"])
    p.add_argument("--pairs", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--out", type=Path, default=Path("/tmp/ooc_bench"))
    p.add_argument("--warm", action="store_true", help="curve: also rerun on the filled cache")
    p.add_argument("--kill-after", type=float, default=120.0)
    p.add_argument("--threads", type=int, default=None,
                   help="OMP_NUM_THREADS for the runs (on a loaded machine 1 thread avoids "
                        "torch's threads waiting on each other)")
    args = p.parse_args()
    if args.threads:
        THREADS.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"curve": curve, "resume": resume, "processes": processes}[args.mode](args)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (args.out / f"bench_scale-{args.mode}-{stamp}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
