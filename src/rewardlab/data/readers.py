"""Readers of the four file kinds: raw records and where they are, in bounded memory.

Each reader is called as ``reader(path, name, max_record_bytes)`` and yields ``(where, record)``
pairs, ``record`` being the parsed object or a :class:`DataError` for a record that could not be
parsed (the loader skips it or stops). Problems with the whole file are raised. Limits:

* JSON lines (``.jsonl``): a line over ``max_record_bytes`` bytes is a malformed record (reason
  ``record_too_large``), read past without being held.
* JSON (``.json``): an array is read element by element, and one element over the limit stops
  the file (an array cannot be resynchronised after a bad element). A file that is one object is
  one record under the same limit; other ``.json`` files are read as JSON lines.
* CSV: one cell or one physical line over the limit (counted in characters) stops the file.
* Parquet: read in row batches of 1,024 rows (``.parquet.gz`` is decompressed to a temporary
  file first, since Parquet needs random access); the limit does not apply.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from rewardlab.data.errors import (
    EMPTY_INPUT,
    MALFORMED_CSV,
    MALFORMED_JSON,
    MISSING_FIELD,
    NOT_UTF8,
    RECORD_TOO_LARGE,
    DataError,
)
from rewardlab.data.streams import (
    CHUNK,
    ESCAPED_SURROGATE_BYTES,
    JsonStream,
    RecordTooLarge,
    has_surrogate,
    open_binary,
    open_utf8,
    read_lines,
)

__all__ = ["FILE_READERS", "RawRecords", "short_error"]

RawRecords = Iterator[tuple[str, Any]]
Reader = Callable[[Path, str, int], RawRecords]
_PARQUET_BATCH = 1024


def short_error(exc: BaseException) -> str:
    """First line of an exception's message, capped: enough to act on, no traceback."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _guarded(read: Reader) -> Reader:
    """``read``, with failures to read the file itself (I/O, gzip) raised as DataErrors."""
    def guarded(path: Path, name: str, limit: int) -> RawRecords:
        try:
            yield from read(path, name, limit)
        except (EOFError, zlib.error) as exc:  # a truncated or corrupt .gz
            raise DataError(f"not a valid gzip file: {exc}", file=name) from None
        except OSError as exc:
            # gzip.BadGzipFile is an OSError; a failing disk too.
            what = "not a valid gzip file" if name.lower().endswith(".gz") else "cannot read"
            raise DataError(f"{what}: {exc.strerror or exc}", file=name) from None
    return guarded


def _too_large(where: str, limit: int) -> DataError:
    return DataError(f"longer than the record limit of {limit:,} bytes (max_record_bytes)",
                     where=where, reason=RECORD_TOO_LARGE)


def _not_utf8(where: str, field: str | None, detail: str = "") -> DataError:
    return DataError(f"not valid UTF-8 text{detail}; if the file is Latin-1 or another legacy "
                     "encoding, re-encode it as UTF-8 (e.g. iconv -f LATIN1 -t UTF-8)",
                     where=where, field=field, reason=NOT_UTF8)


