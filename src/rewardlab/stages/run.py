"""The main job: load → split → strength → groups → compare → final model → report.

Every stage writes its results under one folder and records a fingerprint of its inputs in the
run's ``stages.json``. A rerun with the same settings reuses finished stages (and the feature
cache), so it costs only what is new; a stage whose inputs changed is run again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.config import (
    CommonConfig,
    ExperimentConfig,
    InputConfig,
    LoadConfig,
    ModelConfig,
    NoiseConfig,
    OutputConfig,
    RunConfig,
    SplitConfig,
    StrengthConfig,
    config_dict,
)
from rewardlab.denoise import bind_floor, resolve_plan
from rewardlab.evaluation import paired_bootstrap, pick_stability
from rewardlab.files import read_json, write_json
from rewardlab.layout import RunLayout, best_method, supported_method
from rewardlab.models import Pairs
from rewardlab.seeds import derive_seed
from rewardlab.stages.command import CommandResult
from rewardlab.stages.experiments import (
    held_out_splits,
    prepared_split,
    run_compare,
    run_groups,
)
from rewardlab.stages.prepare import Prepared, prepare_data, require_validation
from rewardlab.stages.strength import noise_floor, noise_lines, run_strength
from rewardlab.stages.tables import write_pairs_table
from rewardlab.stages.train import run_train

__all__ = ["RunOutput", "StageLedger", "run_all", "run_command"]

log = logging.getLogger("rewardlab")


def _digest(obj: Any) -> str:
    return hashlib.blake2b(json.dumps(obj, sort_keys=True, default=str).encode(),
                           digest_size=10).hexdigest()


class StageLedger:
    """The run's ``stages.json``: which stages finished, under which input fingerprint."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, Any] = read_json(self.path) if self.path.is_file() else {}

    def done(self, stage: str, fingerprint: str, *outputs: Path) -> bool:
        entry = self.entries.get(stage)
        return (entry is not None and entry.get("fingerprint") == fingerprint
                and all(p.exists() for p in outputs))

    def record(self, stage: str, fingerprint: str, seconds: float) -> None:
        # No wall-clock time in the file: a rerun must write the same bytes (it goes to the log).
        self.entries[stage] = {"fingerprint": fingerprint}
        write_json(self.path, self.entries)
        log.info("%s: finished in %.1f s", stage, seconds)

    def run(self, stage: str, fingerprint: str, outputs: Sequence[Path],
            work: Callable[[], object]) -> None:
        """Run ``work`` unless ``stage`` finished under ``fingerprint`` with all its
        ``outputs`` present; record it when it finishes."""
        if self.done(stage, fingerprint, *outputs):
            log.info("%s: reusing earlier results", stage)
            return
        t0 = time.perf_counter()
        work()
        self.record(stage, fingerprint, time.perf_counter() - t0)


@dataclass
class RunOutput:
    """Where the main job put things."""

    out_dir: Path
    outputs: dict[str, Path]
    best_method: dict[str, Any]


@dataclass(frozen=True)
class RunSettings:
    """Everything ``run`` reads besides the data paths."""

    load: LoadConfig
    split: SplitConfig
    model: ModelConfig
    """``members`` is the strength ensemble; the experiments train single models."""
    strength: StrengthConfig
    noise: NoiseConfig
    experiment: ExperimentConfig
    final_members: int = 1
    """M of the final model (``--final-members``)."""


def run_all(paths: Sequence[str], *, out: RunLayout, settings: RunSettings,
            progress: bool = True, report: bool = True) -> RunOutput:
    """Run every stage of the paper's pipeline on ``paths``; see the module docstring."""
    s = settings
    out.root.mkdir(parents=True, exist_ok=True)
    ledger = StageLedger(out.stages_json)
    prep = prepare_data(paths, load=s.load, split=s.split, seed=s.model.seed, noise=s.noise)
    require_validation(prep, s.split)
    # Texts and labels in order, plus ids (the strength file is joined by id).
    data_fp = _digest([[Pairs.from_dataset(d).digest(), list(d["id"])]
                       for d in (prep.train, prep.valid, prep.test)])

    # Strength on the training split only: no held-out pair may leak into denoising.
    s_fp = _digest([data_fp, config_dict(s.model), config_dict(s.strength)])
    ledger.run("strength", s_fp, [out.strength_parquet, out.strength_summary],
               lambda: run_strength(prep.train, model=s.model, strength=s.strength, layout=out,
                                    progress=progress))
    import pyarrow.parquet as pq

    u = np.asarray(pq.read_table(out.strength_parquet, columns=["strength_mean"])
                   .column("strength_mean").to_numpy(), dtype=np.float64)
    write_held_out(prep, out)
    best = _experiments(ledger, out, s, prep, u, s_fp, progress)
    write_json(out.run_json, {
        "data": _data_section(prep),
        "settings": {**config_dict(s.model), "scheme": s.strength.scheme,
                     "folds": s.strength.folds, "seeds": s.experiment.seeds,
                     "inject_flips": s.noise.inject_flips},
        "split": prep.report["split"],
        "best_method": best,
        **instrument_section(read_json(out.strength_summary)),
    })
    outputs = {"run summary": out.run_json, "strength": out.strength_parquet,
               "strength summary": out.strength_summary, "groups": out.groups_json,
               "compare": out.compare_json, "final model": out.final.model_dir,
               "final metrics": out.final.metrics_json}
    if report:
        from rewardlab.report import build_report

        outputs.update(figures=out.figures_dir,
                       report=build_report(out.root, progress=progress).html)
    return RunOutput(out.root, outputs, best)


