"""Suspicious but well-formed pairs are kept, flagged, counted with their ids, or dropped."""

from __future__ import annotations

from pathlib import Path

from pref_files import write_jsonl

from rewardlab.data import SUSPICIOUS_KINDS, read_preferences
from rewardlab.data.checks import is_blank

EXPLICIT_CASES = [
    {"id": "ok", "prompt": "p", "chosen": "a", "rejected": "b"},
    {"id": "no-prompt", "prompt": "  \n", "chosen": "a", "rejected": "b"},
    {"id": "no-chosen", "prompt": "p", "chosen": "", "rejected": "b"},
    {"id": "blank-rejected", "prompt": "p", "chosen": "a", "rejected": " \t"},
    {"id": "same", "prompt": "p", "chosen": "x", "rejected": "x"},
    {"id": "again", "prompt": "p", "chosen": "a", "rejected": "b"},  # repeats "ok"
    {"id": "again2", "prompt": "p", "chosen": "a", "rejected": "b"},
]


def test_explicit_kinds(tmp_path: Path) -> None:
    ds, report = read_preferences(write_jsonl(tmp_path / "s.jsonl", EXPLICIT_CASES))
    assert list(report.suspicious) == list(SUSPICIOUS_KINDS)
    assert report.suspicious == {
        "empty_prompt": ["no-prompt"],
        "empty_response": ["no-chosen", "blank-rejected"],
        "identical": ["same"],
        "duplicate": ["again", "again2"],
        "early_divergence": [],
    }
    assert dict(zip(ds["id"], ds["suspicious"], strict=True)) == {
        "ok": [], "no-prompt": ["empty_prompt"], "no-chosen": ["empty_response"],
        "blank-rejected": ["empty_response"], "same": ["identical"], "again": ["duplicate"],
        "again2": ["duplicate"],
    }
    assert report.pairs == 7
    assert report.dropped_suspicious == 0


def test_drop_suspicious(tmp_path: Path) -> None:
    ds, report = read_preferences(write_jsonl(tmp_path / "s.jsonl", EXPLICIT_CASES),
                                  drop_suspicious=True)
    assert ds["id"] == ["ok"]
    assert report.dropped_suspicious == 6
    assert report.pairs == 1
    assert report.by_file == {str(tmp_path / "s.jsonl"): 1}  # counts what is returned
    assert len(report.suspicious["duplicate"]) == 2  # still reported
    assert any("6 pair(s) dropped" in line for line in report.summary_lines())


def test_duplicate_hash_ids_get_suffixes(tmp_path: Path) -> None:
    pair = {"prompt": "p", "chosen": "a", "rejected": "b"}
    ds, report = read_preferences(write_jsonl(tmp_path / "d.jsonl", [pair, pair, pair]))
    first = ds["id"][0]
    assert ds["id"] == [first, f"{first}-1", f"{first}-2"]
    assert report.suspicious["duplicate"] == [f"{first}-1", f"{first}-2"]
    assert ds["suspicious"] == [[], ["duplicate"], ["duplicate"]]


def test_duplicates_across_files(tmp_path: Path) -> None:
    pair = {"prompt": "p", "chosen": "a", "rejected": "b"}
    a = write_jsonl(tmp_path / "a.jsonl", [pair])
    b = write_jsonl(tmp_path / "b.jsonl", [pair])
    _, report = read_preferences([a, b])
    assert len(report.suspicious["duplicate"]) == 1


def test_hh_kinds(tmp_path: Path) -> None:
    records = [
        # empty assistant reply
        {"chosen": "\n\nHuman: Hi\n\nAssistant: ", "rejected": "\n\nHuman: Hi\n\nAssistant: Yo"},
        # the same dialogue twice
        {"chosen": "\n\nHuman: Hi\n\nAssistant: Yo", "rejected": "\n\nHuman: Hi\n\nAssistant: Yo"},
        # differ at the first answer, then go on: early divergence
        {"chosen": "\n\nHuman: Hi\n\nAssistant: A\n\nHuman: ok\n\nAssistant: B",
         "rejected": "\n\nHuman: Hi\n\nAssistant: C\n\nHuman: ok\n\nAssistant: D"},
        # the human said nothing
        {"chosen": "\n\nHuman: \n\nAssistant: A", "rejected": "\n\nHuman: \n\nAssistant: B"},
    ]
    ds, report = read_preferences(write_jsonl(tmp_path / "hh.jsonl", records))
    assert ds["suspicious"] == [["empty_response"], ["identical"], ["early_divergence"],
                                ["empty_prompt"]]
    assert ds[2]["prompt"] == "\n\nHuman: Hi\n\nAssistant:"
    assert ds[2]["chosen"] == " A\n\nHuman: ok\n\nAssistant: B"
    assert {k: len(v) for k, v in report.suspicious.items()} == {
        "empty_prompt": 1, "empty_response": 1, "identical": 1, "duplicate": 0,
        "early_divergence": 1}


def test_response_mentioning_assistant_is_early_divergence(tmp_path: Path) -> None:
    # A response that itself contains "\n\nAssistant:" makes the shared-prefix cut land before
    # the last marker of that dialogue: flagged, and no text is lost.
    chosen = "\n\nHuman: Hi\n\nAssistant: Sure.\n\nAssistant: Also this."
    rejected = "\n\nHuman: Hi\n\nAssistant: No."
    ds, _ = read_preferences(write_jsonl(tmp_path / "hh.jsonl",
                                         [{"chosen": chosen, "rejected": rejected}]))
    row = ds[0]
    assert row["suspicious"] == ["early_divergence"]
    assert row["prompt"] + row["chosen"] == chosen
    assert row["prompt"] + row["rejected"] == rejected


def test_is_blank() -> None:
    assert is_blank("")
    assert is_blank(" \n\t")
    assert is_blank("\n\nHuman: \n\nAssistant:")
    assert not is_blank("Human: hi")
    assert not is_blank(" Hello")
