"""Faults tried and survived: the Reliability table of BENCHMARKS.md (issue: faults and hostile
input).

On a small real set (the first ``--pairs`` pairs of HH-RLHF helpful-base), ``rewardlab run`` is
faulted and then rerun; a fault is *survived* when every process either finished or stopped with
one clear line (no traceback), no file under a final name was ever half-written, and the rerun's
output folder is byte-identical (every file, hidden ones included) to an uninterrupted run's.

* kill -9 inside each stage, through the ``REWARDLAB_FAULT`` hook: points drawn at random among
  every atomic write and every model built (strength, groups, compare, final, report), for the
  in-sample and the cross-fitted strength schemes;
* kill -9 from outside at a random moment;
* disk full: injected at writes drawn in every stage, and real (a small tmpfs filled up
  by a ballast file, freed before the rerun) where a tmpfs can be mounted;
* a second writer into a folder a live run holds, and taking over a dead run's lock;
* a read-only output folder;
* damaged model folders (random truncations, bit flips and deletions of ``final/model``'s files),
  read by ``rewardlab evaluate``;
* NaN and ±inf in numeric extra columns, through strength, export and report.

Reproduce (minutes per trial on a busy 2-core machine)::

    PYTHONPATH=src .venv/bin/python benchmarks/bench_faults.py --per-stage 3 --random-kills 4
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from common import SHARED
from fault_harness import (
    SMALL_RUN,
    Step,
    child_env,
    differences,
    faulted,
    faults_then_rerun,
    reference,
    rewardlab,
    snapshot,
    write_small_set,
)

STAGES = ("strength", "groups", "compare", "final", "report")


@dataclass
class Row:
    """One line of the Reliability table."""

    kind: str
    tried: int = 0
    survived: int = 0
    lost: int = 0
    """Lost data (a half-written file, a rerun that differs or fails) or printed a traceback."""
    notes: list[str] = field(default_factory=list)

    def add(self, ok: bool, note: str = "") -> None:
        self.tried += 1
        self.survived += ok
        self.lost += not ok
        if not ok and note:
            self.notes.append(note)


@dataclass
class Setup:
    """The command under test, its output folder, and its uninterrupted run."""

    args: list[str]
    out: Path
    want: dict[str, str]
    seconds: float
    """Wall time of an uninterrupted run from an empty folder, feature cache warm."""
    points: dict[str, list[str]]
    """Stage -> the ``REWARDLAB_FAULT`` specs of every fault point met inside it."""


def stage_of(rel: str) -> str | None:
    """The stage a file of the run folder belongs to (``None``: the stage ledger, written as a
    stage finishes)."""
    if rel == "stages.json":
        return None
    top = rel.split("/", 1)[0]
    if top in ("strength", "groups", "compare", "final"):
        return top
    if top == "split":  # the held-out pairs, written as the run starts
        return "strength"
    return "final" if top == "run.json" else "report"


def points_by_stage(trace: Path, out: Path) -> dict[str, list[str]]:
    """Every fault point of a traced run, as a spec that fires there, grouped by stage.

    A write is named by its file (``write~strength/summary.json:after=0``), so feature-cache
    writes of a cold run shift nothing; a model build by its count. A model point belongs to
    the stage of the next file written; a ledger write to the stage it records.
    """
    rows = [line.split("\t", 1) for line in trace.read_text(encoding="utf-8").splitlines()]
    root = f"{out}/"
    rows = [(p, d[len(root):] if d.startswith(root) else None) for p, d in rows]
    rows = [(p, rel) for p, rel in rows if p != "write" or rel is not None]  # not the cache
    seen: dict[str, int] = {}
    specs, stages = [], []
    for point, rel in rows:
        key = f"write~{rel}" if point == "write" else point
        specs.append(f"{key}:after={seen.get(key, 0)}")
        seen[key] = seen.get(key, 0) + 1
        stages.append(stage_of(rel) if point == "write" else None)
    out_specs: dict[str, list[str]] = {s: [] for s in STAGES}
    for i, spec in enumerate(specs):
        later = [s for s in stages[i:] if s is not None]
        earlier = [s for s in stages[:i] if s is not None]
        if stages[i] is not None:
            stage = stages[i]
        elif spec.startswith("model"):
            stage = later[0] if later else "report"
        else:
            stage = earlier[-1] if earlier else "strength"
        out_specs[stage].append(spec)
    return out_specs


def setup(data: Path, work: Path, name: str, extra: list[str]) -> Setup:
    """An uninterrupted, traced run of ``rewardlab run`` (its output kept as the reference)."""
    out = work / name / "out"
    trace = work / name / "trace.tsv"
    shutil.rmtree(out.parent, ignore_errors=True)  # a fresh run: every point gets traced
    out.parent.mkdir(parents=True)
    args = ["run", str(data), "-o", str(out), *SMALL_RUN, *extra]
    done = rewardlab(args, REWARDLAB_FAULT_TRACE=str(trace))  # also fills the feature cache
    if done.returncode != 0:
        raise SystemExit(f"reference run failed:\n{done.stderr}")
    shutil.move(out, work / name / "reference")
    want = snapshot(work / name / "reference")
    t0 = time.perf_counter()  # again, as every trial runs: from an empty folder, cache warm
    rewardlab(args)
    seconds = time.perf_counter() - t0
    if snapshot(out) != want:
        raise SystemExit(f"two uninterrupted runs differ: {differences(snapshot(out), want)}")
    shutil.rmtree(out)
    return Setup(args, out, want, seconds, points_by_stage(trace, out))


def clean_error(step: Step, words: str) -> bool:
    """A process stopped with one line that says ``words`` and no traceback."""
    lines = [line for line in step.error.splitlines() if "error:" in line]
    return (step.returncode == 1 and "Traceback" not in step.error and len(lines) == 1
            and words in lines[0])


def kill_rows(s: Setup, rng: random.Random, per_stage: int, scheme: str,
              stages: tuple[str, ...]) -> Iterator[Row]:
    """kill -9 at ``per_stage`` points drawn in each stage, then rerun."""
    for stage in stages:
        row = Row(f"kill -9 in {stage} ({scheme})")
        for spec in rng.sample(s.points[stage], min(per_stage, len(s.points[stage]))):
            outcome = faults_then_rerun(s.args, s.out, s.want, faults=[spec])
            if outcome.steps[0].returncode == 0:
                row.notes.append(f"{spec}: did not fire")
                continue
            fired = outcome.steps[0].returncode == -signal.SIGKILL
            row.add(fired and outcome.survived, f"{spec}: {outcome}")
        print(f"  {row.kind}: {row.survived}/{row.tried}", flush=True)
        yield row


def random_kill_row(s: Setup, rng: random.Random, n: int) -> Row:
    """kill -9 from outside after a random time, then rerun."""
    row = Row("kill -9 from outside, random moment")
    for _ in range(n):
        after = 1 + rng.random() * 0.95 * (s.seconds - 1)
        outcome = faults_then_rerun(s.args, s.out, s.want, faults=[f"sigkill@{after:.2f}"])
        if outcome.steps[0].returncode != -signal.SIGKILL:
            row.notes.append(f"after {after:.1f} s: the run had already finished")
            continue
        row.add(outcome.survived, f"after {after:.1f} s: {outcome}")
    return row


def enospc_row(s: Setup, rng: random.Random, per_stage: int) -> Row:
    """Disk full injected at writes drawn in each stage: one clear line, then a rerun."""
    row = Row("disk full, injected at a write (each stage)")
    for stage in STAGES:
        writes = [p for p in s.points[stage] if p.startswith("write")]
        for spec in rng.sample(writes, min(per_stage, len(writes))):
            outcome = faults_then_rerun(s.args, s.out, s.want, faults=[f"{spec}:enospc"])
            ok = clean_error(outcome.steps[0], "no space left on device while writing")
            row.add(ok and outcome.survived, f"{spec}: {outcome}")
    return row


@contextlib.contextmanager
def tmpfs(size: str, *, read_only: bool = False) -> Iterator[Path | None]:
    """A freshly mounted tmpfs (``None`` where mounting is not permitted)."""
    point = Path(tempfile.mkdtemp(prefix="rewardlab-tmpfs-"))
    opts = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(point)],
                          capture_output=True)
    try:
        yield point if done.returncode == 0 else None
    finally:
        if done.returncode == 0:
            subprocess.run(["umount", "-l", str(point)], capture_output=True)
        point.rmdir()


def real_disk_full_row(s: Setup, free_kb: list[int]) -> Row:
    """A small tmpfs, nearly filled by a ballast file: the run stops with one clear line and
    leaves nothing half-written; with the ballast deleted, the rerun matches a run made there
    with room to spare."""
    row = Row("disk full, real (tmpfs filled up, then freed)")
    with tmpfs("16m") as disk:
        if disk is None:
            row.notes.append("skipped: cannot mount a tmpfs here")
            return row
        args = [a if a != str(s.out) else str(disk / "out") for a in s.args]
        want = reference(args, disk / "out", disk / "reference")
        for kb in free_kb:
            st = os.statvfs(disk)
            ballast = disk / "ballast"
            ballast.write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - kb * 1024))
            step = faulted(args, disk / "out", want, "")  # no injected fault: the disk fills
            ballast.unlink()
            if step.returncode == 0:
                row.notes.append(f"{kb} kB free was enough: not a trial")
                shutil.rmtree(disk / "out")
                continue
            ok = clean_error(step, "no space left on device while writing")
            final = rewardlab(args)
            same = final.returncode == 0 and snapshot(disk / "out") == want
            row.add(ok and same and not step.half_written, f"{kb} kB free: {step}")
            shutil.rmtree(disk / "out")
    return row


def _small_args(command: str, data: Path, out: Path) -> list[str]:
    return [command, str(data), "-o", str(out), "--epochs", "2", "--proj-dim", "16",
            "--members", "3", "--quiet"]


def _wait_stopped(pid: int, timeout: float = 600) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stat = Path(f"/proc/{pid}/stat")
        if not stat.exists():
            return False
        if stat.read_text().rsplit(")", 1)[1].split()[0] in ("T", "t"):
            return True
        time.sleep(0.1)
    return False


def lock_row(data: Path, work: Path) -> Row:
    """A live ``rewardlab strength`` (frozen by the hook) holds its folder: each second writer
    is refused naming its pid; once it is killed, the next run takes its lock over."""
    row = Row("second writer into a live run's folder; dead run's lock")
    out = work / "lock" / "out"
    shutil.rmtree(out.parent, ignore_errors=True)
    holder = subprocess.Popen([sys.executable, "-m", "rewardlab.cli",
                               *_small_args("strength", data, out)],
                              env=child_env(REWARDLAB_FAULT="model:after=1:stop"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not _wait_stopped(holder.pid):
            row.add(False, "the holder never reached its first model")
            return row
        for command in ("run", "strength", "groups", "compare", "train"):
            done = rewardlab(_small_args(command, data, out))
            step = Step(command, done.returncode, done.stderr, [])
            row.add(clean_error(step, f"pid {holder.pid}"), f"{command}: {done.stderr}")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    done = rewardlab(_small_args("strength", data, out))
    row.add(done.returncode == 0 and f"taking over the lock of pid {holder.pid}" in done.stderr,
            f"takeover: {done.stderr}")
    return row


def read_only_row(data: Path, reference_dir: Path) -> Row:
    """Every folder-writing command, and export, into a read-only folder: one clear line, before
    reading anything (the data path does not even exist)."""
    row = Row("read-only output folder")
    with tmpfs("64k", read_only=True) as ro:
        if ro is None:
            row.notes.append("skipped: cannot mount a read-only tmpfs here")
            return row
        missing = data.with_name("no-such-file.jsonl")
        for command in ("run", "strength", "groups", "compare", "train"):
            done = rewardlab(_small_args(command, missing, ro / "out"))
            step = Step(command, done.returncode, done.stderr, [])
            row.add(clean_error(step, "cannot write here (read-only file system)"), done.stderr)
        done = rewardlab(["export", str(reference_dir), "--method", "flip", "-o",
                          str(ro / "pairs.jsonl"), "--quiet"])
        row.add(clean_error(Step("export", done.returncode, done.stderr, []),
                            "cannot write here"), done.stderr)
    return row


def _cli(argv: list[str]) -> tuple[int, str]:
    """``rewardlab ARGV`` in this process: exit status and what it printed on stderr."""
    from rewardlab.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except Exception as exc:  # a traceback: the worst outcome
            return 99, f"Traceback: {type(exc).__name__}: {exc}"
    return code, err.getvalue()


def _damage(folder: Path, rng: random.Random) -> str:
    """Truncate, flip one bit of, or delete one file of a model folder; says what it did."""
    file = rng.choice(sorted(p for p in folder.rglob("*") if p.is_file()))
    data = bytearray(file.read_bytes())
    how = rng.choice(["truncate", "flip", "flip", "delete"])
    if how == "delete" or not data:
        file.unlink()
        return f"deleted {file.name}"
    if how == "truncate":
        cut = rng.randrange(len(data))
        file.write_bytes(bytes(data[:cut]))
        return f"truncated {file.name} to {cut} bytes"
    at, bit = rng.randrange(len(data)), rng.randrange(8)
    data[at] ^= 1 << bit
    file.write_bytes(bytes(data))
    return f"flipped bit {bit} of byte {at} of {file.name}"


def model_damage_row(model: Path, data: Path, work: Path, rng: random.Random, n: int) -> Row:
    """``rewardlab evaluate`` on a damaged copy of a model folder: one clear line, or (for a
    harmless change) exactly the intact model's metrics."""
    row = Row("damaged model folder (truncate / flip a bit / delete a file)")
    out = work / "damage"
    code, err = _cli(["evaluate", str(model), str(data), "-o", str(out / "intact"), "--quiet"])
    if code != 0:
        raise SystemExit(f"evaluate on the intact model failed: {err}")
    intact = json.loads((out / "intact" / "metrics.json").read_text())["valid"]
    for k in range(n):
        copy = out / f"model-{k}"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(model, copy)
        what = _damage(copy, rng)
        code, err = _cli(["evaluate", str(copy), str(data), "-o", str(out / f"m{k}"),
                          "--quiet"])
        lines = [line for line in err.splitlines() if line.strip()]
        clean = code == 1 and len(lines) == 1 and "Traceback" not in err
        same = code == 0 and json.loads(
            (out / f"m{k}" / "metrics.json").read_text())["valid"] == intact
        row.add(clean or same, f"{what}: exit {code}: {err.strip()[:300]}")
    return row


