"""Strength jobs spread over processes (``--parallel members``), the exchange through the partial
folder, failure detection, and resume after kill -9 in both parallel modes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from rewardlab.files import read_json, write_json
from rewardlab.launch import Ranks, alone, launch_command
from rewardlab.stages.parallel import (
    JobOutcome,
    RankStatus,
    job_file,
    run_jobs,
    sum_counts,
    wait_for_jobs,
)

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"


# -- units: assignment, exchange, failure detection ---------------------------------------------
def _jobs(n: int) -> list[SimpleNamespace]:
    """``n`` one-member jobs, job ``i`` scoring pair ``i`` for member 0."""
    return [SimpleNamespace(index=i, members=(0,), score=np.array([i])) for i in range(n)]


def test_each_rank_runs_its_own_jobs_and_gathers_the_rest(tmp_path: Path) -> None:
    jobs = _jobs(5)
    # Rank 1 of 2 already published its jobs (1 and 3), as if it ran first.
    for job in jobs[1::2]:
        write_json(job_file(tmp_path, job.index, ".json"), {"rank": 1})
        np.save(job_file(tmp_path, job.index), np.array([[10.0 + job.index]]))
    write_json(tmp_path / "ranks" / "rank-1.json", {"state": "done", "started": time.time()})
    ran = []

    def run(job: SimpleNamespace) -> JobOutcome:
        ran.append(job.index)
        return JobOutcome(np.array([[float(job.index)]]))

    delta = np.full((1, 5), np.nan)
    run_jobs(jobs, jobs, run=run, delta=delta, partial=tmp_path, ranks=Ranks(0, 2, 0))
    assert ran == [0, 2, 4]
    assert delta.tolist() == [[0.0, 11.0, 2.0, 13.0, 4.0]]
    assert read_json(job_file(tmp_path, 2, ".json"))["rank"] == 0
    # Its own jobs published and every other one read: nothing more to read from the folder.
    assert read_json(tmp_path / "ranks" / "rank-0.json")["state"] == "gathered"


def test_only_the_main_rank_removes_the_partial_folder_once_all_have_gathered(
        tmp_path: Path) -> None:
    from rewardlab.stages.parallel import may_remove_partial

    assert may_remove_partial(tmp_path, Ranks(0, 1, 0))  # one process: its own folder
    assert not may_remove_partial(tmp_path, Ranks(1, 2, 1))  # never another rank
    write_json(tmp_path / "ranks" / "rank-1.json", {"state": "gathered", "started": time.time()})
    assert may_remove_partial(tmp_path, Ranks(0, 2, 0))
    # A rank still reading is waited for; one that failed leaves the files in place.
    write_json(tmp_path / "ranks" / "rank-1.json", {"state": "failed", "started": time.time()})
    assert not may_remove_partial(tmp_path, Ranks(0, 2, 0))


def test_a_failed_rank_is_an_error_not_a_hang(tmp_path: Path) -> None:
    jobs = _jobs(2)
    delta = np.full((1, 2), np.nan)
    write_json(tmp_path / "ranks" / "rank-1.json",
               {"state": "failed", "error": "MemoryError: boom", "started": time.time()})
    with pytest.raises(RuntimeError, match=r"rank 1 failed.*boom"):
        wait_for_jobs(jobs[1:], tmp_path, delta, Ranks(0, 2, 0), started=time.time(),
                      poll=0.01)


def test_a_silent_or_missing_rank_is_an_error(tmp_path: Path) -> None:
    jobs = _jobs(2)
    delta = np.full((1, 2), np.nan)
    # Never showed up in this launch (a status file from an old launch does not count).
    write_json(tmp_path / "ranks" / "rank-1.json", {"state": "failed", "started": 0.0})
    started = time.time()
    with pytest.raises(RuntimeError, match="rank 1 never started"):
        wait_for_jobs(jobs[1:], tmp_path, delta, Ranks(0, 2, 0), started=started,
                      stale_after=0.2, poll=0.01)
    # Started, then stopped beating.
    status = tmp_path / "ranks" / "rank-1.json"
    write_json(status, {"state": "running", "started": time.time(), "pid": 1})
    os.utime(status, (time.time() - 60, time.time() - 60))
    with pytest.raises(RuntimeError, match="rank 1 stopped"):
        wait_for_jobs(jobs[1:], tmp_path, delta, Ranks(0, 2, 0), started=time.time(),
                      stale_after=30, poll=0.01)


def test_status_beats_and_reports_failure(tmp_path: Path) -> None:
    status_file = tmp_path / "ranks" / "rank-0.json"
    with pytest.raises(KeyError), RankStatus(tmp_path, Ranks(0, 2, 0), beat=0.05):
        first = status_file.stat().st_mtime_ns
        time.sleep(0.3)
        assert status_file.stat().st_mtime_ns > first  # the heartbeat refreshed it
        raise KeyError("lost")
    status = read_json(status_file)
    assert status["state"] == "failed" and "lost" in status["error"]


def test_alone_hides_the_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with alone() as ranks:
        assert ranks == Ranks(1, 2, 1)
        assert "WORLD_SIZE" not in os.environ and "LOCAL_RANK" not in os.environ
    assert os.environ["WORLD_SIZE"] == "2"
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    with pytest.raises(ValueError, match="--parallel data"), alone():
        pass


def test_sum_counts() -> None:
    assert sum_counts([{"pairs": 2, "truncated": 1}, {"pairs": 3, "truncated": 0}]) == {
        "pairs": 5, "truncated": 1}
    assert sum_counts([{"pairs": 2}, None]) is None


# -- processes: 1 against 2, kill -9 and resume --------------------------------------------------
@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    from tiny_models import build_tiny_gpt2, toy_pairs

    root = tmp_path_factory.mktemp("parallel")
    model = build_tiny_gpt2(root / "gpt2")
    pairs = toy_pairs(96, 0)
    data = root / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "chosen": c, "rejected": r}) + "\n"
                            for p, c, r in zip(pairs.prompt, pairs.chosen, pairs.rejected)))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(TESTS)])}
    return SimpleNamespace(root=root, model=model, data=data, env=env)


def _args(s: SimpleNamespace, out: Path, *extra: str) -> list[str]:
    return ["strength", str(s.data), "-o", str(out), "--backend", "finetune", "--model",
            str(s.model), "--epochs", "3", "--batch-size", "8", "--lr", "0.01",
            "--max-length", "32", "--device", "cpu", *extra]


def _launch(processes: int, args: list[str]) -> list[str]:
    target = ["-m", "rewardlab.cli", *args]
    return [sys.executable, *target] if processes == 1 else launch_command(processes, target)


def _run(s: SimpleNamespace, processes: int, out: Path, *extra: str, quiet: bool = True) -> str:
    """Run to the end; return the log (info messages only when not ``quiet``)."""
    args = _args(s, out, *extra, *(["--quiet"] if quiet else []))
    proc = subprocess.run(_launch(processes, args), env=s.env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stderr


def _parquet(out: Path) -> bytes:
    return (out / "strength" / "strength.parquet").read_bytes()


def _records(out: Path) -> list[dict]:
    """How each job went, from the strength summary (the partial folder is gone by then)."""
    return read_json(out / "strength" / "summary.json")["jobs"]


@pytest.mark.slow
def test_two_processes_write_what_one_writes(setup: SimpleNamespace) -> None:
    """Cross-fitted, 2 folds x 2 members: each rank trains its own (fold, member) jobs."""
    crossfit = ["--members", "2", "--scheme", "crossfit", "--folds", "2",
                "--parallel", "members"]
    one, two = setup.root / "cf-one", setup.root / "cf-two"
    _run(setup, 1, one, *crossfit)
    _run(setup, 2, two, *crossfit)
    assert _parquet(one) == _parquet(two)
    assert [r["rank"] for r in _records(one)] == [0, 0, 0, 0]
    assert [r["rank"] for r in _records(two)] == [0, 1, 0, 1]
    summary = read_json(two / "strength" / "summary.json")
    assert summary["truncation"]["pairs"] == 96  # every pair counted once, none dropped


def _kill_when_some_finished(s: SimpleNamespace, processes: int, out: Path, jobs: int,
                             *extra: str) -> int:
    """Start a run, SIGKILL it and all its processes once a job is published; return how many
    jobs had finished."""
    import psutil

    proc = subprocess.Popen(_launch(processes, _args(s, out, *extra, "--quiet")), env=s.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if list(out.glob("strength/.partial/*/job-*.npy")):
            break
        time.sleep(0.02)
    family = [proc.pid, *(c.pid for c in psutil.Process(proc.pid).children(recursive=True))]
    for pid in family:
        os.kill(pid, signal.SIGKILL)
    proc.wait()
    finished = len(list(out.glob("strength/.partial/*/job-*.npy")))
    assert 1 <= finished < jobs, "the run finished before it could be killed"
    assert not (out / "strength" / "strength.parquet").exists()
    return finished


@pytest.mark.slow
@pytest.mark.parametrize("parallel", ["members", "data"])
def test_kill9_resumes_at_the_first_unfinished_member(setup: SimpleNamespace,
                                                      parallel: str) -> None:
    insample = ["--members", "4", "--parallel", parallel]
    killed = setup.root / f"killed-{parallel}"
    finished = _kill_when_some_finished(setup, 2, killed, 4, *insample)
    log = _run(setup, 2, killed, *insample, quiet=False)
    assert f"resuming, {finished} of 4 jobs already finished" in log
    clean = setup.root / f"clean-{parallel}"
    # Members mode: the same bytes as one uninterrupted process. Data mode (DDP splits every
    # batch, so floats differ from one process): as an uninterrupted 2-process run.
    _run(setup, 1 if parallel == "members" else 2, clean, *insample)
    assert _parquet(killed) == _parquet(clean)
