"""Running the strength stage's jobs, in one process or spread over the ranks of a launch.

Every finished job is published atomically in the run's partial folder (``job-NNNN.npy``: its Δ;
``job-NNNN.json`` beside it first: how it went). That folder is both the resume point (a rerun
skips finished jobs) and, with ``--parallel members``, the exchange between ranks: rank ``r`` of
``P`` runs the unfinished jobs ``r, r + P, r + 2P, ...`` alone, then every rank waits for the
others' files and reads them, so all end with the same Δ. A job's result never depends on which
rank ran it (its seed comes from the job, its threads from the process), so P processes write
exactly the ``strength.parquet`` that one process writes.

No process group is needed. A rank that dies surfaces as an error, not a hang: each rank keeps a
status file (``ranks/rank-R.json``) whose modification time a heartbeat thread refreshes; a
waiting rank stops when another reports a failure, or stops beating for ``stale_after`` seconds,
or never shows up. (``torchrun``/``accelerate launch`` also end every rank when one dies.)
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from rewardlab.files import read_npy, write_json, write_npy
from rewardlab.launch import Ranks

__all__ = ["JobOutcome", "RankStatus", "job_file", "load_finished", "may_remove_partial",
           "run_jobs", "sum_counts", "wait_for_jobs"]

HEARTBEAT_SECONDS = 10.0
STALE_AFTER_SECONDS = 600.0
"""A rank silent this long (no heartbeat, no status from this launch) is taken for dead."""
_LAUNCH_SLACK_SECONDS = 30.0
"""Ranks of one launch start within this much of each other; older status files are stale."""


@dataclass(frozen=True)
class JobOutcome:
    """What one job produced: Δ ``[len(job.members), len(job.score)]`` and a record of how it
    went (fit report, truncation counts of the scored pairs, rank)."""

    delta: np.ndarray
    record: dict[str, Any] = field(default_factory=dict)


def job_file(partial: Path, index: int, suffix: str = ".npy") -> Path:
    """Where job ``index``'s result (``.npy``) or record (``.json``) is published."""
    return partial / f"job-{index:04d}{suffix}"


def _status_file(partial: Path, rank: int) -> Path:
    return partial / "ranks" / f"rank-{rank}.json"


def load_finished(jobs: Sequence[Any], partial: Path | None, delta: np.ndarray) -> list[Any]:
    """Fill ``delta`` (``[M, N]``) from the jobs already published in ``partial``; return the
    jobs still to run."""
    todo = []
    for job in jobs:
        file = None if partial is None else job_file(partial, job.index)
        # An unreadable or mis-shaped file (a damaged disk) is recomputed, never read as Δ.
        d = None if file is None else read_npy(file, shape=(len(job.members), len(job.score)))
        if d is not None:
            delta[np.ix_(job.members, job.score)] = d
        else:
            todo.append(job)
    return todo


def _publish(partial: Path, job: Any, outcome: JobOutcome) -> None:
    """Record first, Δ last: a job counts as finished once its ``.npy`` exists."""
    write_json(job_file(partial, job.index, ".json"), outcome.record)
    write_npy(job_file(partial, job.index), outcome.delta)


def run_jobs(jobs: Sequence[Any], todo: Sequence[Any], *, run: Callable[[Any], JobOutcome],
             delta: np.ndarray, partial: Path | None, ranks: Ranks,
             on_done: Callable[[], None] = lambda: None,
             stale_after: float = STALE_AFTER_SECONDS) -> None:
    """Run this rank's share of ``todo`` with ``run`` (publishing each result), then, when spread
    over several ranks, wait for every other job of ``jobs`` and read it into ``delta``.

    ``ranks`` is ``Ranks()`` for one process (every job here) or the launch's ranks for
    ``--parallel members``. ``on_done`` is called after each job this rank finishes.
    """
    if ranks.world > 1 and partial is None:
        raise ValueError("--parallel members over several processes exchanges results through "
                         "the output folder; run it through a command that has one (-o)")
    mine = [job for job in todo if job.index % ranks.world == ranks.rank]
    started = time.time()
    status = RankStatus(partial, ranks) if ranks.world > 1 and partial is not None else None
    with status or contextlib.nullcontext():
        for job in mine:
            outcome = run(job)
            outcome.record.setdefault("rank", ranks.rank)
            if partial is not None:
                _publish(partial, job, outcome)
            delta[np.ix_(job.members, job.score)] = outcome.delta
            on_done()
        if status is not None and partial is not None:
            status.set("done")
            others = [job for job in todo if job.index % ranks.world != ranks.rank]
            wait_for_jobs(others, partial, delta, ranks, started=started,
                          stale_after=stale_after)
            status.set("gathered")  # this rank reads nothing more from the partial folder


