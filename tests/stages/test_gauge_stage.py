"""The self-test inside the strength stage, and `run`'s words checked against its numbers."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from toy_data import write_toy

from rewardlab.cli import main
from rewardlab.config import ModelConfig, StrengthConfig
from rewardlab.files import read_json
from rewardlab.layout import supported_method
from rewardlab.models import Pairs
from rewardlab.noise import flips_by_id
from rewardlab.seeds import derive_seed
from rewardlab.stages import strength as strength_stage
from rewardlab.stages.run import next_steps, verdict_lines

FAST = ["--epochs", "6", "--batch-size", "16", "--proj-dim", "16", "--quiet"]


class _Dataset(dict):
    """Columns by name, as ``datasets.Dataset`` indexing gives them."""


def _fake_ensemble(truth: np.ndarray, seen: list[Pairs], *, blind: bool):
    """An ensemble that knows each pair's true direction (``truth`` [N], +1 = chosen is better),
    or a blind one (noise); records the pairs (and targets) it was asked to fit."""
    def run(pairs: Pairs, **_: Any) -> strength_stage.EnsembleRun:
        seen.append(pairs)
        rng = np.random.default_rng(0)
        delta = rng.normal(0, 1, (3, len(pairs))) if blind else np.tile(truth, (3, 1))
        return strength_stage.EnsembleRun(delta)
    return run


@pytest.mark.parametrize("blind", [False, True])
def test_self_test_flips_by_id_through_the_target_and_scores_the_copy(
        blind: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    n = 400
    ids = [f"id{i}" for i in range(n)]
    pairs = Pairs([f"p{i}" for i in range(n)], [f"c{i}" for i in range(n)],
                  [f"r{i}" for i in range(n)], target=np.r_[np.full(n - 10, 1.0), [0.5] * 10])
    seen: list[Pairs] = []
    monkeypatch.setattr(strength_stage, "ensemble_run",
                        _fake_ensemble(np.ones(n), seen, blind=blind))
    model = ModelConfig(members=3, seed=7)
    out = strength_stage.self_test(_Dataset(id=ids), pairs, model=model,
                                   strength=StrengthConfig(self_test_rate=0.1), layout=None)
    flips = flips_by_id(ids, 0.1, seed=derive_seed(7, "self-test"))
    flips[-10:] = False  # kept ties carry no direction: never flipped, never scored
    # The copy trains towards 1 - t exactly where the self-test flipped.
    np.testing.assert_array_equal(seen[0].target, np.where(flips, 0.0, pairs.target))
    assert out["flipped"] == int(flips.sum()) and out["pairs"] == n - 10
    assert out["rate"] == 0.1 and out["members"] == 3
    if blind:
        assert not out["ok"] and "too weak to act on" in out["verdict"]
    else:  # an ensemble that knows the truth finds every flip
        assert out["auroc"] == 1.0 and out["ok"] and out["oof_accuracy"] == 1.0


def test_strength_records_the_self_test_and_the_noise_status(tmp_path: Path) -> None:
    data = write_toy(tmp_path / "toy.jsonl", 120, flip_every=5)
    out = tmp_path / "s"
    assert main(["strength", str(data), "-o", str(out), "--members", "3", "--folds", "3",
                 *FAST]) == 0
    summary = read_json(out / "strength" / "summary.json")
    inst, noise = summary["instrument"], summary["noise"]
    assert inst["folds"] == 3 and inst["flipped"] > 0
    assert noise["instrument_ok"] == inst["ok"]
    assert summary["estimated_noise_rate"] == noise["rate"]
    if not inst["ok"]:
        assert noise["rate"] == 0 and noise["status"] == "no evidence"
    # --no-self-test skips it; the status then cannot be "clean".
    out2 = tmp_path / "s2"
    assert main(["strength", str(data), "-o", str(out2), "--members", "3", "--no-self-test",
                 *FAST]) == 0
    summary = read_json(out2 / "strength" / "summary.json")
    assert "instrument" not in summary and summary["noise"]["status"] != "clean"


def test_self_test_flags_refuse_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["strength", "x.jsonl", "-o", "o", "--self-test", "--no-self-test"]) == 2
    assert "--self-test and --no-self-test" in capsys.readouterr().err


def _summary(method: str, ci: list[float] | None, ok: bool | None,
             status: str) -> dict[str, Any]:
    best: dict[str, Any] = {"method": method, "valid_accuracy_mean": 0.6, "gain_split": "test",
                            "gain_over_baseline": None if method == "baseline" else 0.01}
    if ci is not None and method != "baseline":
        best.update(gain_ci95=ci, gain_pairs=50, distinguishable=ci[0] > 0 or ci[1] < 0)
    out: dict[str, Any] = {"best_method": best,
                           "noise": {"status": status, "rate": 0.1 if status == "estimated"
                                     else 0.0, "instrument_ok": ok}}
    if ok is not None:
        out["instrument"] = {"ok": ok, "verdict": f"VERDICT ok={ok}"}
    return out


CASES = list(itertools.product(
    ["baseline", "flip@posterior"], [None, [-0.01, 0.03], [0.005, 0.03], [-0.04, -0.01]],
    [True, False, None], ["estimated", "clean", "no evidence"]))


@pytest.mark.parametrize(("method", "ci", "ok", "status"), CASES)
def test_run_never_names_an_action_its_numbers_do_not_support(
        method: str, ci: list[float] | None, ok: bool | None, status: str) -> None:
    summary = _summary(method, ci, ok, status)
    lines = verdict_lines(summary)
    text = "\n".join(lines)
    supported = supported_method(summary)
    # A method is supported only with a positive, distinguishable test gain.
    assert supported == (method if method != "baseline" and ci is not None and ci[0] > 0
                         else "baseline") or (ci is None and supported == method)
    if supported == "baseline" and method != "baseline":
        assert "no method is distinguishable" in text or ci is None
        assert f"best method: {method}" not in text
    if ok is not None:
        assert f"VERDICT ok={ok}" in text
    if status == "no evidence":
        assert "means no evidence, not clean data" in text
    steps = "\n".join(next_steps(_Res(), summary))
    # The export suggestion is exactly the supported method, never the unsupported best.
    assert f"--method {supported} " in steps
    if supported != method:
        assert f"--method {method}" not in steps


class _Res:
    outputs: dict[str, Any] = {}  # noqa: RUF012
    out_dir = Path("OUT")
