"""The loader on the real shared data sets: HH-RLHF (4 test files) and PandaLM.

The expected counts are properties of the data and the splitting rule; where possible they are
cross-checked by a simple independent computation on the raw records.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from rewardlab.data import DataError, read_preferences, split_train_valid

pytestmark = pytest.mark.shared

MARKER = "\n\nAssistant:"
HH_PAIRS = 8552
HH_SUSPICIOUS = {"empty_prompt": 0, "empty_response": 11, "identical": 36, "duplicate": 0,
                 "early_divergence": 17}


@pytest.fixture(scope="module")
def hh_files(shared_data: Path) -> list[Path]:
    files = sorted((shared_data / "hh-rlhf").glob("*.jsonl.gz"))
    if len(files) != 4:
        pytest.skip("the 4 HH-RLHF test files are not in ../shared/data/hh-rlhf")
    return files


@pytest.fixture(scope="module")
def hh(hh_files: list[Path]) -> tuple[Any, Any, list[dict[str, str]]]:
    """The loaded dataset, its report, and the raw records in the same order."""
    ds, report = read_preferences(hh_files)
    raw = []
    for path in hh_files:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            raw.extend(json.loads(line) for line in fh if line.strip())
    return ds, report, raw


def common_prefix(a: str, b: str) -> str:
    """The longest common prefix, character by character (the plain definition)."""
    n = 0
    for x, y in zip(a, b, strict=False):  # stops at the shorter string on purpose
        if x != y:
            break
        n += 1
    return a[:n]


def test_hh_pairs_and_prompts(hh: tuple[Any, Any, list[dict[str, str]]]) -> None:
    ds, report, raw = hh
    assert len(ds) == report.pairs == len(raw) == HH_PAIRS
    assert report.by_format == {"hh": HH_PAIRS}
    assert report.warnings == []
    assert set(ds["source"]) == {"harmless-base", "helpful-base", "helpful-online",
                                 "helpful-rejection-sampled"}
    assert len(set(ds["id"])) == HH_PAIRS
    for prompt in ds["prompt"]:
        assert prompt.endswith(MARKER)
        assert prompt.strip()
    # No text lost anywhere: prompt + response rebuilds both dialogues of every pair.
    for p, c, r, rec in zip(ds["prompt"], ds["chosen"], ds["rejected"], raw, strict=True):
        assert p + c == rec["chosen"]
        assert p + r == rec["rejected"]


def test_hh_suspicious_counts(hh: tuple[Any, Any, list[dict[str, str]]]) -> None:
    ds, report, raw = hh
    assert {k: len(v) for k, v in report.suspicious.items()} == HH_SUSPICIOUS
    # Independent check with the plain rule "split each dialogue at its last marker".
    identical = early = empty = 0
    for rec in raw:
        c, r = rec["chosen"], rec["rejected"]
        cut_c, cut_r = c.rfind(MARKER) + len(MARKER), r.rfind(MARKER) + len(MARKER)
        identical += c == r
        early += c[:cut_c] != r[:cut_r]
        empty += not c[cut_c:].strip() or not r[cut_r:].strip()
    assert identical == HH_SUSPICIOUS["identical"]
    assert early == HH_SUSPICIOUS["early_divergence"]
    assert empty == HH_SUSPICIOUS["empty_response"]
    flagged = [kinds for kinds in ds["suspicious"] if kinds]
    assert sum(len(k) for k in flagged) == sum(HH_SUSPICIOUS.values())


def test_hh_early_diverging_pair(hh: tuple[Any, Any, list[dict[str, str]]]) -> None:
    ds, report, raw = hh
    first_id = report.suspicious["early_divergence"][0]
    index = ds["id"].index(first_id)
    row, rec = ds[index], raw[index]
    shared = common_prefix(rec["chosen"], rec["rejected"])
    assert row["prompt"] == shared[:shared.rfind(MARKER) + len(MARKER)]
    assert row["prompt"] + row["chosen"] == rec["chosen"]
    assert row["prompt"] + row["rejected"] == rec["rejected"]
    # The responses run over more than one turn in at least one of the two dialogues.
    assert any("Human:" in text or MARKER in text for text in (row["chosen"], row["rejected"]))


def test_hh_split_is_grouped(hh: tuple[Any, Any, list[dict[str, str]]]) -> None:
    ds = hh[0]
    train, valid = split_train_valid(ds, valid_frac=0.1, seed=0)
    assert len(train) + len(valid) == HH_PAIRS
    assert 0.05 * HH_PAIRS < len(valid) < 0.15 * HH_PAIRS
    assert not set(train["prompt"]) & set(valid["prompt"])
    assert split_train_valid(ds, valid_frac=0.1, seed=0)[1]["id"] == valid["id"]


@pytest.fixture(scope="module")
def pandalm(shared_data: Path) -> Path:
    path = shared_data / "pandalm" / "pandalm-test.jsonl"
    if not path.is_file():
        pytest.skip("../shared/data/pandalm/pandalm-test.jsonl not found")
    return path


def test_pandalm_error_names_line_and_field(pandalm: Path) -> None:
    with pytest.raises(DataError) as info:
        read_preferences(pandalm)
    assert str(info.value) == (f"{pandalm}: line 140: field 'chosen': expected a string, "
                               "got a boolean (true)")


def test_pandalm_skip(pandalm: Path) -> None:
    ds, report = read_preferences(pandalm, on_bad="skip")
    assert len(ds) == report.pairs == 908
    assert report.skipped == {"wrong_type": 6}
    assert report.by_format == {"explicit": 908}
    # votes_against is 0/1 but counts votes: no "looks like a winner label" warning.
    assert report.warnings == []
    assert {k: len(v) for k, v in report.suspicious.items()} == {
        "empty_prompt": 0, "empty_response": 53, "identical": 0, "duplicate": 110,
        "early_divergence": 0}
    assert ds.column_names[6:] == ["votes_for_chosen", "votes_against", "ties"]
