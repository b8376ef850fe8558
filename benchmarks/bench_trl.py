"""Benchmark rewardlab's fine-tuning loop against TRL's ``RewardTrainer``: time per optimizer
step, pairs dropped, tokens per step and peak memory, on the same HH pairs.

Same model, batch, max length, precision (float32 on the CPU), optimizer (AdamW, lr 2e-5, linear
warm-up 10%, clipping 1.0) and threads for every engine; each engine runs in its own process
(so its peak RSS is its own). Engines:

* ``trl``: ``RewardTrainer`` with its defaults, among them gradient checkpointing and dropping
  every pair whose chosen or rejected text is longer than ``max_length`` tokens;
* ``trl-nockpt``: the same without gradient checkpointing;
* ``rewardlab``: ``FinetuneRewardModel.fit`` (truncates, never drops; packs each causal-LM
  prompt once with both responses);
* ``rewardlab-unpacked``: the same with prompt packing off (causal LMs only);
* ``rewardlab-kept``: rewardlab on exactly the pairs TRL keeps (the loops compared on identical
  inputs: per step, rewardlab otherwise carries the long pairs TRL drops).

Models: ``minilm`` (the bundled encoder) and ``tiny-llama`` (a 4-layer Llama from a config, random
weights, MiniLM's tokenizer). Needs the ``bench`` extra (``pip install -e '.[bench]'``: TRL).
Example (the lead's quiet-machine run)::

    python benchmarks/bench_trl.py --pairs 256 --batch-size 8 --max-length 256 \\
        --json bench_trl.json

A smoke run::

    python benchmarks/bench_trl.py --pairs 32 --batch-size 4 --max-length 128 \\
        --models tiny-llama
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
    StepClock,
    child_main,
    hh_pairs,
    in_child,
    model_path,
    peak_rss_mb,
)

ENGINES = ("trl", "trl-nockpt", "rewardlab", "rewardlab-unpacked", "rewardlab-kept")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--models", default="minilm,tiny-llama")
    p.add_argument("--engines", default=",".join(ENGINES))
    p.add_argument("--pairs", type=int, default=256, help="HH pairs given to every engine")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--threads", type=int, default=2, help="torch threads per engine")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    return p.parse_args(argv)


def _rewardlab(model: str, pairs: Any, a: argparse.Namespace, packed: bool) -> dict[str, Any]:
    from rewardlab.config import ModelConfig
    from rewardlab.models.finetune import FinetuneRewardModel
    from rewardlab.models.packing import pack_pairs

    config = ModelConfig.from_dict({
        "backend": "finetune", "model": model, "members": 1, "epochs": 1, "lr": 2e-5,
        "batch_size": a.batch_size, "max_length": a.max_length, "seed": a.seed,
        "device": "cpu", "warmup_ratio": 0.1, "weight_decay": 0.01})
    rm = FinetuneRewardModel(config, progress=False)
    rm.pack_prompts = packed
    data = rm.prepare(pairs)
    clock = StepClock()
    fit = rm.fit(data)
    if packed and not rm.pair_format:
        tokens = int((pack_pairs(data.chosen, data.rejected, rm.pad_id)["packed_branch"] >= 0)
                     .sum())
    else:
        tokens = sum(len(c) + len(r) for c, r in zip(data.chosen, data.rejected, strict=True))
    return {"steps": fit.steps, "seconds_per_step": clock.seconds_per_step(),
            "pairs_trained": len(data), "pairs_dropped": 0,
            "pairs_truncated": fit.truncation["truncated"],
            "tokens_per_pair": tokens / len(data)}


def trl_keeps(model: str, pairs: Any, max_length: int) -> list[int]:
    """The pairs TRL's ``RewardTrainer`` keeps: it appends eos to ``prompt + response``,
    tokenizes with special tokens and drops a pair when either side exceeds ``max_length``."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    eos = tok.eos_token or tok.sep_token

    def length(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tok(texts, verbose=False)["input_ids"]]

    chosen = length([p + c + eos for p, c in zip(pairs.prompt, pairs.chosen, strict=True)])
    rejected = length([p + r + eos for p, r in zip(pairs.prompt, pairs.rejected, strict=True)])
    return [i for i, (c, r) in enumerate(zip(chosen, rejected, strict=True))
            if c <= max_length and r <= max_length]


