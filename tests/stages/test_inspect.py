"""``inspect_data``: load report plus token lengths, as JSON-able data and as text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rewardlab.stages.inspect import MAX_IDS_SHOWN, format_inspect, inspect_data

RECORDS = [
    {"prompt": "What is the capital of France?", "chosen": "Paris is the capital of France.",
     "rejected": "Lyon."},
    {"prompt": "Say hello.", "chosen": "Hello there, friend!", "rejected": "Hello there, friend!"},
    {"prompt": "Count to three.", "chosen": "one two three", "rejected": ""},
]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inspect") / "small.jsonl"
    lines = [json.dumps(r) for r in RECORDS] + ['{"prompt": "broken"']
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def result(data_file: Path) -> dict[str, Any]:
    # Loading the bundled tokenizer is the slow part: do it once for the module.
    return inspect_data(data_file, on_bad="skip", max_length=5)


def test_keys_and_counts(result: dict[str, Any], data_file: Path) -> None:
    for key in ("pairs", "by_file", "by_format", "skipped", "skipped_examples", "suspicious",
                "tokens"):
        assert key in result
    assert result["pairs"] == 3
    assert result["by_file"] == {str(data_file): 3}
    assert result["by_format"] == {"explicit": 3}
    assert result["skipped"] == {"malformed_json": 1}
    assert result["suspicious"]["identical"]["count"] == 1
    assert result["suspicious"]["empty_response"]["count"] == 1
    assert result["suspicious"]["duplicate"] == {"count": 0, "ids": []}
    json.dumps(result)  # JSON-able as is


def test_token_stats_are_sane(result: dict[str, Any]) -> None:
    tokens = result["tokens"]
    assert tokens["model"] == "all-MiniLM-L6-v2"
    for part in ("prompt", "response"):
        stats = tokens[part]
        assert 0 < stats["p50"] <= stats["p95"] <= stats["max"] < 20
    assert tokens["response"]["max"] >= 6  # "Paris is the capital of France."
    over = tokens["over_max_length"]
    assert over["max_length"] == 5
    assert over["prompt"] == 1  # only the France question is longer than 5 tokens
    assert 1 <= over["response"] < 6


def test_format_inspect(result: dict[str, Any]) -> None:
    text = format_inspect(result)
    assert text.startswith("3 pairs from 1 input\n")
    for words in ("by format: explicit 3", "prompt ", "response ", "identical: 1",
                  "empty_response: 1", "skipped records: malformed_json 1",
                  "longer than 5 tokens: 1 prompts"):
        assert words in text


def test_ids_are_capped(tmp_path: Path) -> None:
    path = tmp_path / "dups.jsonl"
    record = json.dumps({"prompt": "p", "chosen": "a", "rejected": "a"})
    path.write_text("\n".join([record] * 30))
    result = inspect_data(path)
    assert result["suspicious"]["identical"]["count"] == 30
    assert len(result["suspicious"]["identical"]["ids"]) == MAX_IDS_SHOWN
    assert "tokens" in result and "over_max_length" not in result["tokens"]


def test_cli_json_has_the_documented_keys(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from rewardlab.cli import main

    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n'
                    '{"prompt": "p", "chosen": "same", "rejected": "same"}\n', encoding="utf-8")
    assert main(["inspect", str(data), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"pairs", "by_file", "skipped", "suspicious"} <= set(out)
    assert out["pairs"] == 2 and out["suspicious"]["identical"]["count"] == 1


def test_cli_reports_malformed_input_without_traceback(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from rewardlab.cli import main

    data = tmp_path / "bad.jsonl"
    data.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": 1\n',
                    encoding="utf-8")
    assert main(["inspect", str(data)]) == 1
    err = capsys.readouterr().err
    assert "bad.jsonl" in err and "line 2" in err and "Traceback" not in err