def _experiments(ledger: StageLedger, out: RunLayout, s: RunSettings, prep: Prepared,
                 u: np.ndarray, s_fp: str, progress: bool) -> dict[str, Any]:
    """groups, compare and the final model; returns the best method's record."""
    exp_model = dataclasses.replace(s.model, members=1)
    common = CommonConfig(quiet=not progress)
    floor = noise_floor(read_json(out.strength_summary))
    data: dict[str, Any] = {}

    def prepared() -> dict[str, Any]:  # encode only when a stage has to run
        if not data:
            data.update(train=prepared_split(exp_model, prep.train, common),
                        held_out=held_out_splits(exp_model, prep, common))
        return data

    g_fp = _digest([s_fp, config_dict(exp_model), s.experiment.seeds])
    ledger.run("groups", g_fp, [out.groups_json], lambda: run_groups(
        prepared()["train"], prepared()["held_out"], u, model=exp_model,
        seeds=s.experiment.seeds, out=out, progress=progress))
    c_fp = _digest([s_fp, config_dict(exp_model), config_dict(s.experiment)])
    ledger.run("compare", c_fp, [out.compare_json], lambda: run_compare(
        prepared()["train"], prepared()["held_out"], u, model=exp_model,
        methods=s.experiment.method_list, seeds=s.experiment.seeds,
        eval_every=s.experiment.eval_every, out=out, progress=progress, floor=floor))
    best = best_method(read_json(out.compare_json))
    assert best is not None, "compare.json holds no method"
    best.update(gain_interval(out, best))
    final_model = dataclasses.replace(exp_model, members=s.final_members,
                                      seed=derive_seed(s.model.seed, "final"))
    f_fp = _digest([c_fp, best["method"], s.final_members])
    ledger.run("final", f_fp, [out.final.metrics_json], lambda: run_train(
        prep.train, {"valid": prep.valid, "test": prep.test}, model=final_model,
        plan=bind_floor(resolve_plan(best["method"]), floor), strength_mean=u, out=out.final,
        progress=progress,
        extra={"method": best["method"]}))
    return best


def write_held_out(prep: Prepared, out: RunLayout) -> None:
    """Keep the validation and test pairs (column ``split``) beside the run: nothing denoises
    them, and ``export --include-held-out`` can add them back unchanged."""
    import datasets

    parts = [ds.add_column("split", [name] * len(ds))
             for name, ds in (("valid", prep.valid), ("test", prep.test)) if len(ds)]
    write_pairs_table(datasets.concatenate_datasets(parts), {}, out.held_out_parquet)


def gain_interval(out: RunLayout, best: dict[str, Any]) -> dict[str, Any]:
    """The 95% bootstrap interval of the best method's gain over the baseline, over the pairs
    of the split the gain was measured on *and* the training seeds (read from compare's saved
    predictions), and how stable the pick on validation is."""
    import pyarrow.parquet as pq

    if not out.compare_predictions.is_file():
        return {}
    cols = pq.read_table(out.compare_predictions).to_pydict()
    valid = {m: seed_correct(cols, "valid", m).mean(axis=0) for m in sorted(set(cols["method"]))}
    stability = pick_stability(valid) if all(len(v) for v in valid.values()) else {}
    extra = {"pick_share": stability.get(best["method"])} if stability else {}
    if best["method"] == "baseline":
        return extra
    method = seed_correct(cols, best["gain_split"], best["method"])
    base = seed_correct(cols, best["gain_split"], "baseline")
    if base.shape[1] == 0 or base.shape != method.shape:
        return extra
    res = paired_bootstrap(method, base)
    low, high = res["ci95"]
    return {**extra, "gain_ci95": res["ci95"], "gain_pairs": res["n"],
            "gain_seeds": res["seeds"], "distinguishable": bool(low > 0 or high < 0)}


