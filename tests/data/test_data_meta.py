"""MetaRM meta sets: both layouts, grouping by prompt, dedup, errors naming file, line, field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardlab.data import DataError
from rewardlab.data.meta import read_meta


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_list_layout_and_row_layout_group_by_prompt(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "m.jsonl", [
        {"prompt": "P1", "responses": ["a", "b", "a"]},  # a repeated: kept once
        {"prompt": "P2", "response": "x"},
        {"prompt": "P1", "response": "c"},  # joins P1's group
        {"prompt": "P2", "completion": "y"},
    ])
    meta, report = read_meta(f)
    assert meta.prompts == ["P1", "P2"]
    assert meta.responses == [["a", "b", "c"], ["x", "y"]]
    assert meta.texts == 5 and report.pairs == 2 and report.by_file == {str(f): 4}
    assert not report.warnings


def test_prompts_with_one_distinct_response_are_counted_not_dropped_silently(
        tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "m.jsonl", [
        {"prompt": "P1", "responses": ["a", "b"]},
        {"prompt": "P2", "responses": ["same", "same"]},
        {"prompt": "P3", "response": "alone"},
    ])
    meta, report = read_meta(f)
    assert meta.prompts == ["P1"]
    assert report.warnings == [
        "2 prompt(s) with fewer than 2 distinct responses left out (the difference loss "
        "compares a prompt's responses with each other)"]


def test_conversational_responses_render_like_the_response_reader(tmp_path: Path) -> None:
    prompt = [{"role": "user", "content": "Hi?"}]
    f = write_jsonl(tmp_path / "m.jsonl", [{"prompt": prompt, "responses": [
        [{"role": "assistant", "content": "Hello!"}], [{"role": "assistant", "content": "Yo"}]]}])
    meta, _ = read_meta(f)
    assert meta.prompts == ["\n\nHuman: Hi?\n\nAssistant:"]
    assert meta.responses == [[" Hello!", " Yo"]]


@pytest.mark.parametrize(("row", "field", "problem"), [
    ({"prompt": "P", "responses": "a"}, "responses", "expected a non-empty list"),
    ({"prompt": "P", "responses": []}, "responses", "expected a non-empty list"),
    ({"prompt": "P", "responses": ["a", 3]}, "responses[1]", "expected a string"),
    ({"prompt": 5, "responses": ["a", "b"]}, "prompt", "is a number"),
    ({"prompt": "P", "answer": "a"}, "response", "missing"),
])
def test_bad_records_name_file_line_and_field(tmp_path: Path, row: dict, field: str,
                                              problem: str) -> None:
    f = write_jsonl(tmp_path / "m.jsonl", [{"prompt": "ok", "responses": ["a", "b"]}, row])
    with pytest.raises(DataError) as info:
        read_meta(f)
    err = info.value
    assert (err.file, err.where, err.field) == (str(f), "line 2", field)
    assert problem in err.problem and str(err).startswith(f"{f}: line 2: field {field!r}: ")


def test_labelled_pairs_are_refused_and_skip_counts(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "m.jsonl", [
        {"prompt": "ok", "responses": ["a", "b"]},
        {"prompt": "P", "chosen": "a", "rejected": "b"},
    ])
    with pytest.raises(DataError, match=r"line 2: holds a labelled pair"):
        read_meta(f)
    meta, report = read_meta(f, on_bad="skip")
    assert meta.prompts == ["ok"] and report.skipped == {"wrong_type": 1}


def test_no_usable_prompt_is_an_error(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "m.jsonl", [{"prompt": "P", "response": "a"}])
    with pytest.raises(DataError, match="no prompt has 2 or more distinct responses"):
        read_meta(f)
    empty = tmp_path / "e.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="empty file"):
        read_meta(empty)
