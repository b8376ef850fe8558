"""Inputs of the scale benchmarks: synthetic preference pairs and a tiny random encoder.

The scale benchmarks measure rewardlab's pipeline (loading, encoding, caching, projecting,
training, scoring, writing), not a real backbone, so they use

* ``write_pairs(path, n)``: ``n`` short synthetic pairs (prompt 5-12 words, responses 5-16 words
  of one token each, every text distinct), seeded, as JSON lines;
* ``build_tiny_encoder(folder)``: a BERT built from a config (384 wide and 1 layer, the shape
  the issue measured with; a 384-wide feed-forward layer), random weights from a seed, with the
  bundled MiniLM's tokenizer. It loads offline like any local backbone (``--model FOLDER``).

Run as a script to write both::

    python benchmarks/scale_inputs.py --pairs 100000 --out /tmp/ooc_bench
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import shutil
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.txt")


def _vocabulary(rng: random.Random, size: int = 3000) -> list[str]:
    """``size`` whole words of the MiniLM vocabulary: each is one token, so a text of k words is
    k + 2 tokens (short texts, as in the issue's measurement)."""
    from rewardlab.config import DEFAULT_MODEL
    from rewardlab.models.text import resolve_model_path

    vocab = (Path(resolve_model_path(DEFAULT_MODEL)) / "vocab.txt").read_text().split()
    words = sorted(w for w in set(vocab) if w.isascii() and w.isalpha() and len(w) >= 3)
    return rng.sample(words, size)


def _sentence(rng: random.Random, words: list[str], low: int, high: int, i: int) -> str:
    # The pair number makes every text distinct, as in real data (no free deduplication).
    return " ".join(rng.choices(words, k=rng.randint(low, high))) + f" {i}."


def write_pairs(path: Path, n: int, *, seed: int = 0) -> Path:
    """Write ``n`` synthetic pairs to ``path`` (``.jsonl`` or ``.jsonl.gz``), one JSON object a
    line with ``prompt``, ``chosen``, ``rejected``."""
    rng = random.Random(seed)
    words = _vocabulary(rng)
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.suffix == ".gz" else open
    tmp = path.with_name(path.name + ".tmp")
    with opener(tmp, "wt", encoding="utf-8") as fh:
        for i in range(n):
            row = {"prompt": "Question: " + _sentence(rng, words, 5, 12, i),
                   "chosen": _sentence(rng, words, 5, 16, i),
                   "rejected": _sentence(rng, words, 5, 16, i)}
            fh.write(json.dumps(row) + "\n")
    tmp.replace(path)
    return path


def build_tiny_encoder(folder: Path, *, hidden: int = 384, layers: int = 1, heads: int = 6,
                       intermediate: int = 384, seed: int = 0) -> Path:
    """A random BERT encoder (``hidden`` wide, ``layers`` deep, feed-forward ``intermediate``
    wide) with MiniLM's tokenizer, saved to ``folder`` (safetensors). The same seed writes the
    same weights."""
    import torch
    from transformers import BertConfig, BertModel

    from rewardlab.config import DEFAULT_MODEL
    from rewardlab.models.text import resolve_model_path

    if (folder / "config.json").is_file():
        return folder
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=intermediate,
                        max_position_embeddings=512)
    BertModel(config).eval().save_pretrained(folder, safe_serialization=True)
    source = Path(resolve_model_path(DEFAULT_MODEL))
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy(source / name, folder / name)
    return folder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    print(write_pairs(args.out / f"pairs-{args.pairs}.jsonl", args.pairs, seed=args.seed))
    print(build_tiny_encoder(args.out / "tiny-encoder"))


if __name__ == "__main__":
    main()
