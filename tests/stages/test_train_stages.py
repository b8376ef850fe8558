"""train / evaluate / groups / compare / export / run on small files, through the CLI."""

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from toy_data import GOOD, write_toy

from rewardlab.cli import main
from rewardlab.files import read_json

GOOD_START = tuple(GOOD)
FAST = ["--epochs", "6", "--batch-size", "16", "--proj-dim", "16", "--quiet"]


def test_train_writes_model_and_metrics(toy_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "t"
    assert main(["train", str(toy_file), "-o", str(out), "--valid-frac", "0.25",
                 "--test-frac", "0.25", "--score-train", *FAST]) == 0
    metrics = read_json(out / "metrics.json")
    assert 0 <= metrics["valid"]["accuracy"] <= 1
    parts = [metrics[k]["n"] for k in ("train", "valid", "test")]
    assert sum(parts) == 80 and min(parts) > 0
    assert set(metrics["valid"]["accuracy_by_source"]) <= {"alpha", "beta"}
    assert (out / "model" / "rewardlab.json").is_file()
    # evaluate reloads the saved model and reproduces the training-time numbers: on all 80
    # pairs, its accuracy and mean Δ are the pair-weighted means of the three splits'.
    out2 = tmp_path / "e"
    assert main(["evaluate", str(out / "model"), str(toy_file), "-o", str(out2), "--quiet"]) == 0
    again = read_json(out2 / "metrics.json")["valid"]
    assert again["n"] == 80
    for key in ("accuracy", "mean_delta"):
        weighted = sum(metrics[k][key] * metrics[k]["n"] for k in ("train", "valid", "test"))
        assert again[key] == pytest.approx(weighted / 80, abs=1e-6)


def test_train_with_flip_uses_strength_and_reports_counts(tmp_path: Path) -> None:
    data = write_toy(tmp_path / "toy.jsonl", 80, flip_every=5)
    s = tmp_path / "s"
    assert main(["strength", str(data), "-o", str(s), "--members", "2", *FAST]) == 0
    out = tmp_path / "t"
    assert main(["train", str(data), "-o", str(out), "--valid-frac", "0", "--test-frac", "0",
                 "--strength-file", str(s / "strength" / "strength.parquet"),
                 "--method", "flip", *FAST]) == 0
    metrics = read_json(out / "metrics.json")
    assert "train" not in metrics  # scoring the training pairs is asked for (--score-train)
    d = metrics["denoise"]
    assert d["flipped"] == 16 and d["trained_on"] == 80
    # Every fifth toy label is wrong, and strength ranks those lowest: the pairs flip flips are
    # the wrong ones (checked against the file's own record of them), so flipping repairs them.
    exported = tmp_path / "pairs.jsonl"
    assert main(["export", str(s), "--method", "flip", "-o", str(exported), "--quiet"]) == 0
    rows = [json.loads(line) for line in exported.read_text().splitlines()]
    flipped = [r for r in rows if r["flipped"]]
    assert len(flipped) == 16
    assert sum(r["truly_flipped"] for r in flipped) >= 14
    assert all(r["chosen"].startswith(GOOD_START) for r in flipped if r["truly_flipped"])


def test_denoising_without_strength_is_a_clear_error(toy_file: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(toy_file), "-o", str(tmp_path / "t"), "--method", "flip",
                 *FAST]) == 1
    assert "--strength-file" in capsys.readouterr().err


def test_bad_flag_value_names_the_flag(toy_file: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["strength", str(toy_file), "-o", str(tmp_path), "--members", "0"]) == 2
    assert "--members" in capsys.readouterr().err
    assert main(["compare", str(toy_file), "-o", str(tmp_path), "--methods",
                 "baseline,clean"]) == 2
    assert "soft+margin" in capsys.readouterr().err  # lists the valid names
    assert main(["train", str(toy_file), "-o", str(tmp_path), "--method", "flip@0.3",
                 "--flip", "0.1"]) == 2
    assert "sets flip already" in capsys.readouterr().err


