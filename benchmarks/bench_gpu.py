"""GPU measurements of the embedding path (issue: one million pairs). NOT RUN YET: the session
that wrote it had no GPU; run it where one is available.

1. **MiniLM encoding tokens/s on the GPU**: the bundled all-MiniLM-L6-v2, fp32, no cache, on
   HH-RLHF's distinct texts when ``../shared/data/hh-rlhf`` is there (else on synthetic texts),
   after a warm-up; real (non-padding) tokens over wall seconds, median of ``--repeats``.
2. **`rewardlab strength` end to end on 100k synthetic pairs** (``scale_inputs.py``), M = 10,
   in-sample, default MiniLM, ``--device cuda``, a cold feature cache, under ``/usr/bin/time
   -v``: wall time and peak RSS. Target: at most 3 minutes (a million pairs then fits in half an
   hour on one GPU).

Reproduce (from the repository root, with the project installed and a CUDA torch)::

    python benchmarks/bench_gpu.py --out /tmp/gpu_bench --json /tmp/gpu_bench/gpu.json
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from bench_scale import timed
from common import HH_FILES
from scale_inputs import write_pairs

from rewardlab.config import DEFAULT_MODEL
from rewardlab.models.encode import TextEncoder


def _texts(out: Path, n: int) -> tuple[str, dict[str, list[str]]]:
    """Distinct prompts and responses: HH's when present, else ``n`` synthetic pairs'."""
    from rewardlab.data import read_preferences

    files = sorted(glob.glob(HH_FILES))
    if files:
        ds, _ = read_preferences(files)
        source = f"HH-RLHF ({len(ds)} pairs)"
    else:
        ds, _ = read_preferences([str(write_pairs(out / f"pairs-{n}.jsonl", n))])
        source = f"synthetic ({n} pairs)"
    return source, {"prompt": list(dict.fromkeys(ds["prompt"])),
                    "response": list(dict.fromkeys([*ds["chosen"], *ds["rejected"]]))}


def encoding_speed(out: Path, repeats: int) -> dict[str, object]:
    source, texts = _texts(out, 20_000)
    enc = TextEncoder(DEFAULT_MODEL, cache_dir=None, device="cuda", progress=False)
    tokens = sum(len(x) for side, t in texts.items() for x in enc._tokenize(t, side))  # type: ignore[arg-type]
    enc.encode(["warm up"] * 64, side="response")
    seconds = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for side, t in texts.items():
            enc.encode(t, side=side)  # type: ignore[arg-type]
        torch.cuda.synchronize()
        seconds.append(time.perf_counter() - t0)
    return {"source": source, "texts": sum(map(len, texts.values())), "tokens": tokens,
            "tokens_per_s": round(tokens / statistics.median(seconds)),
            "seconds": [round(s, 2) for s in seconds]}


def strength_100k(out: Path) -> dict[str, object]:
    data = out / "pairs-100000.jsonl"
    if not data.is_file():
        write_pairs(data, 100_000)
    cmd = [str(Path(sys.executable).parent / "rewardlab"), "strength", str(data), "-o",
           str(out / "strength-100k"), "--members", "10", "--device", "cuda", "--seed", "0",
           "--quiet"]
    return timed(cmd, out / "cache-gpu-100k", out / "strength-100k.log")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("/tmp/gpu_bench"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark measures the GPU path")
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "nvidia_smi": subprocess.run(["nvidia-smi", "-L"], capture_output=True,
                                           text=True).stdout.strip()}
    result["encoding"] = encoding_speed(args.out, args.repeats)
    print(json.dumps(result["encoding"]), flush=True)
    result["strength_100k"] = strength_100k(args.out)
    print(json.dumps(result["strength_100k"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
