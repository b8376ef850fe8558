"""Encoding spread over 2 CPU processes (accelerate launch): the shared cache ends up holding
the same vectors as a 1-process run, the main process alone trains, and a failing process is an
error rather than a hang."""

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_encoder import tiny_encoder

from rewardlab.models.encode import read_shard
from tiny_models import make_toy_pairs

HERE = Path(__file__).parent
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tiny_encoder(tmp_path_factory.mktemp("tiny")))


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    pairs = make_toy_pairs(60)
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"prompt": p, "chosen": c, "rejected": r}) + "\n"
                            for p, c, r in zip(pairs.prompt, pairs.chosen, pairs.rejected)))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(args: list[str], cache: Path, *, script: list[str]) -> subprocess.CompletedProcess:
    """``accelerate launch`` with 2 CPU processes (``--multi_gpu`` is accelerate's name for its
    torchrun launcher; without GPUs each process runs on the CPU)."""
    env = {**os.environ, "REWARDLAB_CACHE": str(cache), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(SRC), str(HERE), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
           "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "--main_process_port", str(_free_port()), *script, *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def _cached(cache: Path) -> dict[tuple[str, bytes], tuple[np.ndarray, int]]:
    out = {}
    for shard in cache.glob("features/*/shard-*.safetensors"):
        side = shard.parent.name.rsplit("-", 1)[1]
        data = read_shard(shard)
        for key, vec, tok in zip(data["keys"], data["vectors"], data["tokens"]):
            out[(side, key.tobytes())] = (vec, int(tok))
    return out


@pytest.mark.slow
def test_two_processes_fill_the_cache_like_one(tiny: str, pairs_file: Path,
                                                tmp_path: Path) -> None:
    args = ["encode", str(pairs_file), "--model", tiny, "--quiet"]
    two = _launch(args, tmp_path / "two", script=["-m", "rewardlab.cli"])
    assert two.returncode == 0, two.stderr[-3000:]
    shares = [int(n) for n in re.findall(r"process \d of 2: encoded (\d+) of 180", two.stdout)]
    assert len(shares) == 2 and sum(shares) == 180 and min(shares) > 0  # split, not repeated
    one = subprocess.run([sys.executable, "-m", "rewardlab.cli", *args], capture_output=True,
                         text=True, env={**os.environ, "REWARDLAB_CACHE": str(tmp_path / "one"),
                                         "PYTHONPATH": str(SRC)}, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    a, b = _cached(tmp_path / "one"), _cached(tmp_path / "two")
    assert len(a) == 60 + 120 and a.keys() == b.keys()  # every distinct text, once
    for key, (vec, tokens) in a.items():
        assert b[key][1] == tokens
        # Other batch shapes and thread counts: equal up to float rounding.
        assert np.allclose(b[key][0], vec, atol=1e-6)
    # Each process wrote its own shards: both shares are there.
    assert len(list((tmp_path / "two").glob("features/*-response/shard-*"))) == 2


@pytest.mark.slow
def test_strength_under_two_processes_trains_once(tiny: str, pairs_file: Path,
                                                  tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = _launch(["strength", str(pairs_file), "-o", str(out), "--model", tiny, "--members",
                   "2", "--epochs", "1", "--quiet"], tmp_path / "cache",
                  script=["-m", "rewardlab.cli"])
    assert res.returncode == 0, res.stderr[-3000:]
    assert "process 1 of 2: encoded" in res.stdout
    assert res.stdout.count("have mean strength < 0") == 1  # only the main process trained
    assert (out / "strength" / "strength.parquet").is_file()


@pytest.mark.slow
def test_a_failing_process_is_an_error_not_a_hang(tiny: str, pairs_file: Path,
                                                  tmp_path: Path) -> None:
    res = _launch(["encode", str(pairs_file), "--model", tiny, "--quiet"], tmp_path / "cache",
                  script=[str(HERE / "rank_fails.py")])
    assert res.returncode != 0
    assert "injected failure in process 1" in res.stdout + res.stderr
