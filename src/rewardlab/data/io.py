"""Finding the inputs a user named, and reading their raw records.

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

import codecs
import csv
import glob
import gzip
import io
import json
import os
import re
import sys
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardlab.data.errors import (
    EMPTY_INPUT,
    MALFORMED_CSV,
    MALFORMED_JSON,
    MISSING_FIELD,
    NOT_UTF8,
    DataError,
)

__all__ = ["FILE_KINDS", "Input", "file_kind", "resolve_inputs"]

FILE_KINDS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv",
              ".parquet": "parquet"}
RawRecords = Iterator[tuple[str, Any]]

# "owner/name" or "name": what a Hub dataset id looks like (and a typo'd local path often not).
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


@dataclass(frozen=True)
class Input:
    """One input unit: a file, or one split of a saved or Hub dataset."""

    name: str
    """How messages and ``LoadReport.by_file`` name it: the path as given (``path[split]``)."""
    default_source: str
    """The ``source`` of its pairs when the data has no ``source`` column."""
    read: Callable[[], RawRecords]


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
    readers = {"jsonl": _jsonl_records, "json": _json_records, "csv": _csv_records,
               "parquet": _parquet_records}
    reader = readers[kind]
    return Input(name, source_name(path), lambda: reader(_read_bytes(path, name), name))


def _folder_inputs(name: str, path: Path) -> list[Input]:
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        import datasets

        try:
            loaded = datasets.load_from_disk(str(path))
        except Exception as exc:  # any library failure becomes one readable line
            raise DataError(f"could not read the saved dataset: {_short(exc)}", file=name) from None
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
                        f"failed: {_short(exc)}", file=name, reason=EMPTY_INPUT) from None
    return _dataset_inputs(name, source_name(name), loaded)


def _dataset_inputs(name: str, default_source: str, loaded: Any) -> list[Input]:
    """Inputs of a ``Dataset`` (one) or ``DatasetDict`` (one per split, source = split name)."""
    if hasattr(loaded, "keys"):
        return [Input(f"{name}[{split}]", split, _dataset_reader(loaded[split]))
                for split in loaded]
    return [Input(name, default_source, _dataset_reader(loaded))]


def _dataset_reader(ds: Any) -> Callable[[], RawRecords]:
    def read() -> RawRecords:
        index = 0
        for batch in ds.iter(batch_size=1000):
            names = list(batch)
            for values in zip(*(batch[n] for n in names), strict=True):
                yield f"row index {index}", dict(zip(names, values, strict=True))
                index += 1
    return read


def _short(exc: BaseException) -> str:
    """First line of an exception's message, capped: enough to act on, no traceback."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _read_bytes(path: Path, name: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror or exc}", file=name) from None
    if path.name.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"not a valid gzip file: {exc}", file=name) from None
    if not data.strip():
        raise DataError("empty file", file=name, reason=EMPTY_INPUT)
    return data


def _decode(data: bytes) -> tuple[str, bool]:
    """Text of a whole file, and whether it held bytes that are not UTF-8.

    Bad bytes are kept as lone surrogates (``surrogateescape``) so the rest can still be
    parsed; records containing them are then reported one by one (:func:`_bad_text_field`).
    """
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="surrogateescape"), True


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _bad_text_field(record: Any) -> str | None:
    """The top-level field of ``record`` whose key or text holds non-UTF-8 bytes, if any."""
    if not isinstance(record, dict):
        return None  # the loader rejects non-objects anyway
    for key, value in record.items():
        if _has_surrogate(str(key)):
            return str(key)
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                               default=str)
        if _has_surrogate(text):
            return str(key)
    return None


def _not_utf8(where: str, field: str | None, detail: str = "") -> DataError:
    return DataError(f"not valid UTF-8 text{detail}", where=where, field=field, reason=NOT_UTF8)


def _jsonl_records(data: bytes, name: str) -> RawRecords:
    data = data.removeprefix(codecs.BOM_UTF8)
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue  # blank lines separate nothing; they are not records
        where = f"line {lineno}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            # Parse what is there to name the field that holds the bad bytes.
            detail = f" (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
            try:
                field = _bad_text_field(json.loads(raw.decode("utf-8", "surrogateescape")))
            except json.JSONDecodeError:
                field = None
            yield where, _not_utf8(where, field, detail)
            continue
        try:
            yield where, json.loads(text)
        except json.JSONDecodeError as exc:
            yield where, DataError(f"malformed JSON: {exc.msg} (column {exc.colno})",
                                   where=where, reason=MALFORMED_JSON)


def _json_records(data: bytes, name: str) -> RawRecords:
    text, lossy = _decode(data)
    if not text.lstrip().startswith("["):
        try:
            # One (possibly pretty-printed) object: a single record.
            record = json.loads(text)
        except json.JSONDecodeError:
            # Many ".json" files are JSON lines in disguise: read them as such.
            yield from _jsonl_records(data, name)
            return
        field = _bad_text_field(record) if lossy else None
        yield "record index 0", (_not_utf8("record index 0", field) if field else record)
        return
    try:
        records = json.loads(text)
    except json.JSONDecodeError as exc:
        # A broken array cannot be read in part, so this stops even with on_bad="skip".
        raise DataError(f"malformed JSON: {exc.msg} (column {exc.colno}); a JSON array cannot "
                        "be read in part, so this file cannot be skipped past",
                        file=name, where=f"line {exc.lineno}", reason=MALFORMED_JSON) from None
    for index, record in enumerate(records):
        where = f"record index {index}"
        field = _bad_text_field(record) if lossy else None
        yield where, (_not_utf8(where, field) if field is not None else record)


def _csv_records(data: bytes, name: str) -> RawRecords:
    text, lossy = _decode(data)
    # Preference texts easily pass csv's default 128 KiB field limit.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
        row_no, start = 0, reader.line_num + 1
        for row in reader:
            # A quoted cell may span lines: remember where this row began.
            first_line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue  # blank line: not a record
            row_no += 1
            where = f"row {row_no} (line {first_line})"
            yield where, _csv_record(header, row, where, lossy)
    except StopIteration:
        return  # no header: the loader reports the file as empty
    except csv.Error as exc:
        raise DataError(f"malformed CSV: {exc}", file=name, where=f"line {reader.line_num}",
                        reason=MALFORMED_CSV) from None


def _csv_record(header: list[str], row: list[str], where: str, lossy: bool) -> Any:
    if len(row) < len(header):
        return DataError(f"missing (the row has {len(row)} cells, the header {len(header)})",
                         where=where, field=header[len(row)], reason=MISSING_FIELD)
    if len(row) > len(header):
        return DataError(f"the row has {len(row)} cells but the header only {len(header)}",
                         where=where, reason=MALFORMED_CSV)
    record = dict(zip(header, row, strict=True))
    field = _bad_text_field(record) if lossy else None
    return _not_utf8(where, field) if field is not None else record


def _parquet_records(data: bytes, name: str) -> RawRecords:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"not a readable Parquet file: {_short(exc)}", file=name) from None
    for index, record in enumerate(table.to_pylist()):
        yield f"row index {index}", record