def seed_correct(cols: dict[str, list[Any]], split: str, method: str) -> np.ndarray:
    """``[S, N]`` 0/1: whether each training seed ranked each pair of ``split`` right under
    ``method``, pairs in their split order (from compare's predictions table)."""
    rows = [i for i, (sp, m) in enumerate(zip(cols["split"], cols["method"]))
            if sp == split and m == method]
    rows.sort(key=lambda i: cols["pair"][i])
    if not rows:
        return np.zeros((1, 0))
    deltas = np.asarray([cols["delta_seeds"][i] for i in rows], dtype=np.float64)  # [N, S]
    return (deltas > 0).T.astype(np.float64)


def instrument_section(summary: dict[str, Any]) -> dict[str, Any]:
    """What run.json keeps of the strength summary's self-test and noise floor (the verdict
    lines read them from there)."""
    keep = ("auroc", "auroc_ci95", "ok", "verdict", "enrichment_lowest_20", "skipped")
    out: dict[str, Any] = {}
    if "instrument" in summary:
        out["instrument"] = {k: v for k, v in summary["instrument"].items() if k in keep}
    if "noise" in summary:
        out["noise"] = summary["noise"]
    return out


def _data_section(prep: Prepared) -> dict[str, Any]:
    rep = prep.report["train_data"]
    by_source: dict[str, int] = {}
    for ds in (prep.train, prep.valid, prep.test):
        if "source" in ds.column_names:
            for s in ds["source"]:
                by_source[s] = by_source.get(s, 0) + 1
    suspicious = {k: (v["count"] if isinstance(v, dict) else len(v))
                  for k, v in rep.get("suspicious", {}).items()}
    return {"pairs": rep.get("pairs"), "by_file": rep.get("by_file"), "by_source": by_source,
            "skipped": rep.get("skipped"), "suspicious": suspicious}


def run_command(*, data: InputConfig, load: LoadConfig, split: SplitConfig, model: ModelConfig,
                strength: StrengthConfig, noise: NoiseConfig, experiment: ExperimentConfig,
                run: RunConfig, output: OutputConfig, common: CommonConfig) -> CommandResult:
    """``rewardlab run``: every stage into one folder, resuming what already finished."""
    settings = RunSettings(load, split, model, strength, noise, experiment,
                           final_members=run.resolved_final_members(model))
    layout = RunLayout.of(output.folder())
    res = run_all(data.data, out=layout, settings=settings, progress=not common.quiet,
                  report=not run.no_report)
    summary = read_json(layout.run_json)
    return CommandResult([*verdict_lines(summary), *next_steps(res, summary)], res.outputs, res)


def verdict_lines(run_summary: dict[str, Any]) -> list[str]:
    """What the run found, in words that never go beyond its numbers: the self-test's verdict,
    what the noise estimate means, and the best method without naming a winner that the held-out
    pairs cannot tell apart."""
    b = run_summary["best_method"]
    lines = noise_lines(run_summary)
    gain, ci = b.get("gain_over_baseline"), b.get("gain_ci95")
    where = "test" if b["gain_split"] == "test" else "validation (there is no test split)"
    if b["method"] == "baseline" or gain is None:
        return [*lines, f"best method on validation: {b['method']} (valid accuracy "
                f"{b['valid_accuracy_mean']:.4f}); no denoising method beat the baseline"]
    interval = f" (95% CI {ci[0]:+.4f} to {ci[1]:+.4f}, over pairs and seeds)" if ci else ""
    if supported_method(run_summary) == "baseline":
        lines.append(f"no method is distinguishable from the baseline on {b.get('gain_pairs')} "
                     f"{where} pairs: the best on validation, {b['method']}, gains "
                     f"{gain:+.4f}{interval}")
    else:
        lines.append(f"best method: {b['method']}, picked on validation; on {where} it gains "
                     f"{gain:+.4f} over the baseline{interval}")
    share = b.get("pick_share")
    if share is not None and share < 0.5:
        lines.append(f"the pick itself is uncertain: {b['method']} is best in only {share:.0%} "
                     f"of bootstrap resamples of the validation pairs")
    return lines


def next_steps(res: RunOutput, run_summary: dict[str, Any]) -> list[str]:
    """Where to look next, and an export command only for what the numbers support."""
    lines = ["", "next:"]
    if "report" in res.outputs:
        lines.append(f"  open {res.outputs['report']}")
    method = supported_method(run_summary)
    if method == "baseline":
        lines.append(f"  rewardlab export {res.out_dir} -o pairs.jsonl --method baseline   "
                     f"# the training pairs as labelled: no method earned a change")
    else:
        lines.append(f"  rewardlab export {res.out_dir} -o cleaned.jsonl --method {method}   "
                     f"# training pairs with {method} applied, for TRL")
    if run_summary.get("instrument", {}).get("ok") is False:
        lines.append("  the ensemble is too weak on this data to name wrong labels: read the "
                     "README's 'Which instrument' before acting on its ranks")
    return lines
