"""int8 (dynamic quantization of the linear layers) against fp32 MiniLM on HH-RLHF, and float16
against float32 feature storage.

1. **tokens/s** on this CPU: the same ``--speed-pairs`` pairs' distinct texts encoded without a
   cache by each precision in turn (``--repeats`` rounds, alternating; backbones loaded and
   warmed up first); median seconds. A timing: compare only runs at the same load.
2. **cosine similarity** of the pooled vectors of every distinct HH text (prompts and
   responses), int8 against fp32: mean, 1st percentile, minimum.
3. **validation accuracy** of the M = 10 ensemble (mean Δ) over 3 prompt-grouped 90/10 splits
   (seeds 0, 1, 2), default settings, for fp32, int8, and fp32 encodings stored as float16.
   Split-to-split noise is the std over the 3 splits.

Reproduce (from the repository root; encodes all 25.6k HH texts twice into ``--cache``)::

    python benchmarks/bench_int8.py --cache /tmp/ooc_bench/hh-cache --json /tmp/ooc_bench/int8.json
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from common import HH_FILES

from rewardlab.config import DEFAULT_MODEL, ModelConfig
from rewardlab.data import read_preferences, split_train_valid
from rewardlab.evaluation import accuracy
from rewardlab.models import Pairs, build_reward_model
from rewardlab.models.encode import TextEncoder

SETTINGS = {"fp32": {"encoder_precision": "fp32"}, "int8": {"encoder_precision": "int8"},
            "fp32, float16 store": {"encoder_precision": "fp32", "feature_dtype": "float16"}}


def _distinct(pairs: Pairs) -> dict[str, list[str]]:
    return {"prompt": list(dict.fromkeys(pairs.prompt)),
            "response": list(dict.fromkeys([*pairs.chosen, *pairs.rejected]))}


def speed(pairs: Pairs, repeats: int) -> dict[str, object]:
    """Real tokens per second of each precision on the same texts, no cache."""
    texts = _distinct(pairs)
    encoders = {p: TextEncoder(DEFAULT_MODEL, cache_dir=None, progress=False, precision=p)
                for p in ("fp32", "int8")}
    tokens = sum(len(x) for side, t in texts.items()
                 for x in encoders["fp32"]._tokenize(t, side))  # type: ignore[arg-type]
    seconds: dict[str, list[float]] = {p: [] for p in encoders}
    for enc in encoders.values():
        enc.encode(["warm up"], side="response")
    for _ in range(repeats):
        for p, enc in encoders.items():
            t0 = time.perf_counter()
            for side, t in texts.items():
                enc.encode(t, side=side)  # type: ignore[arg-type]
            seconds[p].append(time.perf_counter() - t0)
    out: dict[str, object] = {"texts": sum(map(len, texts.values())), "tokens": tokens,
                              "threads": torch.get_num_threads()}
    for p, s in seconds.items():
        out[f"{p}_tokens_per_s"] = round(tokens / statistics.median(s))
        out[f"{p}_seconds"] = [round(x, 2) for x in s]
    out["speedup"] = round(out["int8_tokens_per_s"] / out["fp32_tokens_per_s"], 3)  # type: ignore
    return out


def cosine(pairs: Pairs, cache: Path) -> dict[str, float]:
    """Cosine of int8 against fp32 pooled vectors of every distinct text (cached in ``cache``)."""
    cos = []
    for side, texts in _distinct(pairs).items():
        a = TextEncoder(DEFAULT_MODEL, cache_dir=cache, precision="fp32").encode(texts, side=side)
        b = TextEncoder(DEFAULT_MODEL, cache_dir=cache, precision="int8").encode(texts, side=side)
        cos.append(torch.nn.functional.cosine_similarity(a.vectors, b.vectors).numpy())
    c = np.concatenate(cos)
    return {"texts": len(c), "mean": float(c.mean()), "p01": float(np.quantile(c, 0.01)),
            "min": float(c.min())}


def accuracies(ds, cache: Path, members: int) -> dict[str, list[float]]:
    """Validation accuracy of the mean Δ of an M-member ensemble, per setting and split seed."""
    rows: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for split_seed in (0, 1, 2):
        train, valid = split_train_valid(ds, valid_frac=0.1, seed=split_seed)
        for name, emb in SETTINGS.items():
            cfg = ModelConfig.from_dict({"members": members, "seed": split_seed,
                                         "cache_dir": str(cache), **emb})
            model = build_reward_model(cfg, progress=False)
            model.fit(Pairs.from_dataset(train))
            d = model.score(Pairs.from_dataset(valid)).mean(dim=0).numpy()
            rows[name].append(accuracy(d))
            print(f"split {split_seed} {name}: {accuracy(d):.4f} (n = {len(d)})", flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache", type=Path, required=True)
    p.add_argument("--speed-pairs", type=int, default=300)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--only", choices=["speed", "cosine", "accuracy"], default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ds, _ = read_preferences(sorted(glob.glob(HH_FILES)))
    pairs = Pairs.from_dataset(ds)
    out: dict[str, object] = {"load_before": Path("/proc/loadavg").read_text().split()[:3]}
    if args.only in (None, "speed"):
        order = np.random.default_rng(0).permutation(len(pairs))[: args.speed_pairs]
        out["speed"] = speed(pairs.subset(order), args.repeats)
        print(json.dumps(out["speed"]), flush=True)
    if args.only in (None, "cosine"):
        out["cosine"] = cosine(pairs, args.cache)
        print(json.dumps(out["cosine"]), flush=True)
    if args.only in (None, "accuracy"):
        acc = accuracies(ds, args.cache, args.members)
        out["accuracy"] = {k: {"per_split": v, "mean": float(np.mean(v)), "std": float(np.std(v))}
                           for k, v in acc.items()}
        for k, v in out["accuracy"].items():  # type: ignore[union-attr]
            print(f"| {k} | {v['mean']:.4f} ± {v['std']:.4f} | "
                  + ", ".join(f"{a:.4f}" for a in v["per_split"]) + " |")
    out["load_after"] = Path("/proc/loadavg").read_text().split()[:3]
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
