"""`rewardlab score`: single responses and pairs, both backends, both output kinds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from rewardlab.cli import main
from rewardlab.serve.scorer import EnsembleScorer


def read_rows(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_score_single_responses(tmp_path: Path, embedding_model: Path, suffix: str,
                                capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "responses.jsonl"
    rows = [{"prompt": f"Question {i}: help?", "response": r, "tag": i}
            for i, r in enumerate(["Sure! Here is a clear answer.", "No.", "Whatever."])]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / f"scores{suffix}"
    assert main(["score", str(embedding_model), str(data), "-o", str(out),
                 "--uncertainty-penalty", "2", "--quiet", "--chunk", "2"]) == 0
    printed = capsys.readouterr().out
    assert "found responses: 3" in printed and "M=1" not in printed
    got = read_rows(out)
    assert [r["tag"] for r in got] == [0, 1, 2]  # input columns kept, in order
    scorer = EnsembleScorer.load(embedding_model, penalty=2.0)
    expected = scorer.score([r["prompt"] for r in rows], [r["response"] for r in rows])
    members = np.array([r["reward_members"] for r in got]).T  # [M, N]
    np.testing.assert_allclose(members, expected.members, atol=1e-5)
    np.testing.assert_allclose([r["reward_mean"] for r in got], members.mean(0), atol=1e-9)
    np.testing.assert_allclose([r["reward_std"] for r in got], members.std(0), atol=1e-9)
    np.testing.assert_allclose([r["reward_uwo"] for r in got],
                               members.mean(0) - 2.0 * members.var(0), atol=1e-9)
    np.testing.assert_allclose([r["reward_min"] for r in got], members.min(0), atol=1e-9)


def test_score_pairs_gives_both_sides_and_delta(tmp_path: Path, embedding_model: Path,
                                                toy_pairs_file: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "pairs.parquet"
    assert main(["score", str(embedding_model), str(toy_pairs_file), "-o", str(out),
                 "--quiet"]) == 0
    assert "found pairs: 60" in capsys.readouterr().out
    table = pq.read_table(out)
    assert {"chosen_reward_mean", "rejected_reward_uwo", "delta_mean", "delta_std",
            "delta_members", "truly_flipped", "id"} <= set(table.column_names)
    chosen = np.array(table.column("chosen_reward_members").to_pylist())
    rejected = np.array(table.column("rejected_reward_members").to_pylist())
    delta = chosen - rejected  # [N, M]
    np.testing.assert_allclose(table.column("delta_members").to_pylist(), delta, atol=1e-9)
    np.testing.assert_allclose(table.column("delta_mean").to_numpy(), delta.mean(1), atol=1e-9)
    np.testing.assert_allclose(table.column("delta_std").to_numpy(), delta.std(1), atol=1e-9)
    # The same Δ as the model's own pair scoring (what `strength` measures).
    from rewardlab.data import read_preferences
    from rewardlab.models import Pairs, load_reward_model

    ds, _ = read_preferences([toy_pairs_file])
    np.testing.assert_allclose(delta.T, load_reward_model(embedding_model, progress=False)
                               .score(Pairs.from_dataset(ds)).numpy(), atol=1e-5)


def test_score_with_the_finetune_backend(tmp_path: Path, finetune_model: Path) -> None:
    data = tmp_path / "r.jsonl"
    data.write_text(json.dumps({"prompt": "the cat", "response": "good dog"}) + "\n"
                    + json.dumps({"prompt": "the sun", "response": "bad moon"}) + "\n")
    out = tmp_path / "ft.jsonl"
    assert main(["score", str(finetune_model), str(data), "-o", str(out), "--quiet"]) == 0
    got = read_rows(out)
    assert len(got[0]["reward_members"]) == 2
    expected = EnsembleScorer.load(finetune_model, penalty=1.0).score(
        ["the cat", "the sun"], ["good dog", "bad moon"])
    np.testing.assert_allclose([r["reward_members"] for r in got], expected.members.T,
                               atol=1e-5)


def test_score_refuses_other_output_kinds(tmp_path: Path, embedding_model: Path,
                                          toy_pairs_file: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    assert main(["score", str(embedding_model), str(toy_pairs_file), "-o",
                 str(tmp_path / "x.csv")]) == 1
    assert "write to a .parquet or .jsonl file" in capsys.readouterr().err


def test_negative_penalty_names_the_flag(embedding_model: Path, toy_pairs_file: Path,
                                         tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["score", str(embedding_model), str(toy_pairs_file), "-o",
                 str(tmp_path / "x.jsonl"), "--uncertainty-penalty", "-1"]) == 2
    assert "--uncertainty-penalty: must be finite and >= 0" in capsys.readouterr().err


def test_score_with_one_member_says_there_is_no_uncertainty(
        tmp_path: Path, one_member_model: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "responses.jsonl"
    data.write_text(json.dumps({"prompt": "Question?", "response": "Answer."}) + "\n")
    out = tmp_path / "scores.jsonl"
    assert main(["score", str(one_member_model), str(data), "-o", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("one member (M=1): no uncertainty") == 1
    (row,) = read_rows(out)
    assert row["reward_std"] == 0 and row["reward_uwo"] == row["reward_min"] == row["reward_mean"]
