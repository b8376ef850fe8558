"""Benchmark prefix sharing on HH: a causal LM runs each pair's prompt once with both responses
(one packed row per pair) instead of two padded inputs.

For ``--batches`` random batches of ``--batch-size`` HH pairs it reports the tokens each way
(real tokens and padded slots), the time of one forward + backward pass each way (alternating,
median) and the largest difference between the packed and padded Δ (exactness). Example::

    python benchmarks/bench_packing.py --size tiny-llama --batches 20 --batch-size 8 \\
        --max-length 256 --json bench_packing.json
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from common import write_results
from lm_common import causal_lm, hh_pairs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--size", default="tiny-llama", help="a model size from lm_common.SIZES")
    p.add_argument("--pairs", type=int, default=1000, help="HH pairs sampled")
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    return p.parse_args(argv)


def _step(model: Any, batch: dict[str, Any]) -> float:
    """Seconds of one forward and backward pass on ``batch``."""
    from rewardlab.models.finetune import pair_deltas

    t0 = time.perf_counter()
    pair_deltas(model, batch).sum().backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict[str, Any]:
    a = parse_args(argv)
    import torch

    from rewardlab.config import ModelConfig
    from rewardlab.models.finetune import (
        FinetuneRewardModel,
        collate_packed,
        collate_pairs,
        pair_deltas,
    )

    torch.set_num_threads(a.threads)
    rm = FinetuneRewardModel(ModelConfig.from_dict({
        "backend": "finetune", "model": str(causal_lm(a.size)), "max_length": a.max_length,
        "device": "cpu"}), progress=False)
    data = rm.prepare(hh_pairs(a.pairs, a.seed))
    model = rm._load_backbone()[0].train()
    rng = random.Random(a.seed)
    stats: dict[str, list[float]] = {k: [] for k in ("real_padded", "slots_padded", "real_packed",
                                                     "slots_packed", "s_padded", "s_packed")}
    worst = 0.0
    for _ in range(a.batches):
        idx = rng.sample(range(len(data)), a.batch_size)
        padded, packed = collate_pairs(data, rm.pad_id, idx), collate_packed(data, rm.pad_id, idx)
        stats["real_padded"].append(float(padded["chosen_attention_mask"].sum()
                                          + padded["rejected_attention_mask"].sum()))
        stats["slots_padded"].append(2 * padded["chosen_input_ids"].numel())
        stats["real_packed"].append(float((packed["packed_branch"] >= 0).sum()))
        stats["slots_packed"].append(packed["packed_input_ids"].numel())
        stats["s_padded"].append(_step(model, padded))
        stats["s_packed"].append(_step(model, packed))
        with torch.no_grad():
            diff = (pair_deltas(model, padded) - pair_deltas(model, packed)).abs().max()
        worst = max(worst, float(diff))
    total = {k: sum(v) for k, v in stats.items()}
    result = {
        "batches": a.batches, "batch_size": a.batch_size, "max_length": a.max_length,
        "pairs_truncated": data.truncation()["truncated"],
        "real_tokens_saved": 1 - total["real_packed"] / total["real_padded"],
        "slots_saved": 1 - total["slots_packed"] / total["slots_padded"],
        "seconds_padded": statistics.median(stats["s_padded"]),
        "seconds_packed": statistics.median(stats["s_packed"]),
        "max_abs_delta_diff": worst,
    }
    result["speedup"] = result["seconds_padded"] / result["seconds_packed"]
    print(f"{a.size}, {a.batches} batches of {a.batch_size} HH pairs at {a.max_length} tokens: "
          f"packing saves {result['real_tokens_saved']:.1%} of real tokens and "
          f"{result['slots_saved']:.1%} of padded slots; forward+backward "
          f"{result['seconds_padded']:.3f} s padded, {result['seconds_packed']:.3f} s packed "
          f"({result['speedup']:.2f}x); max |Δ packed − Δ padded| "
          f"{result['max_abs_delta_diff']:.1e}")
    return write_results(a.json, result)


if __name__ == "__main__":
    main(sys.argv[1:])