class RankStatus:
    """This rank's status file, ``running`` / ``done`` / ``failed`` (with the error), kept fresh
    by a heartbeat thread for as long as the ``with`` block runs."""

    def __init__(self, partial: Path, ranks: Ranks, beat: float = HEARTBEAT_SECONDS) -> None:
        self.file = _status_file(partial, ranks.rank)
        self.ranks = ranks
        self.beat = beat
        self.started = time.time()
        self.state = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name=f"rewardlab-heartbeat-{ranks.rank}")

    def set(self, state: str, error: str | None = None) -> None:
        self.state = state
        write_json(self.file, {"rank": self.ranks.rank, "world": self.ranks.world,
                               "state": state, "error": error, "started": self.started,
                               "host": socket.gethostname(), "pid": os.getpid()})

    def _beat(self) -> None:
        while not self._stop.wait(self.beat):
            # OSError: replaced at this instant by set(); the next beat finds it.
            with contextlib.suppress(OSError):
                os.utime(self.file)

    def __enter__(self) -> RankStatus:
        self.set("running")
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # A rank that finished its jobs stays done (its results are published).
        if exc is not None and self.state not in ("done", "gathered"):
            self.set("failed", f"{kind.__name__ if kind else 'error'}: {exc}")
        self._stop.set()
        self._thread.join()


def _read_status(partial: Path, rank: int) -> tuple[dict[str, Any] | None, float]:
    """Rank ``rank``'s status and the time of its last heartbeat; ``(None, 0.0)`` while the
    file is not there yet or is being replaced."""
    file = _status_file(partial, rank)
    try:
        return json.loads(file.read_text(encoding="utf-8")), file.stat().st_mtime
    except (OSError, ValueError):
        return None, 0.0


def _check_rank(partial: Path, rank: int, *, started: float, stale_after: float) -> None:
    """Raise when rank ``rank`` failed, went silent, or never started in this launch."""
    file = _status_file(partial, rank)
    now = time.time()
    status, beat = _read_status(partial, rank)
    ours = status is not None and status.get("started", 0) >= started - _LAUNCH_SLACK_SECONDS
    if not ours:
        if now - started > stale_after:
            raise RuntimeError(f"strength: rank {rank} never started (no status in {file} for "
                               f"{stale_after:.0f} s); rerun the same command to resume")
        return
    if status["state"] == "failed":
        raise RuntimeError(f"strength: rank {rank} failed ({status.get('error')}); rerun the "
                           f"same command to resume from the finished jobs")
    if status["state"] == "running" and now - beat > stale_after:
        raise RuntimeError(f"strength: rank {rank} stopped (no heartbeat for {now - beat:.0f} s,"
                           f" host {status.get('host')}, pid {status.get('pid')}); rerun the "
                           f"same command to resume from the finished jobs")


def wait_for_jobs(jobs: Sequence[Any], partial: Path, delta: np.ndarray, ranks: Ranks, *,
                  started: float, stale_after: float = STALE_AFTER_SECONDS,
                  poll: float = 0.5) -> None:
    """Wait until every job of ``jobs`` is published, reading each into ``delta``; raise as soon
    as a rank that owes one of them has failed or gone silent."""
    pending = list(jobs)
    while pending:
        pending = load_finished(pending, partial, delta)
        if not pending:
            return
        for rank in sorted({job.index % ranks.world for job in pending}):
            _check_rank(partial, rank, started=started, stale_after=stale_after)
        time.sleep(poll)
        poll = min(poll * 1.5, 5.0)


def sum_counts(records: Sequence[dict[str, int] | None]) -> dict[str, int] | None:
    """Key-wise sum of count dicts; ``None`` when any is missing (a backend that does not
    count)."""
    if not records or any(r is None for r in records):
        return None
    out: dict[str, int] = {}
    for record in records:
        for key, value in record.items():  # type: ignore[union-attr]
            out[key] = out.get(key, 0) + int(value)
    return out


def may_remove_partial(partial: Path, ranks: Ranks, *, stale_after: float = STALE_AFTER_SECONDS,
                       poll: float = 0.5) -> bool:
    """Whether this process may remove the partial folder once the strength table is written:
    a lone process may; under a launch only the main rank, and only after every other rank has
    gathered all jobs (a rank still reading must not find the files gone)."""
    if ranks.world == 1:
        return True
    if not ranks.is_main:
        return False
    for rank in range(1, ranks.world):
        while True:
            status = _read_status(partial, rank)[0]
            state = None if status is None else status.get("state")
            if state == "gathered":
                break
            if state == "failed" or state is None:  # nothing to wait for: leave the files
                return False
            _check_rank(partial, rank, started=0.0, stale_after=stale_after)
            time.sleep(poll)
    return True