def test_groups_and_compare_measure_strength_on_train_only(toy_file: Path,
                                                           tmp_path: Path) -> None:
    out = tmp_path / "g"
    assert main(["groups", str(toy_file), "-o", str(out), "--valid-frac", "0.25", "--seeds", "2",
                 "--members", "2", *FAST]) == 0
    rows = read_json(out / "groups" / "groups.json")
    assert [r["group"] for r in rows] == list(range(1, 11))
    strength = pq.read_table(out / "strength" / "strength.parquet")
    assert sum(r["n_train"] for r in rows) == strength.num_rows < 80  # train split only
    assert all(len(r["valid_accuracy"]) == 2 for r in rows)
    means = [r["mean_strength"] for r in rows]
    assert means == sorted(means)

    out = tmp_path / "c"
    assert main(["compare", str(toy_file), "-o", str(out), "--valid-frac", "0.25", "--seeds", "2",
                 "--members", "2", "--methods", "baseline,flip,soft+margin",
                 *FAST]) == 0
    recs = {r["method"]: r for r in read_json(out / "compare" / "compare.json")}
    assert set(recs) == {"baseline", "flip", "soft+margin"}
    for r in recs.values():
        assert r["curve"] and r["curve"][-1]["valid_accuracy_mean"] == pytest.approx(
            r["valid_accuracy_mean"])
    assert recs["flip"]["denoise"]["flipped"] > 0


def test_export_writes_trl_columns(toy_file: Path, tmp_path: Path) -> None:
    s = tmp_path / "s"
    assert main(["strength", str(toy_file), "-o", str(s), "--members", "2", *FAST]) == 0
    out = tmp_path / "pairs.jsonl"
    assert main(["export", str(s), "--method", "flip+margin", "-o", str(out), "--quiet"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    table = pq.read_table(s / "strength" / "strength.parquet").to_pylist()
    by_id = {r["id"]: r for r in table}
    assert len(rows) == 80 and sum(r["flipped"] for r in rows) == 16
    for r in rows:
        orig = by_id[r["id"]]
        if r["flipped"]:  # swapped, and the margin agrees with the new orientation
            assert (r["chosen"], r["rejected"]) == (orig["rejected"], orig["chosen"])
            assert r["margin"] == pytest.approx(-orig["strength_mean"])
        else:
            assert r["margin"] == pytest.approx(orig["strength_mean"])
    assert all(r["margin"] > 0 for r in rows
               if r["flipped"] and by_id[r["id"]]["strength_mean"] < 0)


def test_run_end_to_end_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_toy(tmp_path / "toy.jsonl", 100, flip_every=5)
    out = tmp_path / "run"
    args = ["run", str(data), "-o", str(out), "--seeds", "1", "--members", "2",
            "--methods", "baseline,flip,smooth,margin", *FAST]
    assert main(args) == 0
    for rel in ("run.json", "stages.json", "strength/strength.parquet", "strength/summary.json",
                "groups/groups.json", "compare/compare.json", "final/metrics.json",
                "final/model/rewardlab.json", "report.html"):
        assert (out / rel).exists(), rel
    run = read_json(out / "run.json")
    assert run["best_method"]["method"] in {"baseline", "flip", "smooth", "margin"}
    assert run["split"]["train"] + run["split"]["valid"] + run["split"]["test"] == 100
    assert run["best_method"]["gain_split"] == "test"
    first = read_json(out / "stages.json")
    mtime = (out / "compare" / "compare.json").stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0  # a rerun reuses every finished stage
    assert read_json(out / "stages.json") == first
    assert (out / "compare" / "compare.json").stat().st_mtime_ns == mtime
    assert "report" in capsys.readouterr().out


def test_synthetic_set_has_known_flips(tmp_path: Path) -> None:
    data = write_toy(tmp_path / "toy.jsonl", 60)
    out = tmp_path / "syn.jsonl"
    assert main(["synthetic", str(data), "-o", str(out), "--flip-rate", "0.25", "--quiet"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    flips = np.array([r["injected_flip"] for r in rows])
    gaps = np.array([r["teacher_gap"] for r in rows])
    assert flips.sum() == 15
    assert (gaps[flips] < 0).all() and (gaps[~flips] > 0).all()
