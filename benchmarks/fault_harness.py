"""Running rewardlab under faults, shared by ``bench_faults.py`` and the CI fault tests.

A *fault run* is ``rewardlab ARGS`` in a child process, possibly killed (by the
``REWARDLAB_FAULT`` hook of :mod:`rewardlab.faults`, or from outside at a random moment), then
rerun until it finishes; its output folder is then compared, file by file and byte by byte, with
that of an uninterrupted run of the same command in the same place.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMALL_RUN = ["--epochs", "2", "--proj-dim", "16", "--members", "3", "--seeds", "1",
             "--methods", "baseline,flip", "--seed", "0", "--quiet"]
"""Settings that make ``run`` on ~150 pairs take seconds per stage."""


def write_small_set(source: Path, target: Path, pairs: int = 150) -> Path:
    """The first ``pairs`` lines of a (gzipped) JSONL preference file, as plain JSONL."""
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rt", encoding="utf-8") as fh:
        lines = [line for _, line in zip(range(pairs), fh)]
    target.write_text("".join(lines), encoding="utf-8")
    return target


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a rewardlab child: this checkout's code first, one BLAS thread (a
    busy 2-core machine stalls on threaded linear algebra), no fault unless asked."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REWARDLAB_FAULT")}
    env.update(PYTHONPATH=str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.update(extra)
    return env


def rewardlab(args: list[str], *, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """``rewardlab ARGS`` in a child process; ``env`` adds variables (``REWARDLAB_FAULT=...``)."""
    return subprocess.run([sys.executable, "-m", "rewardlab.cli", *args], env=child_env(**env),
                          capture_output=True, text=True, timeout=timeout)


def killed_at_random(args: list[str], *, after_s: float, timeout: float = 600) -> int:
    """Start ``rewardlab ARGS`` and SIGKILL it ``after_s`` seconds later (if still running);
    returns its exit status (``-9`` when killed)."""
    proc = subprocess.Popen([sys.executable, "-m", "rewardlab.cli", *args], env=child_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        proc.wait(timeout=after_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait(timeout=timeout)


def snapshot(folder: Path) -> dict[str, str]:
    """``relative path -> sha256`` of every file under ``folder``, hidden ones included."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def differences(got: dict[str, str], want: dict[str, str]) -> list[str]:
    """What differs between two snapshots, one line per file."""
    lines = [f"missing: {k}" for k in sorted(set(want) - set(got))]
    lines += [f"extra: {k}" for k in sorted(set(got) - set(want))]
    lines += [f"differs: {k}" for k in sorted(set(got) & set(want)) if got[k] != want[k]]
    return lines


def reference(args: list[str], out: Path, keep: Path) -> dict[str, str]:
    """Run ``args`` (which write ``out``) uninterrupted, move the result to ``keep`` and return
    its snapshot: later runs use ``out`` again, so paths written into results are the same."""
    done = rewardlab(args)
    if done.returncode != 0:
        raise RuntimeError(f"reference run failed:\n{done.stderr}")
    shutil.rmtree(keep, ignore_errors=True)
    os.replace(out, keep)
    return snapshot(keep)


def half_written(out: Path, want: dict[str, str]) -> list[str]:
    """Files under a final name in ``out`` that are not whole.

    A file the reference also has must be byte-identical to it. Files the reference lacks are a
    run's intermediate results (finished strength jobs, removed once the table is written) and
    must read back whole. The stage ledger must be valid JSON (it lists fewer stages), and the
    lock file is skipped (it names the dead holder). Temporary names (``.NAME.XXXXXXXX.tmp``)
    are not final names.
    """
    bad = []
    for rel, digest in snapshot(out).items():
        name = Path(rel).name
        if (name.endswith(".tmp") and name.startswith(".")) or name == ".rewardlab.lock":
            continue
        if rel in want and name != "stages.json":
            whole = want[rel] == digest
        else:
            whole = _reads_whole(out / rel)
        if not whole:
            bad.append(rel)
    return bad


def _reads_whole(path: Path) -> bool:
    """Whether an intermediate file (``.npy`` or JSON) reads back completely."""
    import numpy as np

    try:
        if path.suffix == ".npy":
            np.load(path, allow_pickle=False)
        elif path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        else:
            return False
    except (OSError, ValueError, EOFError):
        return False
    return True


@dataclass
class Step:
    """One faulted process: its ``REWARDLAB_FAULT`` spec (or ``sigkill@S`` for an outside kill
    after S seconds), exit status, the error it printed, and the files it left half-written."""

    fault: str
    returncode: int
    error: str
    half_written: list[str]

    @property
    def fired(self) -> bool:
        return self.returncode != 0


@dataclass
class Outcome:
    """How a sequence of faults went: each faulted process, whether the final rerun finished,
    and the differences of its output from the reference (empty: byte-identical)."""

    steps: list[Step]
    rerun_ok: bool
    diffs: list[str]
    seconds: float
    detail: str = ""

    @property
    def survived(self) -> bool:
        return self.rerun_ok and not self.diffs and not any(s.half_written for s in self.steps)


def faulted(args: list[str], out: Path, want: dict[str, str], fault: str) -> Step:
    """Run ``args`` once under ``fault``: a ``REWARDLAB_FAULT`` spec, or ``sigkill@S``."""
    if fault.startswith("sigkill@"):
        code, error = killed_at_random(args, after_s=float(fault[8:])), ""
    else:
        done = rewardlab(args, REWARDLAB_FAULT=fault)
        code, error = done.returncode, done.stderr.strip()
    return Step(fault, code, error, half_written(out, want) if out.exists() else [])


def faults_then_rerun(args: list[str], out: Path, want: dict[str, str], *,
                      faults: list[str]) -> Outcome:
    """Start from an empty ``out``; run ``args`` once under each fault in turn, then rerun with
    no fault and compare ``out`` with ``want``."""
    t0 = time.perf_counter()
    shutil.rmtree(out, ignore_errors=True)
    steps = [faulted(args, out, want, fault) for fault in faults]
    final = rewardlab(args)
    return Outcome(steps, final.returncode == 0,
                   differences(snapshot(out), want) if final.returncode == 0 else [],
                   time.perf_counter() - t0, final.stderr.strip()[-500:])
