"""Resource guards: records over ``max_record_bytes`` are refused cleanly, in bounded memory;
UTF-16/32 with a byte-order mark is read, without one refused; NaN and infinities are carried."""

from __future__ import annotations

import codecs
import json
import tracemalloc
from pathlib import Path

import pytest
from pref_files import EXPLICIT, write, write_jsonl

from rewardlab.data import DataError, read_preferences
from rewardlab.data.streams import DEFAULT_MAX_RECORD_BYTES

GOOD = json.dumps(EXPLICIT[0])


def big_record(size: int) -> str:
    """One JSON-lines record of about ``size`` bytes."""
    return json.dumps({"prompt": "p", "chosen": "x" * size, "rejected": "r"})


def test_jsonl_record_over_the_limit_is_a_skippable_record(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_text(f"{GOOD}\n{big_record(5000)}\n{GOOD}\n")
    with pytest.raises(DataError) as info:
        read_preferences(path, max_record_bytes=1000)
    assert str(info.value) == (f"{path}: line 2: longer than the record limit of 1,000 bytes "
                               "(max_record_bytes)")
    assert info.value.reason == "record_too_large"
    ds, report = read_preferences(path, max_record_bytes=1000, on_bad="skip")
    assert len(ds) == 2
    assert report.skipped == {"record_too_large": 1}
    # Line numbers after the long line are still right.
    path.write_text(f"{big_record(5000)}\n{GOOD}\n{{\n")
    ds, report = read_preferences(path, max_record_bytes=1000, on_bad="skip")
    assert len(ds) == 1
    assert report.skipped_examples[0].startswith(f"{path}: line 1: longer than the record")
    assert report.skipped_examples[1].startswith(f"{path}: line 3: malformed JSON")


@pytest.mark.parametrize("line_end", ["\n", "\r\n", ""])
def test_jsonl_limit_is_exact(tmp_path: Path, line_end: str) -> None:
    record = big_record(100)
    path = tmp_path / "a.jsonl"
    path.write_bytes((record + line_end).encode())
    size = len(record.encode())
    assert len(read_preferences(path, max_record_bytes=size)[0]) == 1
    with pytest.raises(DataError, match="longer than the record limit"):
        read_preferences(path, max_record_bytes=size - 1)


def test_json_array_element_over_the_limit_stops_the_file(tmp_path: Path) -> None:
    records = [EXPLICIT[0], {**EXPLICIT[1], "chosen": "x" * 5000}, EXPLICIT[2]]
    path = write(tmp_path / "a.json", records)
    with pytest.raises(DataError) as info:
        read_preferences(path, max_record_bytes=1000, on_bad="skip")
    assert str(info.value) == (f"{path}: record index 1: longer than the record limit of 1,000 "
                               "bytes (max_record_bytes); a JSON file cannot be read past it")
    assert len(read_preferences(path)[0]) == 3


def test_json_single_object_over_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps({**EXPLICIT[0], "chosen": "x" * 5000}, indent=2))
    with pytest.raises(DataError, match="record index 0: longer than the record limit"):
        read_preferences(path, max_record_bytes=1000)


@pytest.mark.parametrize(("cell", "words"), [
    ('"' + "x\n" * 1000 + '"', "a cell is longer than the record limit of 1,000 characters"),
    ("x" * 5000, "line 3: longer than the record limit of 1,000 characters"),
])
def test_csv_cell_or_line_over_the_limit(tmp_path: Path, cell: str, words: str) -> None:
    path = tmp_path / "a.csv"
    path.write_text(f"prompt,chosen,rejected\np,c,r\np,{cell},r\n")
    with pytest.raises(DataError) as info:
        read_preferences(path, max_record_bytes=1000, on_bad="skip")
    assert str(info.value).startswith(f"{path}: ")
    assert words in str(info.value)
    assert info.value.reason == "record_too_large"
    assert len(read_preferences(path)[0]) == 2


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "64"])
def test_max_record_bytes_must_be_a_positive_int(tmp_path: Path, bad: object) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", EXPLICIT)
    with pytest.raises(ValueError, match="--max-record-bytes"):
        read_preferences(path, max_record_bytes=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["huge.jsonl", "huge.json"])
