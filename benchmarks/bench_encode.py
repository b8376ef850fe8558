"""Benchmark cold text encoding: rewardlab's TextEncoder against a plain transformers loop and
sentence-transformers' ``encode``, on the same HH-RLHF pairs and the same backbone (the bundled
all-MiniLM-L6-v2 by default), on the CPU with torch's default thread count.

Measured, on the first ``--pairs`` pairs after a seed-0 shuffle:

1. **rewardlab** -- ``TextEncoder`` with an empty temporary cache (a cold encode), used the way
   the embedding backend uses it: prompts with ``side="prompt"`` (kept from the end), chosen and
   rejected responses with ``side="response"`` (kept from the start). Distinct texts only, sorted
   by length and batched under a token budget.
2. **plain transformers** -- ``AutoTokenizer`` + ``AutoModel`` over the very texts rewardlab
   encoded (same truncation, so the same real tokens), in input order, fixed batches of
   ``--batch-size``, padded to each batch's longest text, mean pooling. Ratio target: rewardlab's
   real tokens/s at least 0.9x this loop's.
3. **sentence-transformers** -- ``SentenceTransformer.encode`` over the naive input: ``prompt +
   response`` as one string, two per pair (chosen, rejected). Ratio target: rewardlab's pairs/s
   at least 1.3x the peer's.
4. **rewardlab warm** -- a fresh ``TextEncoder`` on the cache written by (1): nothing is encoded.

Real tokens are non-padding tokens after truncation; tokens/s is real tokens over wall seconds.
Models are loaded (and rewardlab's weights fingerprint computed) before the clock starts, and
each method gets one tiny warm-up forward pass. With ``--repeats`` above 1 the methods run in
turn and each reports its median seconds (every rewardlab cold run gets a new empty cache).

Reproduce (from the repository root, on a quiet machine)::

    .venv/bin/python benchmarks/bench_encode.py --pairs 600 --json bench_encode.json
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from common import expand, write_results

DEFAULT_DATA = str(Path(__file__).resolve().parents[1].parent
                   / "shared" / "data" / "hh-rlhf" / "*.jsonl.gz")


@dataclass
class Texts:
    """The benchmark's input: ``n`` pairs, and the distinct texts per truncation side."""

    prompt: list[str]
    chosen: list[str]
    rejected: list[str]

    def __len__(self) -> int:
        return len(self.prompt)

    @property
    def responses(self) -> list[str]:
        return self.chosen + self.rejected

    def distinct(self) -> dict[str, list[str]]:
        """Distinct texts per side, in first-seen order (what rewardlab encodes)."""
        return {"prompt": list(dict.fromkeys(self.prompt)),
                "response": list(dict.fromkeys(self.responses))}

    def naive(self) -> list[str]:
        """``prompt + response``, chosen then rejected for each pair (what a peer encodes)."""
        out: list[str] = []
        for p, c, r in zip(self.prompt, self.chosen, self.rejected):
            out += [p + c, p + r]
        return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", nargs="+", default=[DEFAULT_DATA],
                   help="preference files or glob patterns (HH-RLHF *.jsonl.gz)")
    p.add_argument("--pairs", type=int, default=600,
                   help="pairs encoded: the first N after a seed-0 shuffle")
    p.add_argument("--model", default=None, help="backbone folder (default: bundled MiniLM)")
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    return args


def load_texts(patterns: list[str], n: int, seed: int = 0) -> Texts:
    """The first ``n`` pairs of the data after a seeded shuffle."""
    from rewardlab.data import read_preferences

    ds, _ = read_preferences(expand(patterns))
    order = list(range(len(ds)))
    random.Random(seed).shuffle(order)
    rows = ds.select(order[:n])
    return Texts(list(rows["prompt"]), list(rows["chosen"]), list(rows["rejected"]))


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


