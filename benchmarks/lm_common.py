"""What the LLM reward-model benchmarks share: HH pairs, causal LMs built from a config (random
weights, offline), per-step timing, peak memory, and running one measurement per subprocess.

Causal LMs use the bundled MiniLM's WordPiece tokenizer (30,522 tokens), so token counts on HH
are realistic without downloading anything; the weights are random, which is all speed and
memory need.
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import HH_FILES, expand

WORK = Path("/tmp/rewardlab-bench")
"""Where built models are kept between runs (a 0.5B model takes minutes to write)."""

SIZES: dict[str, dict[str, Any]] = {
    # A tiny Llama: 4 layers of 256, about 12M parameters (8M of them the embedding).
    "tiny-llama": {"model_type": "llama", "hidden_size": 256, "intermediate_size": 688,
                   "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 4,
                   "vocab_size": 30522, "max_position_embeddings": 1024},
    # Qwen2-0.5B's shape: 24 layers of 896, 14 heads (2 key-value heads), 494M parameters.
    "qwen2-0.5b": {"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864,
                   "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
                   "vocab_size": 151936, "max_position_embeddings": 2048,
                   "tie_word_embeddings": True},
}


def hh_pairs(n: int, seed: int = 0) -> Any:
    """``n`` random HH-RLHF pairs (all of them when ``n`` is 0), as ``Pairs``."""
    from rewardlab.data import read_preferences
    from rewardlab.models import Pairs

    ds, _ = read_preferences(expand([HH_FILES]))
    rows = list(range(len(ds)))
    if 0 < n < len(rows):
        rows = sorted(random.Random(seed).sample(rows, n))
    return Pairs.from_dataset(ds.select(rows))


def causal_lm(size: str, work: Path = WORK) -> Path:
    """A folder holding a randomly initialized causal LM of ``size`` (see :data:`SIZES`) with the
    MiniLM tokenizer; built once, then reused."""
    folder = work / size
    if (folder / "config.json").is_file():
        return folder
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from rewardlab.config import DEFAULT_MODEL
    from rewardlab.models.text import resolve_model_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(DEFAULT_MODEL))
    settings = dict(SIZES[size])
    config = AutoConfig.for_model(settings.pop("model_type"), **settings,
                                  bos_token_id=tokenizer.cls_token_id,
                                  eos_token_id=tokenizer.sep_token_id,
                                  pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    tmp = folder.with_name(folder.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(folder)
    return folder


def model_path(name: str) -> str:
    """``minilm`` (the bundled encoder) or a :data:`SIZES` name, as a loadable path."""
    from rewardlab.config import DEFAULT_MODEL
    from rewardlab.models.text import resolve_model_path

    return resolve_model_path(DEFAULT_MODEL) if name == "minilm" else str(causal_lm(name))


class StepClock:
    """Times every ``torch.optim.AdamW.step`` call made after it starts (rewardlab and the
    Trainer both step a plain AdamW): the gaps between steps are the time per optimizer step
    (forward, backward, clipping, update and the next batch's collation)."""

    def __init__(self) -> None:
        import torch

        self.stamps: list[float] = [time.perf_counter()]
        original = torch.optim.AdamW.step

        def step(opt: Any, *args: Any, **kwargs: Any) -> Any:
            out = original(opt, *args, **kwargs)
            self.stamps.append(time.perf_counter())
            return out

        torch.optim.AdamW.step = step  # type: ignore[method-assign]

    def seconds_per_step(self, skip: int = 2) -> float:
        """Median gap between steps, leaving out the first ``skip`` (warm-up, first batch) and
        the last (its batch may be short)."""
        import statistics

        gaps = [b - a for a, b in zip(self.stamps, self.stamps[1:])][skip:-1]
        return statistics.median(gaps) if gaps else float("nan")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Resident memory of this process now, MiB."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def folder_mb(folder: Path) -> float:
    """Size of every file under ``folder``, MiB."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def in_child(script: str, argv: list[str]) -> dict[str, Any]:
    """Run ``script --child ARGV`` in a fresh Python and return the JSON it prints last, so each
    measurement has its own peak memory and no state leaks between engines."""
    proc = subprocess.run([sys.executable, script, "--child", *argv], capture_output=True,
                          text=True)
    if proc.returncode:
        raise SystemExit(f"child {argv} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child_main(measure: Callable[[list[str]], dict[str, Any]]) -> bool:
    """When this process is a ``--child``, run ``measure`` on the rest of argv, print its JSON
    and return True."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(measure(sys.argv[2:])))
        return True
    return False