def nonfinite_row(data: Path, work: Path) -> Row:
    """NaN and ±inf in numeric extra columns (a score, annotator votes): strength, export (JSONL
    and Parquet) and report either carry them (strict JSON: null) or refuse them in one line."""
    row = Row("NaN / ±inf in numeric extra columns")
    values = [float("nan"), float("inf"), float("-inf"), 1.5, 2.0]
    rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()]
    for i, r in enumerate(rows):
        r.update(score=values[i % 5], votes_for_chosen=values[(i + 1) % 5],
                 votes_against=values[(i + 2) % 5])
    bad = work / "nonfinite.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = work / "nonfinite"
    code, err = _cli(_small_args("strength", bad, out))
    if code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1:
        row.add(True)  # refused by the loader, clearly
        return row
    steps = [code] + [_cli(["export", str(out), "--method", "flip", "-o",
                            str(out / f"pairs{sfx}"), "--quiet"])[0]
                      for sfx in (".jsonl", ".parquet")]
    steps.append(_cli(["report", str(out), "--quiet"])[0])
    strict = all(_strict_json(out / name) for name in
                 ("strength/strength.jsonl", "strength/summary.json", "pairs.jsonl"))
    row.add(steps == [0, 0, 0, 0] and strict, f"exits {steps}, strict JSON {strict}")
    return row