def _holds_surrogate(value: Any) -> bool:
    """Whether a parsed value holds lone surrogates anywhere (no recursion: depth is free)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if has_surrogate(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _bad_text_field(record: Any) -> str | None:
    """The top-level field of ``record`` whose key or value holds non-UTF-8 text, if any."""
    if not isinstance(record, dict):
        return "" if _holds_surrogate(record) else None
    for key, value in record.items():
        if has_surrogate(key) or _holds_surrogate(value):
            return key
    return None


def _checked(record: Any, where: str, lossy: bool) -> Any:
    """``record``, or a ``not_utf8`` error when ``lossy`` and it holds non-UTF-8 text."""
    field = _bad_text_field(record) if lossy else None
    if field is None:
        return record
    # A bad key cannot be named by itself: name it with its bad bytes escaped.
    name = field.encode("utf-8", "backslashreplace").decode("utf-8") or None
    return _not_utf8(where, name)


def _read_jsonl(path: Path, name: str, limit: int) -> RawRecords:
    """Records of a JSON-lines file, one per non-blank line."""
    blank = True
    with open_utf8(path, name) as fh:
        for lineno, raw in enumerate(read_lines(fh, limit), 1):
            where = f"line {lineno}"
            if raw is None:
                blank = False
                yield where, _too_large(where, limit)
            elif raw.strip():  # blank lines separate nothing; they are not records
                blank = False
                yield where, _jsonl_record(raw, where)
    if blank:
        raise DataError("empty file", file=name, reason=EMPTY_INPUT)


def _jsonl_record(raw: bytes, where: str) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Parse what is there to name the field that holds the bad bytes.
        detail = f" (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
        try:
            field = _bad_text_field(json.loads(raw.decode("utf-8", "surrogateescape")))
        except (json.JSONDecodeError, RecursionError):
            field = None
        return _not_utf8(where, field or None, detail)
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        # A carriage return that does not end the line: old Mac line ends, most likely.
        hint = (" (the line holds a carriage return; JSON lines must end with \\n or \\r\\n)"
                if "\r" in text.rstrip("\r\n") else "")
        return DataError(f"malformed JSON: {exc.msg} (column {exc.colno}){hint}",
                         where=where, reason=MALFORMED_JSON)
    except RecursionError:
        return DataError("malformed JSON: nested too deeply", where=where, reason=MALFORMED_JSON)
    return _checked(record, where, lossy=bool(ESCAPED_SURROGATE_BYTES.search(raw)))


def _read_json(path: Path, name: str, limit: int) -> RawRecords:
    """Records of a JSON file: an array's elements, one object, or else JSON lines."""
    with open_utf8(path, name) as fh:
        stream = JsonStream(fh, limit)
        first = stream.peek()
        if not first:
            raise DataError("empty file", file=name, reason=EMPTY_INPUT)
        if first == "[":
            yield from _json_array(stream, name, limit)
            return
        try:
            record = stream.value()
            single = not stream.peek()
        except (json.JSONDecodeError, RecursionError):
            single = False
        except RecordTooLarge:
            raise _array_too_large(name, "record index 0", limit) from None
    if not single:
        # Many ".json" files are JSON lines in disguise: read them as such.
        yield from _read_jsonl(path, name, limit)
        return
    yield "record index 0", _checked(record, "record index 0", stream.lossy)


def _json_array(stream: JsonStream, name: str, limit: int) -> RawRecords:
    stream.pos += 1  # the "["
    index = 0
    if stream.peek() == "]":
        stream.pos += 1
    else:
        while True:
            where = f"record index {index}"
            stream.peek()
            try:
                record = stream.value()
            except RecordTooLarge:
                raise _array_too_large(name, where, limit) from None
            except (json.JSONDecodeError, RecursionError) as exc:
                raise _array_error(stream, name, exc) from None
            yield where, _checked(record, where, stream.lossy)
            index += 1
            separator = stream.peek()
            if separator not in (",", "]"):
                raise _array_error(stream, name, "expected ',' or ']' after a record")
            stream.pos += 1
            if separator == "]":
                break
    if stream.peek():
        raise _array_error(stream, name, "extra data after the array")


def _array_error(stream: JsonStream, name: str, exc: BaseException | str) -> DataError:
    """A broken array: it cannot be read in part, so this stops even with on_bad="skip"."""
    if isinstance(exc, json.JSONDecodeError):
        line, column = stream.location(exc.pos)
        problem = exc.msg
    else:
        line, column = stream.location(stream.pos)
        problem = exc if isinstance(exc, str) else "nested too deeply"
    return DataError(f"malformed JSON: {problem} (column {column}); a JSON array cannot be read "
                     "in part, so this file cannot be skipped past", file=name,
                     where=f"line {line}", reason=MALFORMED_JSON)


def _array_too_large(name: str, where: str, limit: int) -> DataError:
    return DataError(f"longer than the record limit of {limit:,} bytes (max_record_bytes); "
                     "a JSON file cannot be read past it", file=name, where=where,
                     reason=RECORD_TOO_LARGE)


def _read_csv(path: Path, name: str, limit: int) -> RawRecords:
    """Records of a CSV file with a header row; every cell is text."""
    # Preference texts easily pass csv's default 128 KiB cell limit; the record limit holds.
    old_limit = csv.field_size_limit(min(limit, 2**31 - 1))
    try:
        with open_utf8(path, name) as fh, io.TextIOWrapper(
                fh, encoding="utf-8", errors="surrogateescape", newline="") as text:
            yield from _csv_rows(text, name, limit)
    finally:
        csv.field_size_limit(old_limit)