# -- 1 and 4: rewardlab -----------------------------------------------------------------------
def rewardlab_encoder(model_dir: str, args: argparse.Namespace, cache: str):
    """A ready ``TextEncoder`` on ``cache``: backbone loaded, fingerprint hashed, warmed up."""
    from rewardlab.models.encode import TextEncoder

    enc = TextEncoder(model_dir, max_length=args.max_length, batch_size=args.batch_size,
                      cache_dir=cache, progress=False)
    _ = enc.fingerprint
    warm_up(enc.model, enc.tokenizer)
    return enc


def rewardlab_encode(enc, texts: Texts) -> dict[str, int]:
    """Encode like the embedding backend; returns real tokens of the distinct texts encoded."""
    p = enc.encode(texts.prompt, side="prompt")
    r = enc.encode(texts.responses, side="response")
    tokens = dict(zip(texts.prompt, p.tokens.tolist()))
    resp_tokens = dict(zip(texts.responses, r.tokens.tolist()))
    return {"prompt": sum(tokens.values()), "response": sum(resp_tokens.values())}


def bench_rewardlab(model_dir: str, texts: Texts, args: argparse.Namespace,
                    cache: str) -> dict[str, float]:
    enc = rewardlab_encoder(model_dir, args, cache)
    seconds, tokens = timed(lambda: rewardlab_encode(enc, texts))
    return {"seconds": seconds, "texts": enc.encoded_count,
            "tokens": sum(tokens.values())}


def bench_warm(model_dir: str, texts: Texts, args: argparse.Namespace,
               cache: str) -> dict[str, float]:
    """A fresh encoder (nothing in memory) over the cache a cold run wrote."""
    from rewardlab.models.encode import TextEncoder

    enc = TextEncoder(model_dir, max_length=args.max_length, batch_size=args.batch_size,
                      cache_dir=cache, progress=False)
    _ = enc.fingerprint  # hashing the weights is setup, as in the cold run
    seconds, tokens = timed(lambda: rewardlab_encode(enc, texts))
    return {"seconds": seconds, "texts": enc.encoded_count,
            "tokens": sum(tokens.values())}


# -- 2: plain transformers loop ----------------------------------------------------------------
def warm_up(model: torch.nn.Module, tokenizer) -> None:
    with torch.inference_mode():
        model(**tokenizer(["warm up"], return_tensors="pt"))


@torch.inference_mode()
def plain_encode(model, tokenizer, texts: list[str], side: str, max_length: int,
                 batch_size: int) -> int:
    """Fixed batches in input order, padded to the batch max, mean pooled; real tokens seen."""
    tokenizer.truncation_side = "left" if side == "prompt" else "right"
    real = 0
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        torch.nn.functional.normalize(pooled, dim=-1)
        real += int(batch["attention_mask"].sum())
    return real


def bench_plain(model_dir: str, texts: Texts, args: argparse.Namespace) -> dict[str, float]:
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    warm_up(model, tokenizer)
    distinct = texts.distinct()

    def run() -> int:
        return sum(plain_encode(model, tokenizer, t, side, args.max_length, args.batch_size)
                   for side, t in distinct.items())

    seconds, tokens = timed(run)
    return {"seconds": seconds, "texts": sum(map(len, distinct.values())),
            "tokens": tokens}


# -- 3: sentence-transformers peer --------------------------------------------------------------
def bench_peer(model_dir: str, texts: Texts, args: argparse.Namespace) -> dict[str, float]:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_dir, device="cpu")
    model.max_seq_length = args.max_length
    model.encode(["warm up"], show_progress_bar=False)
    naive = texts.naive()
    seconds, _ = timed(lambda: model.encode(naive, batch_size=args.batch_size,
                                            show_progress_bar=False))
    ids = model.tokenizer(naive, truncation=True, max_length=args.max_length)["input_ids"]
    return {"seconds": seconds, "texts": len(naive), "tokens": sum(map(len, ids))}


