"""Single-response files: layouts, ids, extra columns, errors, and telling them from pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardlab.data import DataError
from rewardlab.data.responses import detect_input_kind, read_responses, render_conversation


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_explicit_responses_keep_every_column(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "r.jsonl", [
        {"id": "a", "prompt": "Hi?", "response": "Hello.", "model": "x", "source": "s1"},
        {"id": "b", "prompt": "Bye?", "response": "Bye.", "model": "y"},
    ])
    ds, report = read_responses([f])
    assert ds["id"] == ["a", "b"] and ds["prompt"] == ["Hi?", "Bye?"]
    assert ds["response"] == ["Hello.", "Bye."]
    assert ds["source"] == ["s1", "r"] and ds["model"] == ["x", "y"]
    assert report.pairs == 2 and report.by_format == {"explicit": 2}


def test_trl_completion_column_and_missing_prompt(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "c.jsonl", [{"completion": "Just text."}])
    ds, _ = read_responses([f])
    assert ds["prompt"] == [""] and ds["response"] == ["Just text."]


def test_conversational_rendering_matches_the_pair_loader(tmp_path: Path) -> None:
    from rewardlab.data import read_preferences

    prompt = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi?"}]
    answer = [{"role": "assistant", "content": "Hello!"}]
    f = write_jsonl(tmp_path / "conv.jsonl", [{"prompt": prompt, "completion": answer}])
    ds, report = read_responses([f])
    assert ds["prompt"] == ["\n\nSystem: Be kind.\n\nHuman: Hi?\n\nAssistant:"]
    assert ds["response"] == [" Hello!"]
    assert report.by_format == {"conversational": 1}
    # The same text the chosen side of a conversational pair gets.
    pair = write_jsonl(tmp_path / "pair.jsonl", [
        {"prompt": prompt, "chosen": answer, "rejected": [{"role": "assistant", "content": "x"}]}])
    pairs, _ = read_preferences([pair])
    assert pairs["prompt"] == ds["prompt"] and pairs["chosen"] == ds["response"]


def test_messages_score_the_last_assistant_turn(tmp_path: Path) -> None:
    msgs = [{"role": "user", "content": "A?"}, {"role": "assistant", "content": "B."},
            {"role": "user", "content": "C?"}, {"role": "assistant", "content": "D."}]
    ds, report = read_responses([write_jsonl(tmp_path / "m.jsonl", [{"messages": msgs}])])
    assert ds["prompt"] == ["\n\nHuman: A?\n\nAssistant: B.\n\nHuman: C?\n\nAssistant:"]
    assert ds["response"] == [" D."] and report.by_format == {"messages": 1}


def test_ids_fall_back_to_content_hashes(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "dup.jsonl", [{"id": 1, "response": "a"}, {"id": 1, "response": "b"},
                                             {"response": "a"}])
    ds, _ = read_responses([f])
    assert len(set(ds["id"])) == 3 and ds["input_id"] == [1, 1, None]  # repeated ids kept aside


@pytest.mark.parametrize("row, words", [
    ({"prompt": "p"}, "line 1: field 'response': missing (the record has: prompt)"),
    ({"response": 5}, "field 'response': expected a string or a list of messages, got a number"),
    ({"prompt": 3, "response": "r"}, "field 'prompt': is a number (3) while the response is a"),
    ({"prompt": [{"role": "user", "content": "q"}], "response": "r"}, "field 'prompt': is a list"),
    ({"completion": [{"role": "assistant"}]}, "field 'completion[0].content': missing"),
    ({"messages": [{"role": "user", "content": "q"}]}, "field 'messages': has no assistant"),
    ({"prompt": "p", "chosen": "a", "rejected": "b"}, "holds a preference pair"),
])
def test_bad_records_name_file_line_and_field(tmp_path: Path, row: dict, words: str) -> None:
    f = write_jsonl(tmp_path / "bad.jsonl", [row])
    with pytest.raises(DataError, match=None) as err:
        read_responses([f])
    assert str(err.value).startswith(str(f)) and words in str(err.value)


def test_skip_counts_bad_records(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "mixed.jsonl", [{"response": "ok"}, {"response": 1}, "not a dict"])
    ds, report = read_responses([f], on_bad="skip")
    assert ds["response"] == ["ok"]
    assert report.skipped == {"wrong_type": 1, "not_an_object": 1}


def test_detect_pairs_or_responses(tmp_path: Path) -> None:
    pairs = write_jsonl(tmp_path / "p.jsonl", [{"chosen": "a", "rejected": "b"}])
    responses = write_jsonl(tmp_path / "r.jsonl", [{"prompt": "p", "response": "a"}])
    assert detect_input_kind([pairs]) == "pairs"
    assert detect_input_kind([responses]) == "responses"
    assert detect_input_kind([responses], mapping="prompt=q,chosen=a,rejected=b") == "pairs"


def test_render_conversation_passes_strings_through() -> None:
    assert render_conversation("p", "r") == ("p", "r")
    assert render_conversation(None, "r") == ("", "r")
    assert render_conversation([{"role": "user", "content": "q"}],
                               [{"role": "assistant", "content": "a"}]) == (
        "\n\nHuman: q\n\nAssistant:", " a")
