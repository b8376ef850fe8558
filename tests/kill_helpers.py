"""Killing a strength run part-way, for the resume tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def kill_once_a_job_is_published(command: Sequence[str], env: Mapping[str, str], out: Path,
                                 timeout: float = 300) -> int:
    """Start ``command`` (a ``strength`` run writing ``out``), ``kill -9`` its process group as
    soon as one finished job is published under ``out/strength/.partial/``, and return how many
    jobs had finished by then. Fails when the run ended before it could be killed."""
    proc = subprocess.Popen(list(command), env=dict(env), stderr=subprocess.DEVNULL,
                            start_new_session=True)
    jobs = out / "strength" / ".partial"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if list(jobs.glob("*/job-*.npy")):
            os.killpg(proc.pid, signal.SIGKILL)  # kill -9 mid-run
            break
        time.sleep(0.02)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    return len(list(jobs.glob("*/job-*.npy")))