def test_real_size_record_is_refused_in_bounded_memory(tmp_path: Path, name: str) -> None:
    """A record just over the default 64 MiB limit: refused, and never held whole."""
    size = DEFAULT_MAX_RECORD_BYTES + 2**20
    path = tmp_path / name
    with path.open("w") as fh:
        if name.endswith(".json"):
            fh.write("[")
        fh.write(f'{{"prompt": "p", "rejected": "r", "chosen": "{"x" * size}"}}')
        fh.write("\n" if name.endswith(".jsonl") else "]")
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="longer than the record limit of 67,108,864 bytes"):
            read_preferences(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Reading a record up to the limit costs about the limit (a JSON array: text buffer plus
    # its re-parse); never the whole 65 MiB record plus its parsed copy plus the file.
    assert peak < 3.5 * DEFAULT_MAX_RECORD_BYTES, f"peak {peak / 2**20:.0f} MiB"


# --- encodings ---------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-8-sig"])
@pytest.mark.parametrize("kind", ["jsonl", "json", "csv", "jsonl.gz"])
def test_byte_order_marked_encodings_are_read(tmp_path: Path, encoding: str, kind: str) -> None:
    records = [{**r, "chosen": r["chosen"] + " é ✓ 😀"} for r in EXPLICIT]
    utf8 = write(tmp_path / f"utf8.{kind}", records)
    text = (utf8.read_bytes() if not kind.endswith(".gz")
            else __import__("gzip").decompress(utf8.read_bytes())).decode("utf-8")
    bom = {"utf-16-be": codecs.BOM_UTF16_BE}.get(encoding, b"")
    data = bom + text.replace("\n", "\r\n").encode(encoding)
    path = tmp_path / f"other.{kind}"
    path.write_bytes(__import__("gzip").compress(data) if kind.endswith(".gz") else data)
    ds, _ = read_preferences(path)
    assert ds["chosen"] == [r["chosen"] for r in records]
    assert ds["prompt"] == [r["prompt"] for r in records]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le"])
def test_utf16_without_bom_is_refused_with_advice(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(f"{GOOD}\n".encode(encoding))
    with pytest.raises(DataError) as info:
        read_preferences(path, on_bad="skip")
    assert str(info.value).startswith(f"{path}: not UTF-8: many NUL bytes, as in UTF-16")
    assert "iconv" in str(info.value)


def test_broken_utf16_after_its_bom_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(f"{GOOD}\n".encode("utf-16") + b"\x00")  # an odd byte at the end
    with pytest.raises(DataError, match="not valid UTF-16 text although it starts with a UTF-16 "
                                        "byte-order mark"):
        read_preferences(path)


def test_latin1_records_are_reported_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes("prompt,chosen,rejected\ncafé,crème,brûlée\n".encode("latin-1"))
    with pytest.raises(DataError) as info:
        read_preferences(path)
    assert str(info.value).startswith(f"{path}: row 1 (line 2): field 'prompt': not valid UTF-8")
    assert "iconv -f LATIN1 -t UTF-8" in str(info.value)


def test_bad_bytes_in_the_csv_header(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"prompt,chosen,rejected,caf\xe9\np,c,r,x\n")
    with pytest.raises(DataError, match="line 1: not valid UTF-8 text in the header"):
        read_preferences(path, on_bad="skip")


def test_escaped_lone_surrogate_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(GOOD + '\n{"prompt": "p", "chosen": "\\ud800", "rejected": "r"}\n'
                    '{"prompt": "p", "chosen": "\\ud83d\\ude00", "rejected": "r"}\n')
    with pytest.raises(DataError, match="line 2: field 'chosen': not valid UTF-8"):
        read_preferences(path)
    ds, report = read_preferences(path, on_bad="skip")
    assert ds["chosen"] == ["4", "😀"]  # a surrogate pair is fine
    assert report.skipped == {"not_utf8": 1}


def test_old_mac_line_ends_get_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(f"{GOOD}\r{GOOD}\r".encode())
    with pytest.raises(DataError, match="carriage return; JSON lines must end with"):
        read_preferences(path)


def test_deep_nesting_is_malformed_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(GOOD + "\n" + "[" * 100_000 + "\n")
    with pytest.raises(DataError, match="line 2: malformed JSON: nested too deeply"):
        read_preferences(path)
    path = tmp_path / "a.json"
    path.write_text("[" * 100_000)
    with pytest.raises(DataError, match=f"{path}: line 1: malformed JSON: nested too deeply"):
        read_preferences(path)


# --- memory of the built dataset ---------------------------------------------------------------

def test_dataset_fingerprint_is_ours_and_follows_content(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets.arrow_dataset

    # datasets' own fingerprint pickles the whole in-memory table (a full copy at peak).
    def no_pickling(*args: object, **kwargs: object) -> str:
        raise AssertionError("datasets fingerprinted the table by pickling it")

    monkeypatch.setattr(datasets.arrow_dataset, "generate_fingerprint", no_pickling)
    a = write_jsonl(tmp_path / "a.jsonl", EXPLICIT)
    b = write_jsonl(tmp_path / "b.jsonl", [*EXPLICIT[:2], {**EXPLICIT[2], "votes": 9}])
    first = read_preferences(a)[0]._fingerprint
    assert read_preferences(a)[0]._fingerprint == first
    assert read_preferences(b)[0]._fingerprint != first
