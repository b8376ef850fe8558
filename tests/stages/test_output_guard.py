"""One writer per output folder (a real ``fcntl`` lock, tried with real processes), and a clear
error for a folder that cannot be written, before any work starts."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rewardlab.cli import main
from rewardlab.layout import LOCK_FILE
from rewardlab.locks import FolderBusyError, hold_folder

FAST = ["--members", "2", "--epochs", "2", "--proj-dim", "8", "--quiet"]
SRC = Path(__file__).resolve().parents[2] / "src"

HOLDER = """
import sys, time
from rewardlab.locks import hold_folder
with hold_folder(sys.argv[1], command="rewardlab run"):
    print("held", flush=True)
    time.sleep(120)
"""


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "OMP_NUM_THREADS": "1", **extra}


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, subprocess.Popen]]:
    """An output folder whose lock another live process holds."""
    out = tmp_path_factory.mktemp("held") / "out"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], env=_env(),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield out, proc
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("command", ["run", "strength", "groups", "compare", "train"])
def test_a_second_writer_stops_at_once_naming_the_holder(
        command: str, held: tuple[Path, subprocess.Popen], toy_file: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out, holder = held
    t0 = time.monotonic()
    assert main([command, str(toy_file), "-o", str(out), *FAST]) == 1
    err = capsys.readouterr().err
    assert f"pid {holder.pid}" in err and "in use by another rewardlab process" in err
    assert "rewardlab run" in err  # what the holder is
    assert time.monotonic() - t0 < 30  # "at once": refused before loading anything
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # and wrote nothing


def test_the_cli_in_another_process_is_refused_too(held: tuple[Path, subprocess.Popen],
                                                   toy_file: Path) -> None:
    out, holder = held
    done = subprocess.run([sys.executable, "-m", "rewardlab.cli", "strength", str(toy_file),
                           "-o", str(out), *FAST], env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1
    assert f"pid {holder.pid}" in done.stderr and "Traceback" not in done.stderr


def _stopped(pid: int, timeout: float = 300) -> bool:
    """Wait until process ``pid`` is stopped (state T), or has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return False
        if state in ("T", "t"):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to see a "
                    "stopped process")
def test_a_live_run_holds_its_folder_and_a_dead_ones_lock_is_taken_over(
        tmp_path: Path, toy_file: Path, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    # A real `rewardlab strength`, frozen (SIGSTOP) by the fault hook just before it trains.
    live = subprocess.Popen([sys.executable, "-m", "rewardlab.cli", "strength", str(toy_file),
                             "-o", str(out), *FAST],
                            env=_env(REWARDLAB_FAULT="model:after=1:stop"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _stopped(live.pid), "the holder did not reach its first model"
        assert main(["strength", str(toy_file), "-o", str(out), *FAST]) == 1
        assert f"pid {live.pid} (rewardlab strength" in capsys.readouterr().err
    finally:
        live.send_signal(signal.SIGKILL)  # kill -9: its lock goes with it
        live.wait()
    leftover = out / "strength" / ".strength.parquet.abcd1234.tmp"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_text("half a file")
    with caplog.at_level(logging.WARNING, logger="rewardlab"):
        assert main(["strength", str(toy_file), "-o", str(out), *FAST]) == 0
    assert f"taking over the lock of pid {live.pid}" in caplog.text
    assert "removed 1 temporary file" in caplog.text and not leftover.exists()
    assert (out / LOCK_FILE).read_text() == ""  # a clean finish empties it


def test_the_lock_is_reentrant_within_a_process_and_released_after(tmp_path: Path) -> None:
    with hold_folder(tmp_path, command="outer"), hold_folder(tmp_path, command="inner"):
        pass
    proc = subprocess.run([sys.executable, "-c", HOLDER.replace("time.sleep(120)", ""),
                           str(tmp_path)], env=_env(), capture_output=True, text=True)
    assert proc.stdout.strip() == "held"  # free again for another process


def test_a_busy_error_says_what_it_knows(tmp_path: Path) -> None:
    err = FolderBusyError(tmp_path, {"pid": 42, "command": "rewardlab run", "host": "h",
                                     "started": "2024-01-01 10:00:00"})
    assert err.pid == 42
    assert "pid 42 (rewardlab run, h, since 2024-01-01 10:00:00)" in str(err)
    assert "pid unknown" in str(FolderBusyError(tmp_path, {}))


def test_another_users_read_only_lock_file_still_locks(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / LOCK_FILE).write_text("")
    real_open = os.open

    def open_as_another_user(path: object, flags: int, *args: object) -> int:
        if str(path).endswith(LOCK_FILE) and flags & os.O_RDWR:
            raise PermissionError(13, "Permission denied", str(path))  # not ours to write
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", open_as_another_user)
    with hold_folder(tmp_path, command="mine"):
        proc = subprocess.run([sys.executable, "-c", HOLDER, str(tmp_path)], env=_env(),
                              capture_output=True, text=True)
        assert proc.returncode != 0 and "in use by another rewardlab process" in proc.stderr


# -- read-only output ---------------------------------------------------------------------------

def _read_only(folder: Path, tmpfs: Callable[..., Path]) -> Path:
    """``folder`` made really read-only: a read-only tmpfs as root (permissions do not stop
    root), else permission bits."""
    if os.geteuid() == 0:
        point = tmpfs("64k", read_only=True)
        folder.symlink_to(point, target_is_directory=True)
    else:
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o555)
    return folder


@pytest.mark.parametrize("command", ["run", "strength", "export"])
def test_a_read_only_output_is_refused_before_any_work(
        command: str, tmp_path: Path, tmpfs: Callable[..., Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    folder = _read_only(tmp_path / "ro", tmpfs)
    missing_data = str(tmp_path / "no-such-data.jsonl")  # never read: the folder is refused first
    args = ([command, missing_data, "-o", str(folder)] if command != "export" else
            [command, str(tmp_path), "--method", "flip", "-o", str(folder / "pairs.jsonl")])
    assert main([*args, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"{folder}: cannot write here" in err and "nothing was started" in err
    assert "no-such-data" not in err


def test_a_read_only_stage_folder_inside_the_output_is_refused(
        tmp_path: Path, tmpfs: Callable[..., Path], toy_file: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    _read_only(out / "strength", tmpfs)
    assert main(["strength", str(toy_file), "-o", str(out), *FAST]) == 1
    assert f"{out / 'strength'}: cannot write here" in capsys.readouterr().err
