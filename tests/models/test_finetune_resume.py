"""kill -9 in the middle of a finetune strength ensemble, then the same command again: it resumes
at the first unfinished member and writes exactly what an uninterrupted run writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kill_helpers import kill_once_a_job_is_published
from tiny_models import build_tiny_gpt2, toy_pairs


def _command(data: Path, model: Path, out: Path) -> list[str]:
    # Not --quiet: the resume message is logged at INFO level.
    return [sys.executable, "-m", "rewardlab.cli", "strength", str(data), "-o", str(out),
            "--backend", "finetune", "--model", str(model), "--members", "3", "--epochs", "3",
            "--batch-size", "8", "--lr", "0.01", "--max-length", "32", "--device", "cpu",
            "--seed", "1"]


@pytest.mark.slow
def test_killed_finetune_members_resume_byte_identically(tmp_path: Path) -> None:
    model = build_tiny_gpt2(tmp_path / "gpt2")
    pairs = toy_pairs(48, 0)
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "chosen": c, "rejected": r}) + "\n"
                            for p, c, r in zip(pairs.prompt, pairs.chosen, pairs.rejected)))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    # kill -9 while member 2 trains
    finished = kill_once_a_job_is_published(_command(data, model, killed), env, killed)
    assert 1 <= finished < 3
    resumed = subprocess.run(_command(data, model, killed), env=env, capture_output=True,
                             text=True, check=True)
    assert f"resuming, {finished} of 3 jobs already finished" in resumed.stderr
    subprocess.run(_command(data, model, tmp_path / "clean"), env=env, check=True,
                   capture_output=True)
    table = Path("strength") / "strength.parquet"
    assert (killed / table).read_bytes() == (tmp_path / "clean" / table).read_bytes()
