"""Fuzzed loaders: whatever bytes a file holds, loading ends in a Dataset or a DataError.

The only outcomes allowed are a clean load (a Dataset and a report that add up) or a
:class:`DataError` whose message names the file -- never another exception, never a hang. Few
examples run by default (profile ``ci``, see conftest.py); ``make fuzz`` runs many more.
Bugs the fuzzer found are kept as ``@example`` cases and as plain tests at the end.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import math
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pref_files import EXPLICIT, write_jsonl

from rewardlab.data import DataError, read_preferences, streams

GOOD = json.dumps(EXPLICIT[0])
KINDS = ["jsonl", "json", "csv", "parquet"]
SUFFIXES = [f"{kind}{gz}" for kind in KINDS for gz in ("", ".gz")]
HANG_SECONDS = 20
MAPPINGS = [None, "prompt=p,chosen=c,rejected=r", "prompt=prompt,a=a,b=b,winner=winner"]

# Per-test settings on top of the profile: ignore the "fixture is function-scoped" check, since
# every example writes its own temporary folder.
fuzz_settings = settings(suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                HealthCheck.too_slow])


@contextlib.contextmanager
def no_hang(seconds: int = HANG_SECONDS) -> Iterator[None]:
    """Fail (instead of hanging the run) if the body takes longer than ``seconds``."""
    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"loading took more than {seconds} s: a hang?")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def check_load(path: Path, **kwargs: Any) -> Any:
    """Load ``path``; only a clean load or a DataError naming the file may come out."""
    try:
        with no_hang():
            ds, report = read_preferences(path, **kwargs)
    except DataError as exc:
        assert str(path) in str(exc), f"DataError does not name the file: {exc}"
        assert "\n" not in str(exc)
        return None
    assert len(ds) == report.pairs == sum(report.by_file.values()) > 0
    assert sum(report.by_format.values()) == report.pairs
    ds.with_format("arrow")[:]  # the table is readable as a whole
    return ds


def write_file(folder: Path, suffix: str, data: bytes) -> Path:
    path = folder / f"fuzz.{suffix}"
    path.write_bytes(gzip.compress(data, mtime=0) if suffix.endswith(".gz") else data)
    return path


@contextlib.contextmanager
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


# --- random bytes ------------------------------------------------------------------------------

@fuzz_settings
@given(data=st.binary(max_size=600), suffix=st.sampled_from(SUFFIXES),
       compress=st.booleans(), on_bad=st.sampled_from(["error", "skip"]))
@example(data=b'{"chosen": "a", "rejected": "b"}\n\x00\x00', suffix="jsonl", compress=True,
         on_bad="skip")
@example(data=b"\xff\xfe{\x00", suffix="json", compress=True, on_bad="error")  # odd UTF-16
@example(data=b"[" * 5000, suffix="json", compress=True, on_bad="skip")  # deep nesting
@example(data=b"[" * 5000, suffix="jsonl", compress=True, on_bad="skip")
@example(data=b"\x1f\x8b\x08\x00", suffix="jsonl.gz", compress=False, on_bad="error")
def test_random_bytes(data: bytes, suffix: str, compress: bool, on_bad: str) -> None:
    with folder() as tmp:
        path = tmp / f"fuzz.{suffix}"
        # .gz files: usually valid gzip around random bytes (to reach the parser), sometimes not.
        path.write_bytes(gzip.compress(data, mtime=0)
                         if suffix.endswith(".gz") and compress else data)
        check_load(path, on_bad=on_bad)


# --- random JSON structures --------------------------------------------------------------------

# Text with anything in it, lone surrogates included (JSON can escape them: "\ud800").
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
scalars = (st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | any_text
           | st.sampled_from(["a", "b", "A", "model_a", "tie", "0", "1", " 1 "]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(any_text, inner, max_size=3), max_leaves=8)
messages = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "x"]),
                                           "content": any_text}), max_size=3)
field_names = st.sampled_from(["prompt", "chosen", "rejected", "id", "source", "a", "b",
                               "winner", "p", "c", "r", "target", "input_prompt"]) | any_text
field_values = json_values | messages | any_text
records = st.dictionaries(field_names, field_values, max_size=7) | json_values
good_records = st.fixed_dictionaries(
    {"prompt": any_text, "chosen": any_text, "rejected": any_text},
    optional={"a": any_text, "b": any_text, "winner": scalars, "extra": json_values,
              "id": scalars, "source": scalars})


def dumps(value: Any, ascii_only: bool) -> bytes:
    """JSON text of ``value``; without ascii_only, lone surrogates become invalid UTF-8 bytes."""
    text = json.dumps(value, ensure_ascii=ascii_only)
    return text.encode("utf-8", "surrogatepass")


@fuzz_settings
@given(rows=st.lists(good_records | records, min_size=1, max_size=6),
       kind=st.sampled_from(["jsonl", "json"]), gz=st.booleans(), ascii_only=st.booleans(),
       line_end=st.sampled_from([b"\n", b"\r\n", b"\r"]), indent=st.sampled_from([None, 1]),
       mapping=st.sampled_from(MAPPINGS), on_bad=st.sampled_from(["error", "skip"]),
       ties=st.sampled_from(["drop", "half"]))
@example(rows=[{"prompt": "", "chosen": "", "rejected": "", "x": 2**64}], kind="jsonl", gz=False,
         ascii_only=True, line_end=b"\n", indent=None, mapping=None, on_bad="error", ties="drop")
@example(rows=[{"prompt": "", "chosen": "\ud800", "rejected": ""}], kind="json", gz=False,
         ascii_only=True, line_end=b"\n", indent=None, mapping=None, on_bad="error", ties="drop")
@example(rows=[{"chosen": "", "rejected": "", "x": {"": 0}}, {"chosen": "", "rejected": "",
                                                              "x": {"": ""}}],
         kind="jsonl", gz=False, ascii_only=True, line_end=b"\n", indent=None, mapping=None,
         on_bad="error", ties="drop")
def test_random_json(rows: list[Any], kind: str, gz: bool, ascii_only: bool, line_end: bytes,
                     indent: int | None, mapping: str | None, on_bad: str, ties: str) -> None:
    if kind == "jsonl":
        data = b"".join(dumps(row, ascii_only) + line_end for row in rows)
    else:
        text = json.dumps(rows, ensure_ascii=ascii_only, indent=indent)
        data = text.replace("\n", line_end.decode()).encode("utf-8", "surrogatepass")
    with folder() as tmp:
        check_load(write_file(tmp, kind + (".gz" if gz else ""), data), on_bad=on_bad,
                   mapping=mapping, ties=ties)


# --- random CSV --------------------------------------------------------------------------------

csv_cells = st.text(st.characters(codec="utf-8"), max_size=10) | st.sampled_from(
    ['"', '""', ",", "\n", "\r", "\r\n", "a,b", 'x"y', "", " ", "nan"])
QUOTING = [csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC, csv.QUOTE_NONE]


@fuzz_settings
@given(header=st.lists(st.sampled_from(["prompt", "chosen", "rejected", "id", "a", "b", "winner",
                                        "x"]) | csv_cells, min_size=1, max_size=5),
       rows=st.lists(st.lists(csv_cells, max_size=6), max_size=5),
       quoting=st.sampled_from(QUOTING), line_end=st.sampled_from(["\n", "\r\n", "\r"]),
       gz=st.booleans(), mapping=st.sampled_from(MAPPINGS),
       on_bad=st.sampled_from(["error", "skip"]))
@example(header=["prompt", "chosen", "rejected", "prompt"], rows=[["a", "b", "c", "d"]],
         quoting=csv.QUOTE_MINIMAL, line_end="\n", gz=False, mapping=None, on_bad="error")
def test_random_csv(header: list[str], rows: list[list[str]], quoting: int, line_end: str,
                    gz: bool, mapping: str | None, on_bad: str) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, quoting=quoting, lineterminator=line_end, escapechar="\\")
    try:
        writer.writerow(header)
        writer.writerows(rows)
    except csv.Error:
        return  # QUOTE_NONE cannot write some cells: nothing to read then
    data = buffer.getvalue().encode("utf-8", "surrogatepass")
    with folder() as tmp:
        check_load(write_file(tmp, "csv" + (".gz" if gz else ""), data), on_bad=on_bad,
                   mapping=mapping)


# --- random encodings and line ends ------------------------------------------------------------

ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1",
             "cp1252"]


@fuzz_settings
@given(rows=st.lists(good_records, min_size=1, max_size=4),
       suffix=st.sampled_from(["jsonl", "json", "csv", "jsonl.gz", "csv.gz"]),
       encoding=st.sampled_from(ENCODINGS),
       line_ends=st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=1, max_size=4))
@example(rows=[{"prompt": "é", "chosen": "ü", "rejected": "x"}], suffix="csv",
         encoding="utf-16", line_ends=["\r\n"])
def test_random_encodings(rows: list[dict[str, Any]], suffix: str, encoding: str,
                          line_ends: list[str]) -> None:
    lines = to_lines(rows, suffix.split(".")[0])
    text = "".join(line + line_ends[i % len(line_ends)] for i, line in enumerate(lines))
    data = text.encode(encoding, errors="replace")
    with folder() as tmp:
        path = write_file(tmp, suffix, data)
        ds = check_load(path, on_bad="skip")
    # Text that UTF-8 or a byte-order-marked encoding holds exactly reads back the same (when
    # the line ends were not swapped inside quoted CSV cells).
    exact = encoding in ("utf-8", "utf-8-sig", "utf-16", "utf-32") and encodes(text, encoding)
    cells = [str(v) for r in rows for v in r.values()]
    if exact and ds is not None and set(line_ends) <= {"\n", "\r\n"} and not any(
            "\n" in c or "\r" in c for c in cells):
        assert set(ds["chosen"]) <= {r["chosen"] for r in rows}


def encodes(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def to_lines(rows: list[dict[str, Any]], kind: str) -> list[str]:
    if kind == "jsonl":
        return [json.dumps(row, ensure_ascii=False) for row in rows]
    if kind == "json":
        return json.dumps(rows, ensure_ascii=False, indent=1).split("\n")
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().split("\n")[:-1]


# --- random Parquet ----------------------------------------------------------------------------

@fuzz_settings
@given(rows=st.lists(good_records, min_size=1, max_size=5), gz=st.booleans(),
       mapping=st.sampled_from(MAPPINGS), ties=st.sampled_from(["drop", "half"]),
       on_bad=st.sampled_from(["error", "skip"]))
def test_random_parquet(rows: list[dict[str, Any]], gz: bool, mapping: str | None, ties: str,
                        on_bad: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pa.Table.from_pylist(rows)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
    except (pa.ArrowException, TypeError, ValueError, OverflowError, UnicodeError):
        return  # Arrow cannot write these rows; nothing to read
    with folder() as tmp:
        check_load(write_file(tmp, "parquet" + (".gz" if gz else ""),
                              sink.getvalue().to_pybytes()),
                   on_bad=on_bad, mapping=mapping, ties=ties)


# --- read boundaries and record limits: the outcome does not depend on how bytes arrive -------

def outcome(path: Path, **kwargs: Any) -> Any:
    """What loading gives, comparably: the table as Python lists, or the error message."""
    ds = check_load(path, **kwargs)
    if ds is None:
        with pytest.raises(DataError) as info:
            read_preferences(path, **kwargs)
        return str(info.value)
    # As JSON text, so that NaN equals NaN.
    return json.dumps(ds.to_dict(), sort_keys=True, default=repr)


@contextlib.contextmanager
def chunk_size(size: int) -> Iterator[None]:
    """Read files ``size`` bytes at a time (the default is 1 MiB)."""
    old = streams.CHUNK
    streams.CHUNK = size
    try:
        yield
    finally:
        streams.CHUNK = old


@fuzz_settings
@given(rows=st.lists(good_records | records, min_size=1, max_size=5),
       suffix=st.sampled_from(["jsonl", "json", "csv", "json.gz"]),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-32"]),
       indent=st.sampled_from([None, 0, 2]), size=st.integers(1, 9),
       limit=st.sampled_from([1, 5, 40, 100, 2**20]), on_bad=st.sampled_from(["error", "skip"]))
# A NaN in the data (the test's own comparison once failed on NaN != NaN).
@example(rows=[{"chosen": "", "rejected": "", "winner": math.nan}], suffix="json",
         encoding="utf-8", indent=None, size=1, limit=2**20, on_bad="error")
# Found: a value over the limit passed when it arrived in one read, and not in several.
@example(rows=[{}], suffix="json", encoding="utf-8", indent=None, size=1, limit=1,
         on_bad="error")
# Found: a number cut by a read ("0" then ".0") ended at the cut.
@example(rows=[0.0], suffix="json", encoding="utf-8", indent=None, size=1, limit=2**20,
         on_bad="error")
def test_read_size_does_not_matter(rows: list[Any], suffix: str, encoding: str,
                                   indent: int | None, size: int, limit: int,
                                   on_bad: str) -> None:
    kind = suffix.split(".")[0]
    if kind == "csv":
        rows = [r for r in rows if isinstance(r, dict) and r] or [{"chosen": "c", "rejected": "r"}]
        text = "\n".join(to_lines([{str(k): v for k, v in rows[0].items()}, *rows], "csv"))
    elif kind == "json":
        text = json.dumps(rows, indent=indent)
    else:
        text = "\n".join(json.dumps(r) for r in rows)
    with folder() as tmp:
        path = write_file(tmp, suffix, text.encode(encoding, errors="replace"))
        expected = outcome(path, on_bad=on_bad, max_record_bytes=limit)
        with chunk_size(size):
            assert outcome(path, on_bad=on_bad, max_record_bytes=limit) == expected


# --- damaged files: valid files with a few bytes changed ---------------------------------------

def valid_file(kind: str) -> bytes:
    records = [{"prompt": f"q{i} é", "chosen": f"yes {i} ✓", "rejected": f"no {i}",
                "votes": i, "meta": {"k": [i, None]}} for i in range(4)]
    if kind == "jsonl":
        return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)
    if kind == "json":
        return json.dumps(records, indent=1, ensure_ascii=False).encode()
    if kind == "csv":
        return "\n".join(to_lines([{k: r[k] for k in ("prompt", "chosen", "rejected")}
                                    for r in records], "csv")).encode()
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(records), sink)
    return sink.getvalue().to_pybytes()


@fuzz_settings
@given(suffix=st.sampled_from(SUFFIXES), edits=st.lists(
    st.tuples(st.sampled_from(["flip", "insert", "delete", "cut"]), st.floats(0, 1),
              st.binary(min_size=1, max_size=3)), min_size=1, max_size=4),
       on_bad=st.sampled_from(["error", "skip"]), limit=st.sampled_from([30, 2**20]))
# Found: a NUL byte at the start of a CSV header made a column name datasets cannot store.
@example(suffix="csv", edits=[("insert", 0.0, b"\x00")], on_bad="error", limit=30)
def test_damaged_files(suffix: str, edits: list[tuple[str, float, bytes]], on_bad: str,
                       limit: int) -> None:
    data = bytearray(valid_file(suffix.split(".")[0]))
    for op, where, blob in edits:
        i = min(int(where * len(data)), max(len(data) - 1, 0))
        if op == "flip" and data:
            data[i] ^= blob[0] or 1
        elif op == "insert":
            data[i:i] = blob
        elif op == "delete":
            del data[i:i + len(blob)]
        else:
            del data[i:]
    with folder() as tmp:
        check_load(write_file(tmp, suffix, bytes(data)), on_bad=on_bad, max_record_bytes=limit)


# --- regressions the fuzzer found, as plain tests ----------------------------------------------

def test_nan_and_infinity_in_extra_columns_are_carried(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"chosen": "a", "rejected": "b", "score": NaN, "w": 1}\n'
                    '{"chosen": "c", "rejected": "d", "score": Infinity, "w": -Infinity}\n')
    ds, _ = read_preferences(path)
    assert math.isnan(ds["score"][0]) and ds["score"][1] == math.inf
    assert ds["w"] == [1.0, -math.inf]
    assert ds.to_pandas()["score"].isna().tolist() == [True, False]


def test_nan_in_csv_stays_text(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("chosen,rejected,score\na,b,nan\nc,d,inf\n")
    assert read_preferences(path)[0]["score"] == ["nan", "inf"]


def test_nan_as_a_response_is_a_wrong_type(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"chosen": NaN, "rejected": "b"}\n')
    with pytest.raises(DataError, match=r"line 1: field 'chosen': expected a string or a list "
                                        r"of messages, got a number \(nan\)"):
        read_preferences(path)


def test_unstorable_extra_values_name_file_and_line(tmp_path: Path) -> None:
    # Found by the fuzzer: these errors named no file ("values of this extra column cannot form
    # one Arrow column"), since both values were lists or the type differed only inside.
    for first, second in [([False, 0], [0]), (1, 2**64), ({"k": 1}, {"k": "x"})]:
        path = write_jsonl(tmp_path / "a.jsonl", [{**EXPLICIT[0], "x": first},
                                                  {**EXPLICIT[1], "x": second}])
        with pytest.raises(DataError) as info:
            read_preferences(path)
        message = str(info.value)
        assert message.startswith(f"{path}: line "), message
        assert info.value.field == "x"
    path = write_jsonl(tmp_path / "b.jsonl", [{**EXPLICIT[0], "x": 1}, {**EXPLICIT[1], "x": "a"}])
    with pytest.raises(DataError, match="line 2: field 'x': this column holds a string here but "
                                        "int values earlier"):
        read_preferences(path)


def test_messages_are_one_line_even_for_odd_column_names(tmp_path: Path) -> None:
    # Found by the fuzzer: a column named "\n" broke the message over two lines.
    path = write_jsonl(tmp_path / "a.jsonl", [{"\n": [], "prompt": "p"}])
    with pytest.raises(DataError) as info:
        read_preferences(path)
    assert "\n" not in str(info.value)
    assert "(the record has: '\\n', prompt)" in str(info.value)
    # Whatever else holds a line break (here the file name), the message stays on one line.
    path = write_jsonl(tmp_path / "two\nlines.jsonl", [{"prompt": "p"}])
    with pytest.raises(DataError) as info:
        read_preferences(path)
    assert str(info.value).startswith(f"{tmp_path}/two\\nlines.jsonl: line 1: field 'chosen'")


def test_csv_header_naming_a_column_twice(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("prompt,chosen,rejected,chosen\np,c,r,d\n")
    with pytest.raises(DataError, match="line 1: field 'chosen': the header names this column "
                                        "twice"):
        read_preferences(path, on_bad="skip")


def test_renamed_extra_never_overwrites_a_column(tmp_path: Path) -> None:
    record = {"instruction": "q", "x": "a", "y": "b", "prompt": "p1", "input_prompt": "p2"}
    ds, _ = read_preferences(write_jsonl(tmp_path / "a.jsonl", [record]),
                             mapping="prompt=instruction,chosen=x,rejected=y")
    assert ds[0]["input_prompt"] == "p2"
    assert ds[0]["input_input_prompt"] == "p1"


def test_nul_in_a_column_name(tmp_path: Path) -> None:
    # Found by the fuzzer: Arrow cuts column names at a NUL, and datasets then failed with a
    # CastError ("column names don't match").
    path = tmp_path / "a.jsonl"
    path.write_text(GOOD + '\n{"prompt": "p", "chosen": "c", "rejected": "r", "a\\u0000b": 1}\n')
    with pytest.raises(DataError) as info:
        read_preferences(path)
    assert str(info.value) == (f"{path}: line 2: field 'a\\x00b': a column name holds a NUL "
                               "character, which a dataset cannot store; rename the column")
    ds, report = read_preferences(path, on_bad="skip")
    assert report.skipped == {"bad_column_name": 1}
    assert len(ds) == 1