def _csv_rows(text: io.TextIOWrapper, name: str, limit: int) -> RawRecords:
    reader = csv.reader(_bounded_lines(text, name, limit))
    try:
        header = next((row for row in reader if any(cell.strip() for cell in row)), None)
        if header is None:
            raise DataError("empty file", file=name, reason=EMPTY_INPUT)
        _check_header(header, name, reader.line_num)
        row_no, start = 0, reader.line_num + 1
        for row in reader:
            # A quoted cell may span lines: remember where this row began.
            first_line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue  # blank line: not a record
            row_no += 1
            where = f"row {row_no} (line {first_line})"
            yield where, _csv_record(header, row, where)
    except csv.Error as exc:
        too_large = "field larger than field limit" in str(exc)
        problem = (f"a cell is longer than the record limit of {limit:,} characters "
                   "(max_record_bytes)" if too_large else f"malformed CSV: {exc}")
        raise DataError(problem, file=name, where=f"line {reader.line_num}",
                        reason=RECORD_TOO_LARGE if too_large else MALFORMED_CSV) from None


def _bounded_lines(text: io.TextIOWrapper, name: str, limit: int) -> Iterator[str]:
    """Physical lines of ``text`` for the csv reader, refusing one over ``limit`` characters."""
    lineno = 0
    while line := text.readline(limit + 2):
        lineno += 1
        if len(line.rstrip("\r\n")) > limit:
            raise DataError(f"longer than the record limit of {limit:,} characters "
                            "(max_record_bytes)", file=name, where=f"line {lineno}",
                            reason=RECORD_TOO_LARGE)
        yield line


def _check_header(header: list[str], name: str, line: int) -> None:
    where = f"line {line}"
    if any(has_surrogate(cell) for cell in header):
        raise _not_utf8(where, None, " in the header").located(name)
    repeated = next((cell for i, cell in enumerate(header) if cell in header[:i]), None)
    if repeated is not None:
        # A dict keeps one of two same-named cells: refuse rather than drop the other.
        raise DataError("the header names this column twice; column names must be unique",
                        file=name, where=where, field=repeated, reason=MALFORMED_CSV)


def _csv_record(header: list[str], row: list[str], where: str) -> Any:
    if len(row) < len(header):
        return DataError(f"missing (the row has {len(row)} cells, the header {len(header)})",
                         where=where, field=header[len(row)], reason=MISSING_FIELD)
    if len(row) > len(header):
        return DataError(f"the row has {len(row)} cells but the header only {len(header)}",
                         where=where, reason=MALFORMED_CSV)
    record = dict(zip(header, row, strict=True))
    return _checked(record, where, lossy=has_surrogate("".join(row)))


def _read_parquet(path: Path, name: str, limit: int) -> RawRecords:
    """Records of a Parquet file, read in row batches."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with _seekable(path, name) as fh:
        if fh.seek(0, io.SEEK_END) == 0:
            raise DataError("empty file", file=name, reason=EMPTY_INPUT)
        fh.seek(0)
        index = 0
        try:
            for batch in pq.ParquetFile(fh).iter_batches(batch_size=_PARQUET_BATCH):
                for record in batch.to_pylist():
                    yield f"row index {index}", record
                    index += 1
        except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
            raise DataError(f"not a readable Parquet file: {short_error(exc)}",
                            file=name) from None


@contextlib.contextmanager
def _seekable(path: Path, name: str) -> Iterator[BinaryIO]:
    """A seekable handle on the (decompressed) file; ``.gz`` goes through a temporary file."""
    if not path.name.lower().endswith(".gz"):
        with open_binary(path, name) as fh:
            yield fh
        return
    with tempfile.TemporaryFile() as tmp:
        with open_binary(path, name) as src:
            shutil.copyfileobj(src, tmp, CHUNK)
        tmp.seek(0)
        yield tmp  # type: ignore[misc]


FILE_READERS: dict[str, Reader] = {
    "jsonl": _guarded(_read_jsonl), "json": _guarded(_read_json), "csv": _guarded(_read_csv),
    "parquet": _guarded(_read_parquet),
}
"""File kind -> reader ``(path, name, max_record_bytes) -> (where, record) pairs``."""