def _trl(model: str, pairs: Any, a: argparse.Namespace, checkpointing: bool) -> dict[str, Any]:
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    tokenizer = AutoTokenizer.from_pretrained(model)
    net = AutoModelForSequenceClassification.from_pretrained(model, num_labels=1)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    net.config.pad_token_id = tokenizer.pad_token_id
    eos = tokenizer.eos_token or tokenizer.sep_token  # BERT tokenizers name it [SEP]
    with tempfile.TemporaryDirectory() as out:
        args = RewardConfig(
            output_dir=out, per_device_train_batch_size=a.batch_size, num_train_epochs=1,
            learning_rate=2e-5, lr_scheduler_type="linear", warmup_steps=0.1,
            weight_decay=0.01, max_grad_norm=1.0, optim="adamw_torch", bf16=False, fp16=False,
            use_cpu=True, max_length=a.max_length, gradient_checkpointing=checkpointing,
            eos_token=eos, save_strategy="no", report_to="none", logging_steps=10_000,
            dataloader_num_workers=0, seed=a.seed, disable_dropout=True)
        ds = Dataset.from_dict({"prompt": list(pairs.prompt), "chosen": list(pairs.chosen),
                                "rejected": list(pairs.rejected)})
        trainer = RewardTrainer(model=net, args=args, train_dataset=ds,
                                processing_class=tokenizer)
        kept = trainer.train_dataset
        tokens = sum(len(c) + len(r) for c, r in zip(kept["chosen_ids"], kept["rejected_ids"],
                                                     strict=True))
        clock = StepClock()
        result = trainer.train()
    return {"steps": result.global_step, "seconds_per_step": clock.seconds_per_step(),
            "pairs_trained": len(kept), "pairs_dropped": len(pairs) - len(kept),
            "pairs_truncated": 0, "tokens_per_pair": tokens / max(len(kept), 1)}


def measure(argv: list[str]) -> dict[str, Any]:
    """One engine on one model, in this (child) process."""
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    engine, model = argv[0], argv[1]
    a = parse_args(argv[2:])
    torch.set_num_threads(a.threads)
    pairs = hh_pairs(a.pairs, a.seed)
    path = model_path(model)
    t0 = time.perf_counter()
    if engine.startswith("trl"):
        out = _trl(path, pairs, a, checkpointing=engine == "trl")
    else:
        if engine == "rewardlab-kept":
            pairs = pairs.subset(trl_keeps(path, pairs, a.max_length))
        out = _rewardlab(path, pairs, a, packed=engine != "rewardlab-unpacked")
        out["pairs_dropped"] = a.pairs - len(pairs)
    out.update(engine=engine, model=model, seconds=time.perf_counter() - t0,
               peak_rss_mb=peak_rss_mb(),
               tokens_per_step=out["tokens_per_pair"] * a.batch_size)
    return out


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    a = parse_args(argv)
    flags = ["--pairs", str(a.pairs), "--batch-size", str(a.batch_size), "--max-length",
             str(a.max_length), "--threads", str(a.threads), "--seed", str(a.seed)]
    rows = []
    for model in a.models.split(","):
        for engine in a.engines.split(","):
            if engine == "rewardlab-unpacked" and model == "minilm":
                continue  # encoders never pack
            row = in_child(__file__, [engine, model, *flags])
            rows.append(row)
            print(f"{model:>10} {engine:>18}: {row['seconds_per_step']:.3f} s/step, "
                  f"{row['steps']} steps, {row['pairs_dropped']} of {a.pairs} pairs dropped, "
                  f"{row['pairs_truncated']} truncated, {row['tokens_per_step']:.0f} tokens/"
                  f"step, peak RSS {row['peak_rss_mb']:.0f} MiB", flush=True)
    for model in a.models.split(","):
        base = next((r for r in rows if r["model"] == model and r["engine"] == "trl"), None)
        for r in rows:
            if base and r["model"] == model and r["engine"] != "trl":
                ratio = r["seconds_per_step"] / base["seconds_per_step"]
                print(f"{model:>10} {r['engine']:>18}: {ratio:.2f}x TRL default's time per step")
    return write_results(a.json, rows)


if __name__ == "__main__" and not child_main(measure):
    main(sys.argv[1:])
