"""Atomic writes of result files.

Every stage writes through these helpers, so a run killed mid-write never leaves a half-written
file that looks whole: data goes to a temporary file in the same folder, is flushed to disk, and
is then renamed over the target (``os.replace`` is atomic on POSIX and Windows). A write that
runs out of disk raises :class:`DiskFullError` naming the file, and leaves the target as it was.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import math
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.faults import fault_point

__all__ = [
    "DiskFullError",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "read_json",
    "read_npy",
    "sweep_temporaries",
    "write_folder_atomically",
    "write_json",
    "write_jsonl",
    "write_npy",
    "write_table",
]

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_TEMP_FILE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
"""Names :func:`atomic_path` and :func:`write_folder_atomically` give their temporaries
(``.NAME.XXXXXXXX.tmp``, from ``mkstemp``/``mkdtemp``)."""
_OLD_FOLDER = re.compile(r"^\.(.+)\.old-[0-9a-f]{8}$")
"""A folder :func:`write_folder_atomically` renamed aside before replacing it (group 1: its
name)."""


class DiskFullError(OSError):
    """The disk (or quota) holding ``filename`` ran out while rewardlab wrote it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(path))

    def __str__(self) -> str:
        return (f"no space left on device while writing {self.filename}; nothing was written "
                f"under that name. Free some space and rerun the same command: finished work is "
                f"kept")


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says the disk is full.

    Writers report it differently: ``OSError`` with errno ENOSPC (Python, matplotlib, pyarrow),
    a message only (safetensors' ``SafetensorError``), or neither (numpy's ``tofile``).
    """
    seen: BaseException | None = exc
    for _ in range(8):  # a short chain: __cause__ / __context__ cycles are possible
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in _DISK_FULL:
            return True
        text = str(seen)
        if "No space left on device" in text or "os error 28" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextlib.contextmanager
def _disk_full_names(target: Path) -> Iterator[None]:
    """Re-raise any write error that means "disk full" as a :class:`DiskFullError` for
    ``target`` (the outermost name wins: a folder, not a file inside its temporary copy)."""
    try:
        yield
    except Exception as exc:
        if is_disk_full(exc):
            raise DiskFullError(target) from exc
        raise


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` on success.

    Use it for writers that insist on a path (pyarrow, matplotlib, safetensors). On an exception
    the temporary file is removed and ``target`` is left as it was.
    """
    target = Path(target)
    with _disk_full_names(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        with _disk_full_names(target):
            yield tmp_path
            fault_point("write", target)
            with open(tmp_path, "rb+") as fh:
                os.fsync(fh.fileno())
        # mkstemp makes the file 0600 and the mode survives the rename: give it the mode a plain
        # open() would, so teammates and jobs running as other users can read results.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically and return the path."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``target`` atomically and return the path."""
    return atomic_write_bytes(target, text.encode("utf-8"))


def _to_jsonable(obj: Any) -> Any:
    """``json.dumps`` default hook: numpy scalars and arrays, paths and sets become plain JSON."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (Path, os.PathLike)):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if hasattr(obj, "tolist"):  # torch tensors, without importing torch here
        return obj.tolist()
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def write_json(target: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically. NaN and ±inf are written as ``null`` (strict
    JSON has neither)."""
    text = json.dumps(_nan_to_none(obj), indent=2, default=_jsonable_finite, allow_nan=False)
    return atomic_write_text(target, text + "\n")


def _jsonable_finite(obj: Any) -> Any:
    """:func:`_to_jsonable`, then non-finite floats to ``None`` (a float32 NaN arrives here)."""
    return _nan_to_none(_to_jsonable(obj))


def _nan_to_none(obj: Any) -> Any:
    """``obj`` with every NaN and ±inf float replaced by ``None``, recursively."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file written by :func:`write_json`."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def write_jsonl(target: str | os.PathLike[str], rows: list[dict[str, Any]]) -> Path:
    """Write one JSON object per line, atomically (NaN and ±inf as ``null``, as
    :func:`write_json`)."""
    lines = [json.dumps(_nan_to_none(r), default=_jsonable_finite, ensure_ascii=False,
                        allow_nan=False) for r in rows]
    return atomic_write_text(target, "\n".join(lines) + ("\n" if lines else ""))


def write_table(target: str | os.PathLike[str], table: Any) -> Path:
    """Write a pyarrow ``Table`` to Parquet atomically (deterministic bytes for the same table)."""
    import pyarrow.parquet as pq

    with atomic_path(target) as tmp:
        pq.write_table(table, str(tmp), compression="zstd")
    return Path(target)


def write_npy(target: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Write ``array`` as a ``.npy`` file atomically (no pickled objects).

    Serialized in memory first: ``np.save`` straight to a file reports a full disk only as
    "N requested and M written", which could not be told from other errors.
    """
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return atomic_write_bytes(target, buffer.getvalue())


def read_npy(path: str | os.PathLike[str], *, shape: tuple[int, ...]) -> np.ndarray | None:
    """A ``.npy`` file written by :func:`write_npy`, or ``None`` (with a warning) when it is
    missing, unreadable or not of ``shape``; never unpickles."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        logging.getLogger("rewardlab").warning("%s: unreadable (%s); recomputing it", path, exc)
        return None
    if array.shape != shape:
        logging.getLogger("rewardlab").warning("%s: holds shape %s, expected %s; recomputing it",
                                               path, array.shape, shape)
        return None
    return array


def _sync_folder(folder: Path) -> None:
    """fsync every file under ``folder`` so a rename that publishes it never exposes holes."""
    for file in folder.rglob("*"):
        if file.is_file():
            with open(file, "rb+") as fh:
                os.fsync(fh.fileno())


def write_folder_atomically(target: str | os.PathLike[str], write: Callable[[Path], None], *,
                            marker: str, kind: str) -> Path:
    """Have ``write`` fill a temporary folder beside ``target``, then rename it to ``target``.

    A crash mid-write leaves ``target`` as it was (old contents or nothing), never half a
    folder. Only an empty folder or an earlier one of the same kind (holding ``marker``) is
    replaced: replacing means deleting, which must never happen to a user's other files (``kind``
    names what such a folder is, for the error). POSIX
    has no atomic replace of a non-empty folder, so the old one is renamed aside first and
    briefly exists under a hidden name.
    """
    target = Path(target)
    if target.exists() and any(target.iterdir()) and not (target / marker).is_file():
        raise FileExistsError(f"{target} exists and is not a {kind} (no {marker}); choose a new "
                              f"or empty folder")
    with _disk_full_names(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        with _disk_full_names(target):
            write(tmp)
            fault_point("write", target)
            _sync_folder(tmp)
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700; results are meant to be shared
        if target.exists():
            old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def sweep_temporaries(folder: str | os.PathLike[str], *, depth: int = 4) -> list[Path]:
    """Clean up after a killed writer under ``folder``: remove the temporary files and folders
    of :func:`atomic_path` and :func:`write_folder_atomically`; a folder it had renamed aside
    goes back under its name when nothing replaced it (the kill fell between the two renames),
    and is removed when something did.

    Only call it while holding the folder's lock (:mod:`rewardlab.locks`): a live writer's
    temporaries look the same. Nothing else is touched; returns what was removed or restored.
    """
    touched: list[Path] = []
    folder = Path(folder)
    if depth < 0 or not folder.is_dir():
        return touched
    for entry in sorted(folder.iterdir()):
        old = _OLD_FOLDER.match(entry.name) if entry.is_dir() else None
        if old and not (entry.parent / old.group(1)).exists():
            os.replace(entry, entry.parent / old.group(1))
        elif _TEMP_FILE.match(entry.name) or old:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        elif entry.is_dir() and not entry.is_symlink():
            touched += sweep_temporaries(entry, depth=depth - 1)
            continue
        else:
            continue
        touched.append(entry)
    return touched
