"""Benchmark a LoRA reward-model ensemble on a ~0.5B causal LM: peak memory of M = 1 against
M = 10, the saved ensemble's size on disk, and scoring with every member routed through one pass
against a loop over members.

The model has Qwen2-0.5B's shape (494M parameters) with random weights, built once from a config
into ``/tmp/rewardlab-bench`` (see ``lm_common.py``). Each M trains in its own process on a few HH
pairs (short sequences, a couple of steps per member: memory and disk do not depend on how long
it trains), then scores ``--score-pairs`` pairs both ways and saves the ensemble. Peak RSS is
the process's whole life (loading included); on a GPU the script also reports peak CUDA memory.
Example::

    python benchmarks/bench_lora.py --members 1,10 --json bench_lora.json

Add ``--device cuda`` on a GPU (the backbone then loads in bfloat16).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import write_results
from lm_common import (
    causal_lm,
    child_main,
    current_rss_mb,
    folder_mb,
    hh_pairs,
    in_child,
    peak_rss_mb,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--members", default="1,10", help="comma-separated ensemble sizes M")
    p.add_argument("--size", default="qwen2-0.5b", help="a model size from lm_common.SIZES")
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--pairs", type=int, default=2, help="HH training pairs per member")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--max-length", type=int, default=32)
    p.add_argument("--score-pairs", type=int, default=16)
    p.add_argument("--encode-batch-size", type=int, default=64,
                   help="rows per scoring pass (routed: split over the M members)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    return p.parse_args(argv)


def _timed_score(rm: Any, pairs: Any, routed: bool) -> tuple[float, Any]:
    rm.routed_scoring = routed
    t0 = time.perf_counter()
    delta = rm.score(pairs)
    return time.perf_counter() - t0, delta


def measure(argv: list[str]) -> dict[str, Any]:
    """Fit, score both ways and save one ensemble of ``argv[0]`` members, in this process."""
    import torch

    from rewardlab.config import ModelConfig
    from rewardlab.models.finetune import FinetuneRewardModel

    members, a = int(argv[0]), parse_args(argv[1:])
    torch.set_num_threads(a.threads)
    config = ModelConfig.from_dict({
        "backend": "finetune", "model": str(causal_lm(a.size)), "members": members,
        "lora_r": a.lora_r, "epochs": 1, "lr": 1e-4, "batch_size": a.batch_size,
        "max_length": a.max_length, "device": a.device,
        "encode_batch_size": a.encode_batch_size})
    rm = FinetuneRewardModel(config, progress=False)
    train = hh_pairs(a.pairs, seed=1)
    fit = rm.fit(train)
    rss_after_fit = current_rss_mb()  # the ensemble's steady footprint, past the loading peak
    test = rm.prepare(hh_pairs(a.score_pairs, seed=2))
    looped_s, looped = _timed_score(rm, test, routed=False)
    routed_s, routed = _timed_score(rm, test, routed=True)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        folder = rm.save(Path(tmp) / "model")
        save_s = time.perf_counter() - t0
        disk = folder_mb(folder)
    cuda = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    return {"members": members, "fit_seconds": fit.seconds, "steps_per_member": fit.steps,
            "train_pairs_per_s": len(train) * members / fit.seconds,
            "score_pairs_per_s_looped": len(test) / looped_s,
            "score_pairs_per_s_routed": len(test) / routed_s,
            "score_seconds_looped": looped_s, "score_seconds_routed": routed_s,
            "routed_max_abs_diff": float((routed - looped).abs().max()),
            "save_seconds": save_s, "disk_mb": disk, "peak_rss_mb": peak_rss_mb(),
            "rss_after_fit_mb": rss_after_fit,
            "peak_cuda_mb": cuda}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    a = parse_args(argv)
    base = causal_lm(a.size)  # built here, once, before the measured processes
    base_mb = sum(f.stat().st_size for f in base.glob("*.safetensors")) / 2**20
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in vars(a).items()
             if k not in ("members", "json")]
    rows = []
    for m in (int(x) for x in a.members.split(",")):
        row = in_child(__file__, [str(m), *flags])
        rows.append(row)
        print(f"M={m:>2}: peak RSS {row['peak_rss_mb']:.0f} MiB (after fit "
              f"{row['rss_after_fit_mb']:.0f} MiB), saved {row['disk_mb']:.1f} MiB "
              f"(full fine-tuning would save {m * base_mb:.0f} MiB), fit {row['fit_seconds']:.0f}"
              f" s, score {a.score_pairs} pairs looped {row['score_seconds_looped']:.2f} s / "
              f"routed {row['score_seconds_routed']:.2f} s (max |diff| "
              f"{row['routed_max_abs_diff']:.1e})", flush=True)
    if len(rows) > 1:
        print(f"peak RSS M={rows[-1]['members']} / M={rows[0]['members']}: "
              f"{rows[-1]['peak_rss_mb'] / rows[0]['peak_rss_mb']:.2f}x")
    return write_results(a.json, rows)


if __name__ == "__main__" and not child_main(measure):
    main(sys.argv[1:])
