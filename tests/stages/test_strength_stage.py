"""The strength stage: outputs, both schemes, detection of known flips, resume after kill -9."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from toy_data import write_toy

from kill_helpers import kill_once_a_job_is_published
from rewardlab.cli import main
from rewardlab.files import read_json
from rewardlab.noise import flips_by_id
from rewardlab.stages.strength import assign_folds, plan_jobs

FAST = ["--epochs", "8", "--batch-size", "16", "--proj-dim", "16", "--quiet"]


def test_strength_outputs_and_columns(toy_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert main(["strength", str(toy_file), "-o", str(out), "--members", "3", *FAST]) == 0
    table = pq.read_table(out / "strength" / "strength.parquet")
    for col in ("id", "prompt", "chosen", "rejected", "source", "truly_flipped",
                "strength_mean", "strength_std", "strength_members", "strength_rank",
                "strength_group", "category"):
        assert col in table.column_names
    members = np.array(table.column("strength_members").to_pylist())
    mean = table.column("strength_mean").to_numpy()
    assert members.shape == (80, 3)
    assert np.allclose(mean, members.mean(axis=1))
    assert np.allclose(table.column("strength_std").to_numpy(), members.std(axis=1))  # ddof=0
    assert sorted(table.column("strength_rank").to_pylist()) == list(range(80))
    summary = read_json(out / "strength" / "summary.json")
    assert summary["n"] == 80 and summary["members"] == 3 and summary["scheme"] == "insample"
    assert summary["fraction_negative"] == pytest.approx(float((mean < 0).mean()))
    assert len((out / "strength" / "strength.jsonl").read_text().splitlines()) == 80
    # Every fifth label is flipped: strength must rank those lowest.
    flipped = np.array(table.column("truly_flipped").to_pylist())
    assert mean[flipped].mean() < 0 < mean[~flipped].mean()


def test_crossfit_records_the_injected_flips(toy_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "cf"
    assert main(["strength", str(toy_file), "-o", str(out), "--members", "2",
                 "--scheme", "crossfit", "--folds", "4", "--inject-flips", "0.2", *FAST]) == 0
    summary = read_json(out / "strength" / "summary.json")
    assert summary["scheme"] == "crossfit" and summary["folds"] == 4
    table = pq.read_table(out / "strength" / "strength.parquet")
    injected = np.array(table.column("injected_flip").to_pylist())
    # Which pairs flip is a function of their ids and the seed alone.
    assert (injected == flips_by_id(table.column("id").to_pylist(), 0.2, seed=0)).all()
    assert summary["detection"]["flipped"] == injected.sum() > 0
    assert 0.0 <= summary["detection"]["auroc"] <= 1.0


def test_fold_plan_is_prompt_grouped_and_covers_all() -> None:
    prompts = [f"p{i % 7}" for i in range(50)]
    folds = assign_folds(prompts, 3, seed=1)
    for p in set(prompts):
        assert len({f for q, f in zip(prompts, folds) if q == p}) == 1
    jobs = plan_jobs(prompts, members=4, scheme="crossfit", folds=3, seed=0, joint=False)
    assert len(jobs) == 12
    scored = np.zeros((4, 50), dtype=int)
    for job in jobs:
        assert not set(job.train) & set(job.score)
        scored[np.ix_(job.members, job.score)] += 1
    assert (scored == 1).all()


def test_same_seed_gives_identical_bytes(toy_file: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert main(["strength", str(toy_file), "-o", str(tmp_path / name), "--members", "2",
                     "--seed", "3", *FAST]) == 0
    a = (tmp_path / "a" / "strength" / "strength.parquet").read_bytes()
    assert a == (tmp_path / "b" / "strength" / "strength.parquet").read_bytes()


def _strength_cmd(data: Path, out: Path, *extra: str) -> list[str]:
    # Not --quiet: the resume message is logged at INFO level.
    return [sys.executable, "-m", "rewardlab.cli", "strength", str(data), "-o", str(out),
            "--members", "2", "--scheme", "crossfit", "--folds", "5", "--epochs", "25",
            "--batch-size", "8", "--seed", "0", *extra]


@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted_run(tmp_path: Path) -> None:
    data = write_toy(tmp_path / "toy.jsonl", 240, flip_every=6)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    killed = tmp_path / "killed"
    finished = kill_once_a_job_is_published(_strength_cmd(data, killed), env, killed)
    assert 1 <= finished < 5
    assert not (killed / "strength" / "strength.parquet").exists()

    resumed = subprocess.run(_strength_cmd(data, killed), env=env, capture_output=True,
                             text=True, check=True)
    assert f"resuming, {finished} of 5 jobs already finished" in resumed.stderr
    subprocess.run(_strength_cmd(data, tmp_path / "clean"), env=env, check=True,
                   capture_output=True)
    assert ((killed / "strength" / "strength.parquet").read_bytes()
            == (tmp_path / "clean" / "strength" / "strength.parquet").read_bytes())

    # Other settings in the same folder never reuse those partial results.
    other = subprocess.run(_strength_cmd(data, killed, "--lr", "0.002"), env=env,
                           capture_output=True, text=True, check=True)
    assert "resuming" not in other.stderr


@pytest.mark.slow
def test_in_sample_run_killed_mid_training_reruns_byte_identically(tmp_path: Path) -> None:
    # In-sample with the embedding backend is one job (all members train jointly): a kill inside
    # it leaves nothing to resume, and the rerun must still write exactly the clean result.
    data = write_toy(tmp_path / "toy.jsonl", 240, flip_every=6)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "rewardlab.cli", "strength", str(data), "--members", "4",
           "--epochs", "60", "--batch-size", "8", "--seed", "2", "--quiet", "-o"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*cmd, str(killed)], env=env, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if list(killed.glob("strength/.partial/*")):  # encoding is done, training has begun
            time.sleep(0.5)
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (killed / "strength" / "strength.parquet").exists()
    subprocess.run([*cmd, str(killed)], env=env, check=True, capture_output=True)
    subprocess.run([*cmd, str(tmp_path / "clean")], env=env, check=True, capture_output=True)
    table = Path("strength") / "strength.parquet"
    assert (killed / table).read_bytes() == (tmp_path / "clean" / table).read_bytes()


def test_threshold_categories_from_the_cli(toy_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "t"
    assert main(["strength", str(toy_file), "-o", str(out), "--members", "2",
                 "--categories", "threshold", "--tau", "0.3", *FAST]) == 0
    table = pq.read_table(out / "strength" / "strength.parquet")
    mean = table.column("strength_mean").to_numpy()
    cats = np.array(table.column("category").to_pylist())
    assert (cats[mean < -0.3] == "incorrect").all()
    assert (cats[np.abs(mean) <= 0.3] == "ambiguous").all()
    assert (cats[mean > 0.3] == "normal").all()


@pytest.mark.shared
def test_real_pandalm_votes_flow_through(shared_data: Path, tmp_path: Path) -> None:
    """Real data and the real backbone: the annotator votes reach strength.parquet and the
    summary compares unanimous with split pairs."""
    lines = (shared_data / "pandalm" / "pandalm-test.jsonl").read_text().splitlines()[:160]
    data = tmp_path / "pandalm-head.jsonl"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "s"
    assert main(["strength", str(data), "-o", str(out), "--members", "3", "--on-bad", "skip",
                 *FAST]) == 0
    table = pq.read_table(out / "strength" / "strength.parquet")
    summary = read_json(out / "strength" / "summary.json")
    votes_against = np.array(table.column("votes_against").to_pylist())
    ties = np.array(table.column("ties").to_pylist())
    agree = summary["human_agreement"]
    assert agree["unanimous"] == int(((votes_against == 0) & (ties == 0)).sum())
    assert agree["unanimous"] + agree["split"] == table.num_rows == summary["n"]
    records = [json.loads(line) for line in lines]
    malformed = sum(not (isinstance(r["chosen"], str) and isinstance(r["rejected"], str))
                    for r in records)
    assert table.num_rows == 160 - malformed
    assert summary["data"]["skipped"] == ({"wrong_type": malformed} if malformed else {})