# -- reporting ---------------------------------------------------------------------------------
def summarize(runs: list[dict[str, float]], pairs: int) -> dict[str, float]:
    """Median seconds over repeats, and the rates derived from it."""
    seconds = statistics.median(r["seconds"] for r in runs)
    last = runs[-1]
    return {"seconds": seconds, "texts_encoded": int(last["texts"]),
            "real_tokens": int(last["tokens"]),
            "tokens_per_s": last["tokens"] / seconds if seconds > 0 else float("inf"),
            "pairs_per_s": pairs / seconds if seconds > 0 else float("inf")}


def markdown(results: dict) -> str:
    rows = [("rewardlab TextEncoder (cold)", "rewardlab"),
            ("plain transformers loop", "plain"),
            ("sentence-transformers encode", "sentence_transformers"),
            ("rewardlab TextEncoder (warm)", "rewardlab_warm")]
    n = results["pairs"]
    lines = [f"pairs: {n} (naive texts: {2 * n}), max length {results['max_length']}, "
             f"batch size {results['batch_size']}, repeats {results['repeats']}, "
             f"CPUs {results['cpu_count']}, torch threads {results['torch_threads']}",
             "",
             "| method | seconds | texts encoded | real tokens | tokens/s | pairs/s |",
             "|---|---:|---:|---:|---:|---:|"]
    for label, key in rows:
        r = results[key]
        lines.append(f"| {label} | {r['seconds']:.3f} | {r['texts_encoded']} | "
                     f"{r['real_tokens']} | {r['tokens_per_s']:.0f} | {r['pairs_per_s']:.1f} |")
    ratios = results["ratios"]
    lines += ["",
              f"- rewardlab / plain loop, real tokens/s: "
              f"{ratios['tokens_per_s_vs_plain']:.2f}x (target >= 0.9)",
              f"- rewardlab / sentence-transformers, pairs/s: "
              f"{ratios['pairs_per_s_vs_sentence_transformers']:.2f}x (target >= 1.3)",
              f"- texts encoded: {results['rewardlab']['texts_encoded']} distinct vs "
              f"{2 * n} naive; warm rerun encoded {results['rewardlab_warm']['texts_encoded']}",
              f"- same real tokens in rewardlab and the plain loop: "
              f"{results['rewardlab']['real_tokens'] == results['plain']['real_tokens']}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from rewardlab.config import DEFAULT_MODEL
    from rewardlab.models.text import resolve_model_path

    model_dir = resolve_model_path(args.model or DEFAULT_MODEL)
    texts = load_texts(args.data, args.pairs)
    runs: dict[str, list[dict[str, float]]] = {
        "rewardlab": [], "plain": [], "sentence_transformers": [], "rewardlab_warm": []}
    with tempfile.TemporaryDirectory(prefix="bench-encode-") as tmp:
        for i in range(args.repeats):
            cache = os.path.join(tmp, f"cache-{i}")
            runs["rewardlab"].append(bench_rewardlab(model_dir, texts, args, cache))
            runs["plain"].append(bench_plain(model_dir, texts, args))
            runs["sentence_transformers"].append(bench_peer(model_dir, texts, args))
            runs["rewardlab_warm"].append(bench_warm(model_dir, texts, args, cache))
    results: dict = {"pairs": len(texts), "max_length": args.max_length,
                     "batch_size": args.batch_size, "repeats": args.repeats,
                     "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                     "model": model_dir}
    results.update({k: summarize(v, len(texts)) for k, v in runs.items()})
    results["ratios"] = {
        "tokens_per_s_vs_plain":
            results["rewardlab"]["tokens_per_s"] / results["plain"]["tokens_per_s"],
        "pairs_per_s_vs_sentence_transformers":
            results["rewardlab"]["pairs_per_s"]
            / results["sentence_transformers"]["pairs_per_s"],
    }
    print(markdown(results))
    return write_results(args.json, results)


if __name__ == "__main__":
    main()
