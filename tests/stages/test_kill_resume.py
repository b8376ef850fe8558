"""``rewardlab run`` on a small real set, killed (``kill -9``) or out of disk inside its stages,
then rerun: the output must be byte-identical to an uninterrupted run of the same command, and
no fault may leave a half-written file under a final name.

A few fault points run here; ``benchmarks/bench_faults.py`` runs many more (every stage, both
strength schemes, random outside kills) and prints the Reliability table of BENCHMARKS.md.
"""

from __future__ import annotations

import random
import signal
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from fault_harness import (  # the harness lives with the benchmark that shares it
    SMALL_RUN,
    faults_then_rerun,
    reference,
    write_small_set,
)

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def small_run(shared_data: Path,
              tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], Path, dict, float]:
    """The command, its output folder, the snapshot of an uninterrupted run, and its seconds.
    The uninterrupted run also warms the feature cache, so later kills land in the stages."""
    root = tmp_path_factory.mktemp("kill")
    data = write_small_set(shared_data / "hh-rlhf" / "helpful-base.test.jsonl.gz",
                           root / "small.jsonl")
    out = root / "out"
    args = ["run", str(data), "-o", str(out), *SMALL_RUN]
    t0 = time.perf_counter()
    want = reference(args, out, root / "reference")
    return args, out, want, time.perf_counter() - t0


def test_killed_in_every_stage_and_out_of_disk_then_rerun(
        small_run: tuple[list[str], Path, dict, float]) -> None:
    args, out, want, seconds = small_run
    seed = random.randrange(10**6)
    # First a real kill -9 from outside, at a random early moment (imports, reading the data):
    # never after the strength stage is published, or the strength fault below would not fire.
    outside = f"sigkill@{0.5 + random.Random(seed).random() * min(2.0, 0.1 * seconds):.2f}"
    # Then each fault fires in the first stage still to do, and the next run resumes from there.
    faults = [outside,
              "write~strength/:after=0",  # the ensemble's Δ, written, not yet published
              "write~groups/:after=0",  # all 10 group models trained, groups.json not published
              "write~compare/:after=0:enospc",  # disk full as compare.json is written
              "write~final/model:after=0",  # the final model's weights, written, not published
              "write~figures/:after=3"]  # the report, half its figures drawn
    outcome = faults_then_rerun(args, out, want, faults=faults)
    kill = -signal.SIGKILL
    assert [s.returncode for s in outcome.steps[1:]] == [kill, kill, 1, kill, kill], \
        f"seed {seed}: {outcome}"
    full = outcome.steps[3].error
    assert f"no space left on device while writing {out / 'compare' / 'compare.json'}" in full
    assert "Traceback" not in full
    assert [s.half_written for s in outcome.steps] == [[]] * len(faults), f"seed {seed}"
    assert outcome.rerun_ok, outcome.detail
    assert outcome.diffs == [], f"seed {seed}"
    assert "taking over the lock" in outcome.detail  # the last kill left its lock
