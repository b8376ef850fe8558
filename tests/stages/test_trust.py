"""The numbers can be trusted: no leak, no orientation mismatch, no scoring of trained pairs,
clear refusals on data too small for a command, and byte-identical reruns."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from toy_data import write_toy

from rewardlab.cli import main
from rewardlab.config import ModelConfig, StrengthConfig
from rewardlab.files import read_json
from rewardlab.models import FitResult, Pairs, PreparedPairs
from rewardlab.stages import strength as strength_stage

FAST = ["--epochs", "6", "--batch-size", "16", "--proj-dim", "16", "--quiet"]


def _strength_file(out: Path) -> str:
    return str(out / "strength" / "strength.parquet")


# -- leaks and orientation -------------------------------------------------------------------

@pytest.fixture
def measured_on_everything(tmp_path: Path) -> tuple[Path, Path]:
    """Strength measured on all pairs (with known flips): it covers held-out pairs too."""
    data = write_toy(tmp_path / "toy.jsonl", 80, flip_every=5)
    s = tmp_path / "s"
    assert main(["strength", str(data), "-o", str(s), "--members", "2", "--inject-flips", "0.2",
                 *FAST]) == 0
    return data, s


@pytest.mark.parametrize("command", ["train", "groups", "compare"])
def test_strength_measured_on_held_out_pairs_is_refused(
        command: str, measured_on_everything: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    data, s = measured_on_everything
    args = [command, str(data), "-o", str(tmp_path / command), "--strength-file",
            _strength_file(s), "--inject-flips", "0.2", *FAST]
    if command == "train":
        args += ["--method", "flip"]
    if command == "compare":
        args += ["--methods", "baseline,flip", "--seeds", "1"]
    if command == "groups":
        args += ["--seeds", "1"]
    assert main(args) == 1
    err = capsys.readouterr().err
    found = re.search(r"(\d+) validation/test pairs were measured", err)
    assert found and "--allow-overlap" in err
    assert 0 < int(found.group(1)) < 80
    # With the explicit flag the same command runs, and the join is in the right orientation.
    assert main([*args, "--allow-overlap"]) == 0


def test_strength_of_the_other_orientation_is_refused(
        measured_on_everything: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    data, s = measured_on_everything
    base = ["train", str(data), "-o", str(tmp_path / "t"), "--strength-file", _strength_file(s),
            "--method", "flip", "--allow-overlap", *FAST]
    # Same injected flips: the strength file and the training pairs agree pair by pair (ids
    # decide the flips, not N or the split), so the join succeeds ...
    assert main([*base, "--inject-flips", "0.2"]) == 0
    # ... other flips (or none) leave some pairs the other way round: refused, counted.
    capsys.readouterr()
    assert main([*base, "--inject-flips", "0.2", "--inject-seed", "7"]) == 1
    err = capsys.readouterr().err
    assert "stored with chosen and rejected the other way round" in err
    assert main(base) == 1
    assert "other way round" in capsys.readouterr().err


# -- cross-fitting never scores what it trained on ---------------------------------------------

class _Spy:
    """A stand-in backend: records which pair indices each model trained on and scored, and
    scores pair i as 1000 * model number + i, so the placement of every Δ can be checked."""

    trains_members_jointly = True
    log: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, config: ModelConfig, **_: Any) -> None:
        self.config, self.number = config, len(_Spy.log)
        _Spy.log.append({"members": config.members, "trained": None, "scored": None})

    def fit(self, inputs: Any, **_: Any) -> FitResult:
        _Spy.log[self.number]["trained"] = set(inputs.index.tolist())
        return FitResult(train_loss=0.0, steps=1)

    def score(self, inputs: Any) -> torch.Tensor:
        _Spy.log[self.number]["scored"] = inputs.index.tolist()
        row = torch.as_tensor(inputs.index, dtype=torch.float64) + 1000.0 * self.number
        return row.expand(self.config.members, -1).float()


class _Index:
    def __init__(self, index: np.ndarray) -> None:
        self.index = index

    def subset(self, idx: Any) -> _Index:
        return _Index(self.index[np.asarray(idx, dtype=np.int64)])


@pytest.mark.parametrize("joint", [True, False])
def test_crossfit_jobs_never_train_on_the_pairs_they_score(
        joint: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    _Spy.log = []
    spy = type("Spy", (_Spy,), {"trains_members_jointly": joint})
    monkeypatch.setattr(strength_stage, "backend_class", lambda name: spy)
    monkeypatch.setattr(strength_stage, "build_reward_model", lambda cfg, **kw: spy(cfg))
    monkeypatch.setattr(strength_stage, "prepare_pairs", lambda cfg, pairs, **kw: PreparedPairs(
        pairs, _Index(np.arange(len(pairs)))))
    prompts = [f"p{i % 13}" for i in range(60)]  # 13 prompts, unevenly repeated
    pairs = Pairs(prompts, [f"c{i}" for i in range(60)], [f"r{i}" for i in range(60)])
    delta = strength_stage.ensemble_deltas(
        pairs, model=ModelConfig(members=3), strength=StrengthConfig(scheme="crossfit", folds=4),
        progress=False)
    assert len(_Spy.log) == (4 if joint else 12)
    scored_by_member = np.zeros((3, 60), dtype=int)
    for number, job in enumerate(_Spy.log):
        assert job["trained"] and not job["trained"] & set(job["scored"])
        assert {prompts[i] for i in job["trained"]}.isdisjoint(prompts[i] for i in job["scored"])
        # Every Δ lands where its model put it.
        members = range(3) if joint else [number % 3]
        for m in members:
            assert (delta[m, job["scored"]] == 1000.0 * number + np.array(job["scored"])).all()
            scored_by_member[m, job["scored"]] += 1
    assert (scored_by_member == 1).all()


def test_folds_balance_pair_counts_not_prompt_counts() -> None:
    # One prompt with 40 pairs and 20 prompts with 1: dealing prompts round-robin would leave
    # one fold with about 44 pairs and the others about 4.
    keys = ["big"] * 40 + [f"p{i}" for i in range(20)]
    folds = strength_stage.assign_folds(keys, 4, seed=0)
    sizes = np.bincount(folds, minlength=4)
    assert sizes.tolist().count(40) == 1 and sorted(sizes)[:3] == [6, 7, 7]
    assert len({f for k, f in zip(keys, folds) if k == "big"}) == 1


def test_fewer_prompts_than_folds_is_a_clear_error(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"prompt": f"q{i % 3}", "chosen": f"good {i}", "rejected": f"bad {i}"}
            for i in range(30)]
    data = tmp_path / "three.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["strength", str(data), "-o", str(tmp_path / "s"), "--scheme", "crossfit",
                 "--folds", "5", *FAST]) == 1
    err = capsys.readouterr().err
    assert "--folds 5" in err and "has 3" in err and "Traceback" not in err


# -- small and degenerate data -------------------------------------------------------------------

def test_groups_refuse_fewer_than_ten_pairs_with_a_preference(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(8)]
    rows += [{"prompt": f"same {i}", "chosen": "x", "rejected": "x"} for i in range(12)]
    held = [{"prompt": f"held {i}", "chosen": f"good h{i}", "rejected": f"bad h{i}"}
            for i in range(6)]
    data, valid = tmp_path / "few.jsonl", tmp_path / "valid.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    valid.write_text("".join(json.dumps(r) + "\n" for r in held))
    assert main(["groups", str(data), "-o", str(tmp_path / "g"), "--members", "2", "--seeds",
                 "1", "--valid", str(valid), "--test-frac", "0", *FAST]) == 1
    err = capsys.readouterr().err
    assert "at least 10 training pairs that carry a preference" in err
    assert "this split has 8" in err and "12 identical pairs or kept ties left out" in err


def test_identical_pairs_are_left_out_before_ranking(tmp_path: Path) -> None:
    data = write_toy(tmp_path / "toy.jsonl", 60, flip_every=5)
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    rows += [{"prompt": f"Question {i}", "chosen": "same", "rejected": "same"} for i in range(9)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "g"
    assert main(["groups", str(data), "-o", str(out), "--members", "2", "--seeds", "1",
                 "--valid", str(data), "--test-frac", "0", *FAST]) == 0
    groups = read_json(out / "groups" / "groups.json")
    assert sum(g["n_train"] for g in groups) == 60
    assert {g["identical_left_out"] for g in groups} == {9}
    assert max(g["n_train"] for g in groups) - min(g["n_train"] for g in groups) <= 1
    table = pq.read_table(out / "strength" / "strength.parquet").to_pylist()
    same = [r for r in table if r["chosen"] == r["rejected"]]
    assert len(same) == 9
    assert all(r["strength_group"] is None and r["category"] is None for r in same)
    assert sorted(r["strength_rank"] for r in table if r["strength_rank"] is not None) == list(
        range(60))


def test_thirty_pair_run_end_to_end(tmp_path: Path) -> None:
    data = write_toy(tmp_path / "toy.jsonl", 30, flip_every=5)
    out = tmp_path / "run"
    assert main(["run", str(data), "-o", str(out), "--members", "3", "--seeds", "1",
                 "--methods", "baseline,flip,margin", "--scheme", "crossfit", "--folds", "3",
                 *FAST]) == 0
    run = read_json(out / "run.json")
    assert sum(run["split"].values()) == 30 and min(run["split"].values()) >= 1
    final = read_json(out / "final" / "metrics.json")
    assert final["test"]["n"] == run["split"]["test"]
    # The final model is an ensemble (--final-members defaults to --members for embedding), so
    # score and serve have an uncertainty to report; its members are reported one by one.
    assert final["settings"]["members"] == 3 and final["test"]["members"] == 3
    assert len(final["test"]["member_accuracy"]) == 3
    model_info = read_json(out / "final" / "model" / "rewardlab.json")
    assert model_info["config"]["members"] == 3


@pytest.mark.parametrize("backend, members, asked, expected", [
    ("embedding", 10, None, 10), ("finetune", 10, None, 1), ("finetune", 10, 3, 3),
    ("embedding", 10, 1, 1)])
def test_final_members_default_per_backend(backend: str, members: int, asked: int | None,
                                           expected: int) -> None:
    from rewardlab.config import ConfigError, ModelConfig, RunConfig

    model = ModelConfig(backend=backend, members=members)
    assert RunConfig(final_members=asked).resolved_final_members(model) == expected
    with pytest.raises(ConfigError, match="--final-members"):
        RunConfig(final_members=0)


def test_same_seed_reruns_are_byte_identical_with_one_member(tmp_path: Path) -> None:
    data = write_toy(tmp_path / "toy.jsonl", 80, flip_every=5)
    outs = [tmp_path / name for name in ("a", "b")]
    for out in outs:
        assert main(["run", str(data), "-o", str(out), "--members", "1", "--seeds", "2",
                     "--methods", "baseline,flip,smooth", "--no-report", "--seed", "5",
                     *FAST]) == 0
    files = ["strength/strength.parquet", "strength/summary.json", "groups/groups.json",
             "compare/compare.json", "final/metrics.json", "final/model/heads.safetensors",
             "final/model/rewardlab.json", "run.json", "stages.json"]
    for rel in files:  # no wall-clock time is written anywhere: every byte repeats
        assert (outs[0] / rel).read_bytes() == (outs[1] / rel).read_bytes(), rel
    summary = read_json(outs[0] / "strength" / "summary.json")
    assert summary["members"] == 1 and summary["mean"]["strength_std"] == 0.0


def test_experiment_seeds_are_not_the_strength_members_seeds(tmp_path: Path) -> None:
    from rewardlab.seeds import derive_seed
    from rewardlab.stages.experiments import _seed_configs

    model = ModelConfig(seed=4)
    jobs = strength_stage.plan_jobs(["p"] * 3, members=2, scheme="insample", folds=2, seed=4,
                                    joint=False)
    experiment_seeds = {c.seed for c in _seed_configs(model, 3)}
    assert not experiment_seeds & {job.seed for job in jobs}
    assert experiment_seeds == {derive_seed(4, "experiment", k) for k in range(3)}


def test_gain_interval_reads_the_saved_predictions(tmp_path: Path) -> None:
    import pyarrow as pa

    from rewardlab.files import write_table
    from rewardlab.layout import RunLayout
    from rewardlab.stages.run import gain_interval

    out = RunLayout(tmp_path)
    rng = np.random.default_rng(0)
    n = 400
    base = (rng.random(n) < 0.55).astype(float)
    better = np.where(rng.random(n) < 0.3, 1.0, base)  # fixes about 30% of the baseline's errors
    rows = {"method": ["baseline"] * n + ["flip"] * n, "split": ["test"] * (2 * n),
            "pair": [*range(n), *reversed(range(n))],  # order must not matter
            "delta_mean": [0.0] * (2 * n), "correct": [*base, *better[::-1]]}
    rows["delta_seeds"] = [[1.0 if c else -1.0] for c in rows["correct"]]  # one seed
    write_table(out.compare_predictions, pa.table(rows))
    res = gain_interval(out, {"method": "flip", "gain_split": "test"})
    gain = float((better - base).mean())
    low, high = res["gain_ci95"]
    assert res["gain_pairs"] == n and low < gain < high and low > 0 and res["distinguishable"]
    assert gain_interval(out, {"method": "baseline", "gain_split": "test"}) == {}
