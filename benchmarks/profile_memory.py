"""Where `rewardlab strength`'s memory goes: the steps of an M = 10 in-sample run, one after
another in one process, with the resident set size (RSS) and its peak so far after each.

Uses the synthetic pairs and tiny encoder of ``scale_inputs.py``. Run it on a warm cache to see
the pipeline, on a cold one to see encoding too; run it at two sizes and divide the differences
by the difference in pairs to get bytes per pair.

Reproduce::

    python benchmarks/profile_memory.py --pairs 100000 --out /tmp/ooc_bench
"""

from __future__ import annotations

import argparse
import gc
import os
from pathlib import Path

from scale_inputs import build_tiny_encoder, write_pairs


def rss_mb() -> tuple[float, float]:
    """Current and peak resident set size of this process, MB."""
    lines = Path("/proc/self/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


class Marks:
    def __init__(self) -> None:
        self.last = 0.0
        self.rows: list[dict[str, float | str]] = []

    def __call__(self, step: str) -> None:
        gc.collect()
        now, peak = rss_mb()
        self.rows.append({"step": step, "rss_mb": round(now), "delta_mb": round(now - self.last),
                          "peak_mb": round(peak)})
        print(f"{step:<36} rss {now:7.0f} MB ({now - self.last:+6.0f})  peak {peak:7.0f} MB",
              flush=True)
        self.last = now


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=100_000)
    p.add_argument("--out", type=Path, default=Path("/tmp/ooc_bench"))
    p.add_argument("--cache", type=Path, default=None, help="default: OUT/cache-PAIRS")
    args = p.parse_args()
    data = args.out / f"pairs-{args.pairs}.jsonl"
    if not data.is_file():
        write_pairs(data, args.pairs)
    tiny = build_tiny_encoder(args.out / "tiny-encoder")
    os.environ["REWARDLAB_CACHE"] = str(args.cache or args.out / f"cache-{args.pairs}")
    mark = Marks()
    import numpy as np

    from rewardlab.config import ModelConfig, StrengthConfig
    from rewardlab.data import read_preferences
    from rewardlab.models import Pairs, build_reward_model, prepare_pairs
    from rewardlab.stages.strength import strength_columns
    from rewardlab.stages.tables import write_pairs_table

    mark("imports")
    ds, _ = read_preferences([str(data)])
    mark("read_preferences (loader)")
    pairs = Pairs.from_dataset(ds)
    mark("Pairs.from_dataset (texts as str)")
    cfg = ModelConfig(members=10, model=str(tiny), device="cpu")
    prepared = prepare_pairs(cfg, pairs, progress=False)
    mark("prepare: keys, cache, store")
    identical = pairs.identical()
    train = prepared.subset(np.flatnonzero(~identical))
    mark("subset (index arrays)")
    model = build_reward_model(cfg, progress=False)
    model.fit(train.inputs)
    mark("fit: PCA, projected store, heads")
    delta = model.score(prepared.inputs).numpy().astype(np.float64)
    mark("score (chunked)")
    cols = strength_columns(delta, StrengthConfig(), identical)
    mark("strength_columns")
    out = args.out / f"profile-{args.pairs}"
    write_pairs_table(ds, cols, out / "strength.parquet", out / "strength.jsonl")
    mark("write parquet + jsonl")


if __name__ == "__main__":
    main()
