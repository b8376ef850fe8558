"""Kept ties in the strength stage, and one loading grammar across commands (issue 20)."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from toy_data import BAD, GOOD

from rewardlab.cli import main
from rewardlab.config import LoadConfig, SplitConfig
from rewardlab.files import read_json
from rewardlab.stages.prepare import prepare_data

FAST = ["--epochs", "8", "--batch-size", "16", "--proj-dim", "16", "--quiet"]
WINNER_MAP = "prompt=q,a=x,b=y,winner=w"


def winner_rows(n: int, ties: int) -> list[dict[str, str]]:
    """``n`` labelled pairs (the good response on a random side) and ``ties`` tied ones."""
    rng = random.Random(0)
    rows = []
    for i in range(n + ties):
        good, bad = f"{rng.choice(GOOD)} [{i}]", f"{rng.choice(BAD)} [{i}]"
        side = rng.choice("ab")
        x, y = (good, bad) if side == "a" else (bad, good)
        rows.append({"q": f"Question {i}: help with topic {i % 11}.", "x": x, "y": y,
                     "w": "tie" if i >= n else side})
    return rows


def test_kept_ties_get_no_rank_group_or_category(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "ties.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in winner_rows(40, 10)))
    out = tmp_path / "s"
    assert main(["strength", str(data), "-o", str(out), "--members", "2", "--map", WINNER_MAP,
                 "--ties", "half", *FAST]) == 0
    assert "10 kept ties have no direction" in capsys.readouterr().out
    table = pq.read_table(out / "strength" / "strength.parquet").to_pylist()
    ties = [r for r in table if r["target"] == 0.5]
    assert len(ties) == 10
    assert all(r["strength_rank"] is None and r["strength_group"] is None
               and r["category"] is None for r in ties)
    ranked = [r for r in table if r["target"] == 1.0]
    assert sorted(r["strength_rank"] for r in ranked) == list(range(40))
    summary = read_json(out / "strength" / "summary.json")
    assert summary["ties_left_out"] == 10
    negative = sum(r["strength_mean"] < 0 for r in ranked) / 40
    assert summary["fraction_negative"] == pytest.approx(negative)


def test_quiet_keeps_skip_counts_and_warnings(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    rows = [{"prompt": f"q{i}", "chosen": f"c{i}", "rejected": f"r{i}", "rating": i % 3}
            for i in range(30)]
    data = tmp_path / "a.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{broken\n")
    with caplog.at_level(logging.WARNING, logger="rewardlab"):  # what --quiet lets through
        prepare_data([str(data)], load=LoadConfig(on_bad="skip"), split=SplitConfig(), seed=0)
    assert "skipped 1 malformed record(s)" in caplog.text
    assert "column 'rating' holds numbers" in caplog.text


def test_winner_values_with_a_leading_minus_as_a_separate_argument(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"prompt": f"q{i}", "r1": f"one {i}", "r2": f"two {i}", "s": [-2, 0, 3][i % 3]}
            for i in range(6)]
    data = tmp_path / "hs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["inspect", str(data), "--map", "a=r1,b=r2,winner=s", "--winner-values",
                 "-2=a,0=tie,3=b", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["pairs"] == 4 and result["ties_dropped"] == 2


def test_score_takes_the_loading_flags_and_refuses_to_overwrite(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rewardlab.cli import build_parser

    _, subs = build_parser()
    flags = {s for a in subs["score"]._actions for s in a.option_strings}
    assert {"--winner-values", "--ties", "--min-score-gap", "--ranking-pairs",
            "--overwrite"} <= flags
    out = tmp_path / "scores.jsonl"
    out.write_text("keep me\n")
    data = tmp_path / "a.jsonl"
    data.write_text(json.dumps({"prompt": "q", "chosen": "c", "rejected": "r"}) + "\n")
    assert main(["score", str(tmp_path / "no-model"), str(data), "-o", str(out)]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_text() == "keep me\n"
