"""Malformed input: every kind of problem names file, place and field, or is skipped and counted."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from pref_files import EXPLICIT, write, write_jsonl

from rewardlab.data import DataError, read_preferences

GOOD = json.dumps(EXPLICIT[0])


def jsonl_lines(path: Path, lines: list[str | bytes]) -> Path:
    data = b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines)
    path.write_bytes(data)
    return path


def error_of(path: Path | str, **kwargs: object) -> DataError:
    with pytest.raises(DataError) as info:
        read_preferences(path, **kwargs)  # type: ignore[arg-type]
    return info.value


# (name, line 2 of a JSON-lines file, expected field, reason, words of the problem)
RECORD_CASES = [
    ("malformed_json", '{"prompt": "p", "chosen": "c", "rejected": }', None, "malformed_json",
     "malformed JSON"),
    ("missing_field", '{"prompt": "p", "chosen": "c"}', "rejected", "missing_field", "missing"),
    ("number", '{"prompt": "p", "chosen": 3, "rejected": "r"}', "chosen", "wrong_type",
     "expected a string, got a number (3)"),
    ("null", '{"prompt": "p", "chosen": "c", "rejected": null}', "rejected", "wrong_type",
     "got null"),
    ("bool", '{"prompt": "p", "chosen": true, "rejected": "r"}', "chosen", "wrong_type",
     "got a boolean (true)"),
    ("object", '{"prompt": {"text": "p"}, "chosen": "c", "rejected": "r"}', "prompt",
     "wrong_type", "got an object"),
    ("not_object", '["p", "c", "r"]', None, "not_an_object", "expected a JSON object"),
]


@pytest.mark.parametrize(("line", "field", "reason", "words"),
                         [c[1:] for c in RECORD_CASES], ids=[c[0] for c in RECORD_CASES])
def test_bad_jsonl_record(tmp_path: Path, line: str, field: str | None, reason: str,
                          words: str) -> None:
    path = jsonl_lines(tmp_path / "bad.jsonl", [GOOD, line, GOOD])
    error = error_of(path)
    assert str(error).startswith(f"{path}: line 2: ")
    assert words in str(error)
    assert (error.file, error.where, error.field, error.reason) == (str(path), "line 2", field,
                                                                    reason)
    if field:
        assert f"field {field!r}" in str(error)
    # Skipping: the other records load, the bad one is counted with its message.
    ds, report = read_preferences(path, on_bad="skip")
    assert len(ds) == 2
    assert report.skipped == {reason: 1}
    assert report.skipped_examples == [str(error)]


def test_not_utf8_jsonl_names_line_and_field(tmp_path: Path) -> None:
    bad = b'{"prompt": "p", "chosen": "caf\xe9", "rejected": "r"}'
    path = jsonl_lines(tmp_path / "latin1.jsonl", [GOOD, GOOD, bad])
    error = error_of(path)
    assert str(error).startswith(f"{path}: line 3: field 'chosen': not valid UTF-8 text")
    assert "byte 0xe9" in str(error)
    ds, report = read_preferences(path, on_bad="skip")
    assert len(ds) == 2
    assert report.skipped == {"not_utf8": 1}


@pytest.mark.parametrize("kind", ["csv", "json"])
def test_not_utf8_in_csv_and_json_array(tmp_path: Path, kind: str) -> None:
    path = write(tmp_path / f"latin1.{kind}", EXPLICIT)
    path.write_bytes(path.read_bytes().replace(b"Blue.", b"Bl\xfce."))
    error = error_of(path)
    where = "row 2 (line 3)" if kind == "csv" else "record index 1"
    assert str(error).startswith(f"{path}: {where}: field 'chosen': not valid UTF-8")
    ds, report = read_preferences(path, on_bad="skip")
    assert ds["chosen"] == ["4", "Hi!"]
    assert report.skipped == {"not_utf8": 1}


def test_json_array_wrong_type_names_record_index(tmp_path: Path) -> None:
    records = [EXPLICIT[0], {**EXPLICIT[1], "rejected": 1.5}]
    error = error_of(write(tmp_path / "a.json", records))
    assert str(error) == (f"{tmp_path / 'a.json'}: record index 1: field 'rejected': "
                          "expected a string, got a number (1.5)")


def test_broken_json_array_stops_even_when_skipping(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[\n {"prompt": "p", "chosen": "c", "rejected": "r"},\n {"prompt": \n]')
    error = error_of(path, on_bad="skip")
    assert str(error).startswith(f"{path}: line 4: malformed JSON")


def test_csv_short_row_and_long_row(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text('prompt,chosen,rejected\np,c,r\n"multi\nline",c\np,c,r,extra\np,c,r\n')
    error = error_of(path)
    assert str(error).startswith(f"{path}: row 2 (line 3): field 'rejected': missing")
    ds, report = read_preferences(path, on_bad="skip")
    assert len(ds) == 2
    assert report.skipped == {"missing_field": 1, "malformed_csv": 1}
    assert report.skipped_examples[1].startswith(f"{path}: row 3 (line 5): the row has 4 cells")


def test_csv_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("prompt,chosen\np,c\n")
    assert str(error_of(path)).startswith(f"{path}: row 1 (line 2): field 'rejected': missing")


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_parquet_null_names_row(tmp_path: Path, gz: bool) -> None:
    records = [EXPLICIT[0], {**EXPLICIT[1], "chosen": None}]
    path = write(tmp_path / f"a.parquet{'.gz' if gz else ''}", records)
    assert str(error_of(path)) == (f"{path}: row index 1: field 'chosen': expected a string, "
                                   "got null")


def test_conversational_bad_message(tmp_path: Path) -> None:
    record = {"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": 5}],
              "rejected": [{"role": "user", "content": "Hi"}]}
    error = error_of(write_jsonl(tmp_path / "c.jsonl", [record]))
    assert str(error) == (f"{tmp_path / 'c.jsonl'}: line 1: field 'chosen[1].content': "
                          "expected a string, got a number (5)")


def test_mixed_string_and_list(tmp_path: Path) -> None:
    record = {"chosen": "text", "rejected": [{"role": "assistant", "content": "x"}]}
    error = error_of(write_jsonl(tmp_path / "c.jsonl", [record]))
    assert error.field == "rejected"
    assert error.reason == "wrong_type"


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.jsonl.gz", "blank.csv", "empty.json"])
def test_empty_file_is_always_an_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(gzip.compress(b"") if name.endswith(".gz") else b"\n  \n")
    error = error_of(path, on_bad="skip")
    assert str(error) == f"{path}: empty file"


def test_csv_header_only_holds_no_records(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("prompt,chosen,rejected\n")
    assert str(error_of(path, on_bad="skip")) == f"{path}: holds no records"


def test_all_records_bad_is_an_error_even_when_skipping(tmp_path: Path) -> None:
    path = jsonl_lines(tmp_path / "bad.jsonl", ['{"x": 1}', "nope"])
    error = error_of(path, on_bad="skip")
    assert str(error).startswith(f"{path}: no valid records: all 2 were skipped; the first: ")
    assert "field 'chosen': missing" in str(error)


def test_missing_paths(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    assert str(error_of(missing, on_bad="skip")) == f"{missing}: no such file or folder"
    pattern = str(tmp_path / "*.parquet")
    assert str(error_of(pattern)) == f"{pattern}: no files match this pattern"
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("hi")
    assert "folder holds no data" in str(error_of(tmp_path / "folder"))
    assert str(error_of([])) == "no input paths given"


def test_unsupported_file_type(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("hello")
    assert "unsupported file type" in str(error_of(path))


def test_skipped_examples_are_capped(tmp_path: Path) -> None:
    path = jsonl_lines(tmp_path / "a.jsonl", [GOOD] + ["{"] * 8)
    ds, report = read_preferences(path, on_bad="skip")
    assert len(ds) == 1
    assert report.skipped == {"malformed_json": 8}
    assert len(report.skipped_examples) == 5
    assert report.skipped_examples[0].startswith(f"{path}: line 2: malformed JSON")


def test_mixed_type_extra_column_names_the_record(tmp_path: Path) -> None:
    records = [{**EXPLICIT[0], "meta": 1}, {**EXPLICIT[1], "meta": "one"}]
    error = error_of(write_jsonl(tmp_path / "a.jsonl", records))
    assert str(error).startswith(f"{tmp_path / 'a.jsonl'}: line 2: field 'meta': ")
