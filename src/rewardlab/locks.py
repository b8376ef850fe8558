"""One writer per output folder, and a clear error before any work when it cannot be written.

A command that writes a folder holds an exclusive ``fcntl.flock`` on ``FOLDER/.rewardlab.lock``
(:data:`rewardlab.layout.LOCK_FILE`) for as long as it runs, and writes its pid, command, host and
start time into that file. A second process that wants the folder fails at once with an error
naming the holder. The kernel drops the lock when its holder dies, however it dies (``kill -9``,
out of memory), so a lock is never stuck: the next command takes it over, says whose it was,
and removes the temporary files the dead writer left (:func:`rewardlab.files.sweep_temporaries`).
A holder that finishes empties the file, so a non-empty file found unlocked means its holder
died. The lock file itself is never deleted: deleting it would let two processes lock two
different files of the same name.

Where ``fcntl`` does not exist (Windows) or the file system refuses locks (some network file
systems), the command warns once and runs without the lock.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rewardlab.files import DiskFullError, is_disk_full, sweep_temporaries
from rewardlab.layout import LOCK_FILE, RunLayout

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["FolderBusyError", "NotWritableError", "check_writable", "hold_folder"]

log = logging.getLogger("rewardlab")

_held: dict[Path, int] = {}
"""Folders this process holds, and how many nested :func:`hold_folder` calls hold each."""


class FolderBusyError(RuntimeError):
    """Another live process holds the folder's lock; ``holder`` is what it wrote there."""

    def __init__(self, folder: Path, holder: dict[str, Any]) -> None:
        self.folder = folder
        self.holder = holder
        self.pid = holder.get("pid")
        super().__init__(
            f"{folder} is in use by another rewardlab process: {_describe(holder)}. Wait for it "
            f"to finish (or stop it), or write to another folder")


def _describe(holder: dict[str, Any]) -> str:
    """``pid 123 (rewardlab run, on host, since 12:00:00)`` from what a holder wrote."""
    if not holder.get("pid"):
        return "pid unknown (its lock file names none)"
    where = [str(holder[k]) for k in ("command", "host") if holder.get(k)]
    if holder.get("started"):
        where.append(f"since {holder['started']}")
    return f"pid {holder['pid']}" + (f" ({', '.join(where)})" if where else "")


def check_writable(folder: str | os.PathLike[str], *, create: bool = True,
                   also: Iterable[Path] = ()) -> Path:
    """Make sure files can be created in ``folder`` (made when ``create``) and in the existing
    folders ``also`` (those under it that a stage writes into); a clear error otherwise, before
    any work starts."""
    folder = Path(folder)
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".rewardlab-write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except FileExistsError:
        raise NotADirectoryError(f"{folder} exists and is not a folder; choose a folder") from None
    except OSError as exc:
        raise _not_writable(folder, exc) from None
    for sub in also:
        # access() answers EROFS for a read-only mount and honours permissions (not for root).
        if sub.is_dir() and not os.access(sub, os.W_OK | os.X_OK):
            raise _not_writable(sub, PermissionError(errno.EACCES, "not writable"))
    return folder


class NotWritableError(PermissionError):
    """An output folder cannot be written (read-only file system, permissions)."""

    def __str__(self) -> str:
        return (f"{self.filename}: cannot write here ({self.strerror}); nothing was started. "
                f"Make it writable or choose another output folder")


def _not_writable(folder: Path, exc: OSError) -> NotWritableError:
    reason = {errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
              errno.EPERM: "permission denied"}.get(exc.errno or 0, exc.strerror or str(exc))
    return NotWritableError(exc.errno or errno.EACCES, reason, str(folder))


@contextlib.contextmanager
def hold_folder(folder: str | os.PathLike[str], *, command: str) -> Iterator[Path]:
    """Check ``folder`` is writable, then hold its lock for the ``with`` block (see the module
    docstring). Re-entrant within one process. Raises :class:`FolderBusyError` when another live
    process holds it."""
    folder = check_writable(folder, also=RunLayout.of(folder).written_folders())
    key = folder.resolve()
    if key in _held:
        _held[key] += 1
        try:
            yield folder
        finally:
            _held[key] -= 1
        return
    fd = _lock(folder, command)
    _held[key] = 1
    try:
        yield folder
    finally:
        del _held[key]
        if fd is not None:
            _unlock(fd)


def _lock(folder: Path, command: str) -> int | None:
    """Take the lock of ``folder`` and write this process into it; the open descriptor, or
    ``None`` where locks are not available."""
    if fcntl is None:  # pragma: no cover - Windows
        log.warning("%s: no file locks on this platform; make sure no other run writes here",
                    folder)
        return None
    path = folder / LOCK_FILE
    try:
        fd, shared = os.open(path, os.O_RDWR | os.O_CREAT, 0o666), False
    except PermissionError:  # another user's lock file: flock works on a read-only descriptor
        fd, shared = os.open(path, os.O_RDONLY), True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_holder(fd)
        os.close(fd)
        raise FolderBusyError(folder, holder) from None
    except OSError as exc:  # ENOLCK, EOPNOTSUPP: a file system without locks
        os.close(fd)
        log.warning("%s: cannot lock (%s); make sure no other run writes here", folder,
                    exc.strerror)
        return None
    previous = _read_holder(fd)
    if previous:
        log.warning("%s: taking over the lock of %s, which is no longer running", folder,
                    _describe(previous))
    left = sweep_temporaries(folder)
    if left:
        log.warning("%s: removed %d temporary file(s) an interrupted run left", folder, len(left))
    if not shared:
        _write_holder(fd, {"pid": os.getpid(), "command": command,
                           "host": socket.gethostname(),
                           "started": time.strftime("%Y-%m-%d %H:%M:%S")}, path)
    return fd


def _read_holder(fd: int) -> dict[str, Any]:
    """What the lock file says about its holder (``{}`` when empty or unreadable)."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 4096).decode("utf-8", "replace").strip()
        holder = json.loads(text) if text else {}
    except (OSError, ValueError):
        return {"pid": None}
    return holder if isinstance(holder, dict) else {"pid": None}


def _write_holder(fd: int, holder: dict[str, Any], path: Path) -> None:
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode("utf-8"), 0)
    except OSError as exc:
        os.close(fd)  # closing drops the lock
        if is_disk_full(exc):
            raise DiskFullError(path) from exc
        raise


def _unlock(fd: int) -> None:
    """Empty the lock file (a clean finish), then let go of it."""
    try:
        os.ftruncate(fd, 0)
    except OSError:  # an empty file is a courtesy: the next holder copes with a stale one
        pass
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
