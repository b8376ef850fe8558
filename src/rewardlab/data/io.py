"""Finding the inputs a user named; the file readers themselves are in :mod:`.readers`.

An input is a ``.jsonl`` / ``.json`` / ``.csv`` / ``.parquet`` file (each optionally ``.gz``), a
folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` (one input per split),
a folder of such files, a glob pattern, or -- only when no local path of that name exists -- a
Hugging Face Hub dataset id.

Readers yield ``(where, record)`` pairs, where ``record`` is the parsed object or a
:class:`DataError` for a record that could not be parsed (the loader decides whether to skip it).
Problems with a whole input (missing, empty, unreadable) are raised, never yielded, because
``on_bad="skip"`` must not hide them. Places are named as follows: ``line N`` (JSON lines,
1-based), ``record index I`` (JSON arrays, 0-based), ``row N (line L)`` (CSV: N-th data row,
1-based, starting on file line L), ``row index I`` (Parquet and saved datasets, 0-based).
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardlab.data.errors import EMPTY_INPUT, DataError
from rewardlab.data.readers import FILE_READERS, RawRecords, short_error

__all__ = ["FILE_KINDS", "Input", "file_kind", "resolve_inputs"]

FILE_KINDS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv",
              ".parquet": "parquet"}

# "owner/name" or "name": what a Hub dataset id looks like (and a typo'd local path often not).
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


@dataclass(frozen=True)
class Input:
    """One input unit: a file, or one split of a saved or Hub dataset."""

    name: str
    """How messages and ``LoadReport.by_file`` name it: the path as given (``path[split]``)."""
    default_source: str
    """The ``source`` of its pairs when the data has no ``source`` column."""
    read: Callable[[int], RawRecords]
    """Yield the records; the argument is ``max_record_bytes`` (ignored by dataset inputs)."""


def file_kind(path: str | os.PathLike[str]) -> str | None:
    """``"jsonl"``, ``"json"``, ``"csv"``, ``"parquet"`` from the file name, or ``None``."""
    name = os.fspath(path).lower()
    name = name.removesuffix(".gz")
    return next((kind for suffix, kind in FILE_KINDS.items() if name.endswith(suffix)), None)


def source_name(path: str | os.PathLike[str]) -> str:
    """The file name before its first dot: ``harmless-base.test.jsonl.gz`` -> ``harmless-base``."""
    name = Path(path).name
    return name.split(".", 1)[0] or name


def resolve_inputs(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Input]:
    """Every input unit named by ``paths``, in the order given."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise DataError("no input paths given", reason=EMPTY_INPUT)
    return [unit for item in items for unit in _resolve_one(os.fspath(item))]


def _resolve_one(text: str) -> list[Input]:
    path = Path(text).expanduser()
    if path.is_file():
        return [_file_input(text, path)]
    if path.is_dir():
        return _folder_inputs(text, path)
    if any(char in text for char in "*?["):  # a pattern the shell did not expand
        matches = sorted(glob.glob(os.path.expanduser(text)))
        if not matches:
            raise DataError("no files match this pattern", file=text, reason=EMPTY_INPUT)
        return [unit for match in matches for unit in _resolve_one(match)]
    if file_kind(text) is None and not text.startswith((".", "/", "~")) and _HUB_ID.fullmatch(text):
        return _hub_inputs(text)
    raise DataError("no such file or folder", file=text, reason=EMPTY_INPUT)


def _file_input(name: str, path: Path) -> Input:
    kind = file_kind(path)
    if kind is None:
        raise DataError("unsupported file type; use .jsonl, .json, .csv or .parquet "
                        "(optionally .gz)", file=name)
    reader = FILE_READERS[kind]
    return Input(name, source_name(path), lambda limit: reader(path, name, limit))


def _folder_inputs(name: str, path: Path) -> list[Input]:
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        import datasets

        try:
            loaded = datasets.load_from_disk(str(path))
        except Exception as exc:  # any library failure becomes one readable line
            raise DataError(f"could not read the saved dataset: {short_error(exc)}",
                            file=name) from None
        return _dataset_inputs(name, source_name(path), loaded)
    files = sorted(p for p in path.iterdir() if p.is_file() and file_kind(p) is not None)
    if not files:
        raise DataError("folder holds no data (neither a datasets save_to_disk folder nor "
                        ".jsonl/.json/.csv/.parquet files)", file=name, reason=EMPTY_INPUT)
    return [_file_input(os.path.join(name, p.name), p) for p in files]


def _hub_inputs(name: str) -> list[Input]:
    import datasets

    try:
        loaded = datasets.load_dataset(name)
    except Exception as exc:  # offline, not found, gated...: one line, not a traceback
        raise DataError("not a local file or folder, and loading it from the Hugging Face Hub "
                        f"failed: {short_error(exc)}", file=name, reason=EMPTY_INPUT) from None
    return _dataset_inputs(name, source_name(name), loaded)


def _dataset_inputs(name: str, default_source: str, loaded: Any) -> list[Input]:
    """Inputs of a ``Dataset`` (one) or ``DatasetDict`` (one per split, source = split name)."""
    if hasattr(loaded, "keys"):
        return [Input(f"{name}[{split}]", split, _dataset_reader(loaded[split]))
                for split in loaded]
    return [Input(name, default_source, _dataset_reader(loaded))]


def _dataset_reader(ds: Any) -> Callable[[int], RawRecords]:
    def read(limit: int) -> RawRecords:  # Arrow data: its size was bounded when it was written
        index = 0
        for batch in ds.iter(batch_size=1000):
            names = list(batch)
            for values in zip(*(batch[n] for n in names), strict=True):
                yield f"row index {index}", dict(zip(names, values, strict=True))
                index += 1
    return read


