"""Atomic writes of result files.

Every stage writes through these helpers, so a run killed mid-write never leaves a half-written
file that looks whole: data goes to a temporary file in the same folder, is flushed to disk, and
is then renamed over the target (``os.replace`` is atomic on POSIX and Windows).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "read_json",
    "write_folder_atomically",
    "write_json",
    "write_jsonl",
    "write_table",
]


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` on success.

    Use it for writers that insist on a path (pyarrow, matplotlib, safetensors). On an exception
    the temporary file is removed and ``target`` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
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
    """Write ``obj`` as indented JSON, atomically. NaN is written as ``null`` (strict JSON)."""
    text = json.dumps(_nan_to_none(obj), indent=2, default=_to_jsonable, allow_nan=False)
    return atomic_write_text(target, text + "\n")


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and obj != obj:
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
    """Write one JSON object per line, atomically."""
    lines = [json.dumps(_nan_to_none(r), default=_to_jsonable, ensure_ascii=False) for r in rows]
    return atomic_write_text(target, "\n".join(lines) + ("\n" if lines else ""))


def write_table(target: str | os.PathLike[str], table: Any) -> Path:
    """Write a pyarrow ``Table`` to Parquet atomically (deterministic bytes for the same table)."""
    import pyarrow.parquet as pq

    with atomic_path(target) as tmp:
        pq.write_table(table, str(tmp), compression="zstd")
    return Path(target)


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
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        write(tmp)
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
