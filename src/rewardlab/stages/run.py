"""The main job: load → split → strength → groups → compare → final model → report.

Every stage writes its results under one folder and records a fingerprint of its inputs in
``OUT/stages.json``. A rerun with the same settings reuses finished stages (and the feature
cache), so it costs only what is new; a stage whose inputs changed is run again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.config import (
    ExperimentConfig,
    LoadConfig,
    ModelConfig,
    SplitConfig,
    StrengthConfig,
    config_dict,
)
from rewardlab.denoise import resolve_plan
from rewardlab.files import read_json, write_json
from rewardlab.models.base import Pairs
from rewardlab.stages.experiments import run_compare, run_groups
from rewardlab.stages.prepare import prepare_data
from rewardlab.stages.strength import run_strength
from rewardlab.stages.train import run_train

__all__ = ["RunOutput", "run_all"]

log = logging.getLogger("rewardlab")


def _digest(obj: Any) -> str:
    return hashlib.blake2b(json.dumps(obj, sort_keys=True, default=str).encode(),
                           digest_size=10).hexdigest()


class StageLedger:
    """``OUT/stages.json``: which stages finished, under which input fingerprint."""

    def __init__(self, out: Path) -> None:
        self.path = out / "stages.json"
        self.entries: dict[str, Any] = read_json(self.path) if self.path.is_file() else {}

    def done(self, stage: str, fingerprint: str, *outputs: Path) -> bool:
        entry = self.entries.get(stage)
        return (entry is not None and entry.get("fingerprint") == fingerprint
                and all(p.exists() for p in outputs))

    def record(self, stage: str, fingerprint: str, seconds: float) -> None:
        self.entries[stage] = {"fingerprint": fingerprint, "seconds": round(seconds, 2)}
        write_json(self.path, self.entries)


@dataclass
class RunOutput:
    """Where the main job put things."""

    out_dir: Path
    outputs: dict[str, Path]
    best_method: dict[str, Any]


def run_all(paths: Sequence[str], *, out_dir: str | os.PathLike[str], load: LoadConfig,
            split: SplitConfig, model: ModelConfig, strength: StrengthConfig,
            experiment: ExperimentConfig, strength_members: int = 10,
            progress: bool = True, report: bool = True) -> RunOutput:
    """Run every stage of the paper's pipeline on ``paths``; see the module docstring."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ledger = StageLedger(out)

    prep = prepare_data(paths, load=load, split=split, seed=model.seed, strength=strength)
    train_pairs, valid_pairs = Pairs.from_dataset(prep.train), Pairs.from_dataset(prep.valid)
    if len(prep.valid) == 0:
        raise ValueError("--valid-frac 0 leaves no validation pairs; the main job needs them")
    # Texts and labels in order, plus ids (the strength file is joined by id).
    data_fp = _digest([train_pairs.digest(), valid_pairs.digest(),
                       list(prep.train["id"]), list(prep.valid["id"])])

    # Strength on the training split only: no validation pair may leak into denoising.
    s_model = dataclasses.replace(model, members=strength_members)
    s_fp = _digest([data_fp, config_dict(s_model), config_dict(strength)])
    s_dir = out / "strength"
    if not ledger.done("strength", s_fp, s_dir / "strength.parquet", s_dir / "summary.json"):
        t0 = time.perf_counter()
        run_strength(prep.train, model=s_model, strength=strength, out_dir=s_dir,
                     progress=progress)
        ledger.record("strength", s_fp, time.perf_counter() - t0)
    else:
        log.info("strength: reusing %s", s_dir)
    import pyarrow.parquet as pq

    u = np.asarray(pq.read_table(s_dir / "strength.parquet", columns=["strength_mean"])
                   .column("strength_mean").to_numpy(), dtype=np.float64)

    exp_model = dataclasses.replace(model, members=1)
    g_fp = _digest([s_fp, config_dict(exp_model), experiment.seeds])
    if not ledger.done("groups", g_fp, out / "groups" / "groups.json"):
        t0 = time.perf_counter()
        run_groups(train_pairs, valid_pairs, u, model=exp_model, seeds=experiment.seeds,
                   out_dir=out / "groups", progress=progress)
        ledger.record("groups", g_fp, time.perf_counter() - t0)

    c_fp = _digest([s_fp, config_dict(exp_model), config_dict(experiment)])
    if not ledger.done("compare", c_fp, out / "compare" / "compare.json"):
        t0 = time.perf_counter()
        run_compare(train_pairs, valid_pairs, u, model=exp_model,
                    methods=experiment.method_list, seeds=experiment.seeds,
                    eval_every=experiment.eval_every, out_dir=out / "compare", progress=progress)
        ledger.record("compare", c_fp, time.perf_counter() - t0)
    compare = read_json(out / "compare" / "compare.json")
    best = max(compare, key=lambda r: r["valid_accuracy_mean"])
    base = next((r for r in compare if r["method"] == "baseline"), None)
    best_info = {"method": best["method"], "valid_accuracy_mean": best["valid_accuracy_mean"],
                 "gain_over_baseline": (best["valid_accuracy_mean"] - base["valid_accuracy_mean"]
                                        if base else None)}

    f_fp = _digest([c_fp, best["method"]])
    if not ledger.done("final", f_fp, out / "final" / "metrics.json"):
        t0 = time.perf_counter()
        run_train(prep.train, prep.valid, model=exp_model, plan=resolve_plan(best["method"]),
                  strength_mean=u, out_dir=out / "final", progress=progress,
                  extra={"method": best["method"]})
        ledger.record("final", f_fp, time.perf_counter() - t0)

    write_json(out / "run.json", {
        "data": _data_section(prep),
        "settings": {**config_dict(model), "members": strength_members,
                     "scheme": strength.scheme, "folds": strength.folds,
                     "seeds": experiment.seeds, "inject_flips": strength.inject_flips},
        "split": prep.report["split"],
        "best_method": best_info,
    })
    outputs = {
        "run summary": out / "run.json",
        "strength": s_dir / "strength.parquet",
        "strength summary": s_dir / "summary.json",
        "groups": out / "groups" / "groups.json",
        "compare": out / "compare" / "compare.json",
        "final model": out / "final" / "model",
        "final metrics": out / "final" / "metrics.json",
    }
    if report:
        from rewardlab.report import build_report

        result = build_report(out, progress=progress)
        outputs["figures"] = out / "figures"
        outputs["report"] = result.html
    return RunOutput(out, outputs, best_info)


def _data_section(prep: Any) -> dict[str, Any]:
    rep = prep.report["train_data"]
    by_source: dict[str, int] = {}
    for ds in (prep.train, prep.valid):
        if "source" in ds.column_names:
            for s in ds["source"]:
                by_source[s] = by_source.get(s, 0) + 1
    suspicious = {k: (v["count"] if isinstance(v, dict) else len(v))
                  for k, v in rep.get("suspicious", {}).items()}
    return {"pairs": rep.get("pairs"), "by_file": rep.get("by_file"), "by_source": by_source,
            "skipped": rep.get("skipped"), "suspicious": suspicious}
