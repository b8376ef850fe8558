"""NaN and ±inf in numeric extra columns, from the data file through strength, export and the
report: carried through (Parquet keeps them; strict JSON writes null) or refused by the loader
with a clear error, never a crash."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from rewardlab.cli import main

FAST = ["--members", "2", "--epochs", "2", "--proj-dim", "8", "--quiet"]
VALUES = [math.nan, math.inf, -math.inf, 1.5, 2.0]


def _strict(text: str) -> object:
    def refuse(token: str) -> None:
        raise AssertionError(f"not strict JSON: {token}")
    return json.loads(text, parse_constant=refuse)


def test_non_finite_extras_are_carried_or_refused(toy_file: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    rows = [json.loads(line) for line in toy_file.read_text().splitlines()]
    for i, row in enumerate(rows):
        row["score"] = VALUES[i % 5]
        row["votes_for_chosen"] = VALUES[(i + 1) % 5]
        row["votes_against"] = 0 if i % 2 else VALUES[(i + 2) % 5]
    data = tmp_path / "nonfinite.jsonl"  # Python's json writes NaN / Infinity tokens
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"

    code = main(["strength", str(data), "-o", str(out), *FAST])
    err = capsys.readouterr().err
    if code != 0:  # the loader may refuse such columns: then clearly, naming the column
        assert "Traceback" not in err and ("score" in err or "votes" in err), err
        return
    table = pq.read_table(out / "strength" / "strength.parquet")
    scores = table.column("score").to_pylist()
    assert math.isinf(scores[1]) and math.isnan(scores[0])  # Parquet carries them exactly
    lines = (out / "strength" / "strength.jsonl").read_text().splitlines()
    assert [_strict(line)["score"] for line in lines[:5]] == [None, None, None, 1.5, 2.0]
    summary = _strict((out / "strength" / "summary.json").read_text())
    agreement = summary["human_agreement"]
    finite = sum(math.isfinite(r["votes_for_chosen"]) and math.isfinite(r["votes_against"])
                 for r in rows)
    assert agreement["votes_unknown"] == len(rows) - finite
    assert agreement["unanimous"] + agreement["split"] == finite

    for suffix in (".jsonl", ".parquet"):
        pairs = tmp_path / f"pairs{suffix}"
        assert main(["export", str(out), "--method", "flip", "-o", str(pairs), "--quiet"]) == 0
        if suffix == ".jsonl":
            for line in pairs.read_text().splitlines():
                _strict(line)
    assert main(["report", str(out), "--quiet"]) == 0
