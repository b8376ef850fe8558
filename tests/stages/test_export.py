"""export: what TRL reads keeps its meaning (orientation, margins, side columns, soft targets),
and nothing is dropped or overwritten without a word."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from toy_data import write_toy

from rewardlab.cli import main
from rewardlab.denoise import resolve_plan
from rewardlab.layout import supported_method
from rewardlab.stages.export import export_table, side_column_pairs

FAST = ["--epochs", "6", "--batch-size", "16", "--proj-dim", "16", "--quiet"]


def _table(u: list[float]) -> pa.Table:
    n = len(u)
    return pa.table({
        "id": [f"p{i}" for i in range(n)], "prompt": [f"q{i}" for i in range(n)],
        "chosen": [f"c{i}" for i in range(n)], "rejected": [f"r{i}" for i in range(n)],
        "chosen_score": [10.0 + i for i in range(n)],
        "rejected_score": [float(i) for i in range(n)],
        "votes_for_chosen": [3] * n, "votes_against": [0] * n,
        "strength_mean": u, "strength_std": [0.1] * n,
    })


def test_flipped_rows_swap_texts_and_side_columns_and_resign_the_margin() -> None:
    u = [0.4, -1.5, 2.0, -0.5, 1.0, 0.9, 0.3, 1.2, 0.8, 0.6]  # unsorted on purpose
    table, counts = export_table(_table(u), resolve_plan("flip+margin"))
    rows = {r["id"]: r for r in table.to_pylist()}
    assert counts["flipped"] == 2 and {k for k, r in rows.items() if r["flipped"]} == {"p1", "p3"}
    for k in ("p1", "p3"):
        i = int(k[1:])
        r = rows[k]
        assert (r["chosen"], r["rejected"]) == (f"r{i}", f"c{i}")
        assert (r["chosen_score"], r["rejected_score"]) == (float(i), 10.0 + i)
        assert (r["votes_for_chosen"], r["votes_against"]) == (0, 3)
        assert r["margin"] == -u[i] > 0  # agrees with the new label
    assert rows["p0"]["margin"] == 0.4 and rows["p0"]["chosen"] == "c0"
    assert "target" not in table.column_names  # TRL reads none: written only for smoothing
    assert "strength_std" not in table.column_names


def test_no_negative_zero_margin() -> None:
    table, _ = export_table(_table([0.0, -0.0, 1.0, 2.0, 3.0]), resolve_plan("flip@0.4"))
    margins = [r["margin"] for r in table.to_pylist()]
    assert all(json.dumps(m) != "-0.0" for m in margins)


def test_side_column_pairs() -> None:
    names = ["chosen", "rejected", "chosen_score", "rejected_score", "votes_for_chosen",
             "votes_against", "chosen_len"]
    assert sorted(side_column_pairs(names)) == [("chosen_score", "rejected_score"),
                                                ("votes_for_chosen", "votes_against")]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("run")
    data = write_toy(tmp / "toy.jsonl", 100, flip_every=5)
    out = tmp / "run"
    assert main(["run", str(data), "-o", str(out), "--members", "2", "--seeds", "1",
                 "--methods", "baseline,flip,smooth", "--no-report", *FAST]) == 0
    return out


def test_export_defaults_to_the_best_method_and_leaves_held_out_pairs_out(
        finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = json.loads((finished_run / "run.json").read_text())
    out = tmp_path / "pairs.jsonl"
    capsys.readouterr()
    assert main(["export", str(finished_run), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    # The method the run's numbers support: its best only when the test gain is distinguishable.
    method = supported_method(run)
    assert f"method: {method}: the run's best on validation" in text \
        or f"method: baseline: the run's best on validation, {run['best_method']['method']}, " \
           "is not distinguishable" in text
    held = run["split"]["valid"] + run["split"]["test"]
    assert f"{held} validation/test pairs left out; --include-held-out" in text
    rows = out.read_text().splitlines()
    assert len(rows) == run["split"]["train"]
    # An existing file is never replaced silently ...
    assert main(["export", str(finished_run), "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    # ... and --include-held-out appends the held-out pairs unchanged.
    assert main(["export", str(finished_run), "-o", str(out), "--overwrite",
                 "--include-held-out", "--method", "baseline"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 100
    extra = [r for r in rows if r.get("split") in ("valid", "test")]
    assert len(extra) == held and all(r["margin"] == 0.0 and not r["flipped"] for r in extra)


def test_smoothing_says_it_cannot_travel_to_trl(finished_run: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "smooth.parquet"
    assert main(["export", str(finished_run), "-o", str(out), "--method", "soft+margin"]) == 0
    text = capsys.readouterr().out
    assert "reads no soft target" in text and "nearest method TRL expresses is margin" in text
    import pyarrow.parquet as pq

    assert "target" in pq.read_table(out).column_names



def test_conversational_input_exports_as_trl_messages(tmp_path: Path) -> None:
    def chat(answer: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": answer}]

    rows = [{"chosen": chat(f"Hello there, friend number {i}!"), "rejected": chat("")}
            for i in range(40)]
    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    s = tmp_path / "s"
    assert main(["strength", str(data), "-o", str(s), "--members", "2", *FAST]) == 0
    out = tmp_path / "pairs.jsonl"
    assert main(["export", str(s), "-o", str(out), "--method", "flip@0.1", "--quiet"]) == 0
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(written) == 40 and sum(r["flipped"] for r in written) == 4
    for r in written:
        assert r["prompt"] == [{"role": "user", "content": "Say hi."}]
        answers = [r["chosen"][0]["content"], r["rejected"][0]["content"]]
        # The empty response stays empty, and a flip swaps the message lists.
        assert answers.index("") == (0 if r["flipped"] else 1)
        assert all(m["role"] == "assistant" for m in r["chosen"] + r["rejected"])
        assert not any(k.endswith("_messages") for k in r)
