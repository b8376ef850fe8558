"""Every input layout, file type and compression reads to the same canonical columns."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import datasets
import pytest
from pref_files import CONVERSATIONAL, EXPLICIT, HH, write, write_jsonl

from rewardlab.data import DataError, load_preferences, read_preferences

CANONICAL = ["id", "prompt", "chosen", "rejected", "source", "suspicious"]


@pytest.mark.parametrize("kind", ["jsonl", "json", "csv", "parquet"])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_explicit_every_file_type(tmp_path: Path, kind: str, gz: bool) -> None:
    path = write(tmp_path / f"my-prefs.train.{kind}{'.gz' if gz else ''}", EXPLICIT)
    ds, report = read_preferences(path)
    assert ds.column_names == [*CANONICAL, "votes"]
    assert ds["prompt"] == [r["prompt"] for r in EXPLICIT]  # file order kept
    assert ds["chosen"] == [r["chosen"] for r in EXPLICIT]
    assert ds["rejected"] == [r["rejected"] for r in EXPLICIT]
    assert ds["source"] == ["my-prefs"] * 3  # the name before its first dot
    assert ds["suspicious"] == [[], [], []]
    # CSV has no types: its extra column stays text, as written.
    expected_votes = [str(r["votes"]) if kind == "csv" else r["votes"] for r in EXPLICIT]
    assert ds["votes"] == expected_votes
    assert report.pairs == 3
    assert report.by_file == {str(path): 3}
    assert report.by_format == {"explicit": 3}
    assert report.skipped == {}


def test_explicit_without_prompt_is_empty_prompt_not_suspicious(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "np.jsonl", [{"chosen": "a", "rejected": "b"}])
    ds, report = read_preferences(path)
    assert ds["prompt"] == [""]
    assert ds["suspicious"] == [[]]
    assert report.by_format == {"explicit": 1}


def test_hh_split_keeps_all_text(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "harmless-base.test.jsonl.gz", HH)
    ds, report = read_preferences(path)
    assert report.by_format == {"hh": 2}
    assert ds["source"] == ["harmless-base", "harmless-base"]
    assert ds[0]["prompt"] == "\n\nHuman: Hi there\n\nAssistant:"
    assert ds[0]["chosen"] == " Hello! How can I help?"  # the exact remainder, space kept
    assert ds[0]["rejected"] == " Go away."
    assert ds[1]["prompt"].endswith("\n\nHuman: A pun\n\nAssistant:")
    for row, raw in zip(ds, HH, strict=True):
        assert row["prompt"] + row["chosen"] == raw["chosen"]
        assert row["prompt"] + row["rejected"] == raw["rejected"]
        assert row["suspicious"] == []


def test_conversational_implicit_prompt(tmp_path: Path) -> None:
    ds, report = read_preferences(write_jsonl(tmp_path / "conv.jsonl", CONVERSATIONAL))
    assert report.by_format == {"conversational": 1}
    assert ds[0]["prompt"] == "\n\nHuman: Hi\n\nAssistant:"
    assert ds[0]["chosen"] == " Hello!"
    assert ds[0]["rejected"] == " Bye."
    assert ds[0]["suspicious"] == []


def test_conversational_explicit_prompt_and_roles(tmp_path: Path) -> None:
    record = {
        "prompt": [{"role": "system", "content": "Be brief."},
                   {"role": "user", "content": "Capital of France?"}],
        "chosen": [{"role": "assistant", "content": "Paris."}],
        "rejected": [{"role": "assistant", "content": "Lyon."}],
    }
    ds, _ = read_preferences(write_jsonl(tmp_path / "conv.jsonl", [record]))
    assert ds[0]["prompt"] == "\n\nSystem: Be brief.\n\nHuman: Capital of France?\n\nAssistant:"
    assert (ds[0]["chosen"], ds[0]["rejected"]) == (" Paris.", " Lyon.")


def test_conversational_diverging_early_is_flagged(tmp_path: Path) -> None:
    record = {
        "chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey"},
                   {"role": "user", "content": "Joke?"}, {"role": "assistant", "content": "Ha"}],
        "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "No"},
                     {"role": "user", "content": "Joke?"}, {"role": "assistant", "content": "No"}],
    }
    ds, report = read_preferences(write_jsonl(tmp_path / "conv.jsonl", [record]))
    assert ds[0]["prompt"] == "\n\nHuman: Hi\n\nAssistant:"
    assert ds[0]["chosen"] == " Hey\n\nHuman: Joke?\n\nAssistant: Ha"
    assert ds[0]["suspicious"] == ["early_divergence"]
    assert len(report.suspicious["early_divergence"]) == 1


@pytest.mark.parametrize("mapping", [
    "prompt=instruction,chosen=output_1,rejected=output_2,id=uid",
    {"prompt": "instruction", "chosen": "output_1", "rejected": "output_2", "id": "uid"},
])
def test_mapped(tmp_path: Path, mapping: str | dict[str, str]) -> None:
    records = [{"uid": 7, "instruction": "Q", "output_1": "good", "output_2": "bad", "prompt": "x"}]
    ds, report = read_preferences(write_jsonl(tmp_path / "m.jsonl", records), mapping=mapping)
    assert report.by_format == {"mapped": 1}
    row = ds[0]
    assert (row["id"], row["prompt"], row["chosen"], row["rejected"]) == ("7", "Q", "good", "bad")
    # An unmapped input column named like an output column is kept, renamed, not overwritten.
    assert row["input_prompt"] == "x"


def test_mapped_missing_column_names_it(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [{"instruction": "Q", "output_1": "a"}])
    with pytest.raises(DataError) as info:
        read_preferences(path, mapping="prompt=instruction,chosen=output_1,rejected=output_2")
    assert "m.jsonl: line 1: field 'output_2': missing (the mapping's rejected column)" in str(
        info.value)


def test_bad_mapping_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--map"):
        read_preferences(write_jsonl(tmp_path / "a.jsonl", EXPLICIT), mapping="answer=out")


def test_save_to_disk_dataset_and_dataset_dict(tmp_path: Path) -> None:
    rows = {k: [r[k] for r in EXPLICIT] for k in ("prompt", "chosen", "rejected")}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "single"))
    ds, report = read_preferences(tmp_path / "single")
    assert ds["chosen"] == rows["chosen"]
    assert ds["source"] == ["single"] * 3
    assert report.by_file == {str(tmp_path / "single"): 3}

    split = datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows),
                                  "test": datasets.Dataset.from_dict(rows).select([0])})
    split.save_to_disk(str(tmp_path / "dd"))
    ds, report = read_preferences(tmp_path / "dd")
    assert ds["source"] == ["train"] * 3 + ["test"]  # splits concatenated, named by split
    assert report.by_file == {f"{tmp_path / 'dd'}[train]": 3, f"{tmp_path / 'dd'}[test]": 1}


def test_source_column_is_kept(tmp_path: Path) -> None:
    records = [{**r, "source": "web"} for r in EXPLICIT]
    ds, _ = read_preferences(write_jsonl(tmp_path / "a.jsonl", records))
    assert ds["source"] == ["web"] * 3


def test_several_paths_glob_and_folder(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", EXPLICIT[:1])
    b = write_jsonl(tmp_path / "b.jsonl.gz", EXPLICIT[1:])
    ds, report = read_preferences([b, a])  # the order given, not sorted
    assert ds["source"] == ["b", "b", "a"]
    ds, report = read_preferences(str(tmp_path / "*.jsonl*"))
    assert ds["source"] == ["a", "b", "b"]
    assert list(report.by_file) == [str(a), str(b)]
    ds, _ = read_preferences(tmp_path)  # a folder of data files
    assert ds["source"] == ["a", "b", "b"]


def test_json_file_holding_json_lines(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "lines.json", EXPLICIT)
    assert len(read_preferences(path)[0]) == 3


def test_own_unique_ids_are_used(tmp_path: Path) -> None:
    records = [{**r, "id": 100 + i} for i, r in enumerate(EXPLICIT)]
    ds, _ = read_preferences(write_jsonl(tmp_path / "a.jsonl", records))
    assert ds["id"] == ["100", "101", "102"]
    assert "input_id" not in ds.column_names


def test_non_unique_ids_are_replaced_and_kept(tmp_path: Path) -> None:
    records = [{**r, "id": "same"} for r in EXPLICIT]
    ds, _ = read_preferences(write_jsonl(tmp_path / "a.jsonl", records))
    assert len(set(ds["id"])) == 3
    assert all(len(i) == 16 for i in ds["id"])  # content hashes
    assert ds["input_id"] == ["same"] * 3
    # Hash ids are stable: the same content gives the same id on every load.
    assert read_preferences(tmp_path / "a.jsonl")[0]["id"] == ds["id"]


def test_same_ids_in_two_files_are_made_unique(tmp_path: Path) -> None:
    records = [{**r, "id": f"p{i}"} for i, r in enumerate(EXPLICIT)]
    a = write_jsonl(tmp_path / "a.jsonl", records)
    b = write_jsonl(tmp_path / "b.jsonl", [{**r, "chosen": r["chosen"] + "!"} for r in records])
    ds, _ = read_preferences([a, b])
    assert ds["id"] == ["p0", "p1", "p2", "p0-1", "p1-1", "p2-1"]
    assert ds["suspicious"] == [[]] * 6  # same id, different pairs: not duplicates


def test_hub_failure_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(name: str) -> None:
        raise ConnectionError(f"Couldn't reach '{name}' on the Hub (OfflineModeIsEnabled)\nmore")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError) as info:
        read_preferences("someone/prefs")
    message = str(info.value)
    assert message.startswith("someone/prefs: not a local file or folder, and loading it from "
                              "the Hugging Face Hub failed: ConnectionError: Couldn't reach")
    assert "\n" not in message


def test_hub_dataset_dict(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = {k: [r[k] for r in EXPLICIT] for k in ("prompt", "chosen", "rejected")}
    loaded = datasets.DatasetDict({"test": datasets.Dataset.from_dict(rows)})
    monkeypatch.setattr(datasets, "load_dataset", lambda name: loaded)
    ds, report = read_preferences("someone/prefs")
    assert ds["source"] == ["test"] * 3
    assert report.by_file == {"someone/prefs[test]": 3}


def test_on_bad_must_be_known(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'error', 'skip'"):
        read_preferences(write_jsonl(tmp_path / "a.jsonl", EXPLICIT), on_bad="ignore")


def test_load_preferences_returns_dataset_and_logs(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [*EXPLICIT, EXPLICIT[0], {"prompt": "x"}])
    with caplog.at_level(logging.WARNING, logger="rewardlab"):
        ds = load_preferences(path, on_bad="skip")
    assert len(ds) == 4
    assert "skipped 1 malformed record(s): missing_field 1" in caplog.text
    assert "suspicious pairs (kept): duplicate 1" in caplog.text


def test_json_file_holding_one_object(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps(EXPLICIT[0], indent=2))
    ds, _ = read_preferences(path)
    assert ds["chosen"] == ["4"]