def _strict_json(path: Path) -> bool:
    """Whether ``path`` (JSON, or JSON lines) is strict JSON: no NaN or Infinity tokens."""
    def refuse(token: str) -> None:
        raise ValueError(token)

    text = path.read_text(encoding="utf-8")
    docs = text.splitlines() if path.suffix == ".jsonl" else [text]
    try:
        for doc in docs:
            json.loads(doc, parse_constant=refuse)
    except ValueError:
        return False
    return True


def table(rows: list[Row]) -> str:
    """The Reliability table (markdown)."""
    lines = ["| fault | tried | survived (identical output or one clear error) | lost data or "
             "traceback |", "|---|---:|---:|---:|"]
    lines += [f"| {r.kind} | {r.tried} | {r.survived} | {r.lost} |" for r in rows]
    total = Row("**all**", sum(r.tried for r in rows), sum(r.survived for r in rows),
                sum(r.lost for r in rows))
    lines.append(f"| {total.kind} | {total.tried} | {total.survived} | {total.lost} |")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path,
                    default=SHARED / "hh-rlhf" / "helpful-base.test.jsonl.gz")
    ap.add_argument("--pairs", type=int, default=150)
    ap.add_argument("--per-stage", type=int, default=3, help="kill points drawn per stage")
    ap.add_argument("--random-kills", type=int, default=4)
    ap.add_argument("--enospc-per-stage", type=int, default=1)
    ap.add_argument("--free-kb", default="100,400,900",
                    help="free space left on the tmpfs, one trial each")
    ap.add_argument("--model-damages", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    rng = random.Random(args.seed)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["REWARDLAB_CACHE"] = str(work / "cache")  # warmed by the first reference run
    data = write_small_set(args.data, work / "small.jsonl", args.pairs)
    t0 = time.perf_counter()
    insample = setup(data, work, "insample", [])
    crossfit = setup(data, work, "crossfit", ["--scheme", "crossfit", "--folds", "3"])
    sections: list[Callable[[], list[Row]]] = [
        lambda: list(kill_rows(insample, rng, args.per_stage, "in-sample", STAGES)),
        lambda: list(kill_rows(crossfit, rng, args.per_stage, "cross-fitted", ("strength",))),
        lambda: [random_kill_row(insample, rng, args.random_kills)],
        lambda: [enospc_row(insample, rng, args.enospc_per_stage)],
        lambda: [real_disk_full_row(insample, [int(k) for k in args.free_kb.split(",")])],
        lambda: [lock_row(data, work)],
        lambda: [read_only_row(data, work / "insample" / "reference")],
        lambda: [model_damage_row(work / "insample" / "reference" / "final" / "model", data,
                                  work, rng, args.model_damages)],
        lambda: [nonfinite_row(data, work)],
    ]
    rows: list[Row] = []
    for section in sections:
        rows += section()
        print(f"[{time.perf_counter() - t0:.0f} s] {rows[-1].kind}: "
              f"{rows[-1].survived}/{rows[-1].tried}", flush=True)
    print(table(rows))
    for row in rows:
        for note in row.notes:
            print(f"note ({row.kind}): {note}")
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=2) + "\n")


if __name__ == "__main__":
    main()
