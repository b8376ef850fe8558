"""Stages: the paper's two experiments.

* ``groups``: rank training pairs by û, cut them into 10 groups of 10%, train a fresh model on
  each group and evaluate it on the validation set (the data-contribution experiment).
* ``compare``: train with each denoising method and compare validation accuracy, loss,
  calibration and the accuracy curve over training steps.

Both repeat every setting over ``seeds`` (model seed s = base seed + k) and report mean ± std.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardlab.config import (
    CommonConfig,
    DenoiseConfig,
    ExperimentConfig,
    InputConfig,
    LoadConfig,
    ModelConfig,
    NoiseConfig,
    OutputConfig,
    SplitConfig,
    StrengthConfig,
)
from rewardlab.denoise import resolve_plan
from rewardlab.evaluation import preference_metrics
from rewardlab.files import write_json
from rewardlab.layout import RunLayout
from rewardlab.models import Pairs, PreparedPairs, prepare_pairs
from rewardlab.stages.command import CommandResult
from rewardlab.stages.denoising import strength_for_training
from rewardlab.stages.prepare import prepare_data
from rewardlab.stages.strength import run_strength
from rewardlab.stages.train import train_reward_model
from rewardlab.strength import strength_groups, strength_ranks

__all__ = ["compare_command", "groups_command", "run_compare", "run_groups"]


def _mean_std(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std())


def _seed_configs(model: ModelConfig, seeds: int) -> list[ModelConfig]:
    """One single-member config per seed: experiments measure single reward models."""
    return [dataclasses.replace(model, members=1, seed=model.seed + k) for k in range(seeds)]


def run_groups(train: PreparedPairs, valid: PreparedPairs, strength_mean: np.ndarray, *,
               model: ModelConfig, seeds: int = 3, out: RunLayout | None = None,
               progress: bool = True) -> list[dict[str, Any]]:
    """Validation accuracy of models trained on each 10% strength group of ``train``.

    Args:
        train: training pairs; ``strength_mean`` ``[N]`` is their û (from training data only).
        valid: validation pairs.

    Returns (and writes to ``out``'s groups.json) 10 records with ``group``, ``n_train``,
    ``mean_strength``, ``valid_accuracy_mean``, ``valid_accuracy_std``, ``train_loss`` and the
    per-seed ``valid_accuracy``.
    """
    from tqdm.auto import tqdm

    groups = strength_groups(strength_ranks(strength_mean))
    configs = _seed_configs(model, seeds)
    records = []
    bar = tqdm(total=10 * seeds, desc="groups", unit="model", disable=not progress)
    for g in range(1, 11):
        idx = np.flatnonzero(groups == g)
        subset = train.subset(idx)
        accs, losses = [], []
        for cfg in configs:
            outcome = train_reward_model(subset, model=cfg, progress=False)
            accs.append(preference_metrics(outcome.model.score(valid.inputs))["accuracy"])
            losses.append(outcome.fit.train_loss)
            bar.update(1)
        acc_mean, acc_std = _mean_std(accs)
        records.append({
            "group": g, "n_train": len(idx),
            "mean_strength": float(strength_mean[idx].mean()) if len(idx) else float("nan"),
            "valid_accuracy_mean": acc_mean, "valid_accuracy_std": acc_std,
            "train_loss": _mean_std(losses)[0], "valid_accuracy": accs,
        })
    bar.close()
    if out is not None:
        write_json(out.groups_json, records)
    return records


def _aggregate_curves(curves: list[list[dict[str, float]]]) -> list[dict[str, float]]:
    """Mean and std of validation accuracy at each step, over seeds."""
    by_step: dict[int, list[float]] = defaultdict(list)
    for curve in curves:
        for point in curve:
            by_step[int(point["step"])].append(point["valid_accuracy"])
    out = []
    for step in sorted(by_step):
        mean, std = _mean_std(by_step[step])
        out.append({"step": step, "valid_accuracy_mean": mean, "valid_accuracy_std": std})
    return out


def run_compare(train: PreparedPairs, valid: PreparedPairs, strength_mean: np.ndarray, *,
                model: ModelConfig, methods: list[str], seeds: int = 3, eval_every: int = 0,
                margin_scale: float | None = None, out: RunLayout | None = None,
                progress: bool = True) -> list[dict[str, Any]]:
    """Train with each denoising method (a preset name) and compare on ``valid``.

    Returns (and writes to ``out``'s compare.json) one record per method: ``method``,
    ``valid_accuracy_mean``, ``valid_accuracy_std``, ``valid_loss``, ``ece``, ``n_train``,
    ``denoise`` (counts), per-seed ``valid_accuracy`` and ``curve`` (accuracy over steps).
    """
    from tqdm.auto import tqdm

    plans = {m: resolve_plan(m, margin_scale=margin_scale) for m in methods}  # fail fast
    configs = _seed_configs(model, seeds)
    records = []
    bar = tqdm(total=len(plans) * seeds, desc="compare", unit="model", disable=not progress)
    for method, plan in plans.items():
        accs, losses, eces, curves = [], [], [], []
        counts: dict[str, int] = {}
        for cfg in configs:
            outcome = train_reward_model(train, model=cfg, plan=plan, strength_mean=strength_mean,
                                         valid=valid, eval_every=eval_every, progress=False)
            metrics = preference_metrics(outcome.model.score(valid.inputs))
            accs.append(metrics["accuracy"])
            losses.append(metrics["bt_loss"])
            eces.append(metrics["ece"])
            curves.append(outcome.fit.curve)
            counts = outcome.denoise
            bar.update(1)
        acc_mean, acc_std = _mean_std(accs)
        records.append({
            "method": method, "valid_accuracy_mean": acc_mean, "valid_accuracy_std": acc_std,
            "valid_loss": _mean_std(losses)[0], "ece": _mean_std(eces)[0],
            "n_train": counts.get("trained_on", len(train)), "seeds": seeds,
            "denoise": counts, "valid_accuracy": accs, "curve": _aggregate_curves(curves),
        })
    bar.close()
    if out is not None:
        write_json(out.compare_json, records)
    return records


@dataclass
class ExperimentInputs:
    """What both experiments start from: prepared train and valid pairs and the train pairs' û."""

    train: PreparedPairs
    valid: PreparedPairs
    strength_mean: np.ndarray
    model: ModelConfig
    """The single-member model each experiment trains per seed."""
    layout: RunLayout


def experiment_inputs(*, data: InputConfig, load: LoadConfig, split: SplitConfig,
                      model: ModelConfig, strength: StrengthConfig, noise: NoiseConfig,
                      denoise: DenoiseConfig, output: OutputConfig,
                      common: CommonConfig) -> ExperimentInputs:
    """Load and split; take û from ``--strength-file`` or measure it on the training split with
    an ensemble of ``--members`` (no validation pair ever reaches denoising)."""
    prep = prepare_data(data.data, load=load, split=split, seed=model.seed, noise=noise)
    layout = RunLayout.of(output.out)

    def measure() -> np.ndarray:
        return run_strength(prep.train, model=model, strength=strength, layout=layout,
                            progress=not common.quiet).delta.mean(axis=0)

    u = strength_for_training(prep, strength_file=denoise.strength_file, measure=measure)
    single = dataclasses.replace(model, members=1)
    assert u is not None
    return ExperimentInputs(
        train=prepare_pairs(single, Pairs.from_dataset(prep.train), progress=not common.quiet),
        valid=prepare_pairs(single, Pairs.from_dataset(prep.valid), progress=not common.quiet),
        strength_mean=u, model=single, layout=layout)


def groups_command(*, experiment: ExperimentConfig, **configs: Any) -> CommandResult:
    """``rewardlab groups``: a model per 10% strength group, in ``OUT/groups/``."""
    inputs = experiment_inputs(**configs)
    rows = run_groups(inputs.train, inputs.valid, inputs.strength_mean, model=inputs.model,
                      seeds=experiment.seeds, out=inputs.layout,
                      progress=not configs["common"].quiet)
    lines = [f"group {r['group']:>2}  n={r['n_train']:<6} û={r['mean_strength']:+.3f}  "
             f"valid acc {r['valid_accuracy_mean']:.4f} ± {r['valid_accuracy_std']:.4f}"
             for r in rows]
    return CommandResult(lines, {"groups": inputs.layout.groups_json}, rows)


def compare_command(*, experiment: ExperimentConfig, **configs: Any) -> CommandResult:
    """``rewardlab compare``: every denoising method against the baseline, in
    ``OUT/compare/``."""
    inputs = experiment_inputs(**configs)
    rows = run_compare(inputs.train, inputs.valid, inputs.strength_mean, model=inputs.model,
                       methods=experiment.method_list, seeds=experiment.seeds,
                       eval_every=experiment.eval_every,
                       margin_scale=configs["denoise"].margin_scale, out=inputs.layout,
                       progress=not configs["common"].quiet)
    lines = [f"{r['method']:<22} valid acc {r['valid_accuracy_mean']:.4f} ± "
             f"{r['valid_accuracy_std']:.4f}  loss {r['valid_loss']:.4f}  ece {r['ece']:.4f}"
             for r in rows]
    return CommandResult(lines, {"compare": inputs.layout.compare_json}, rows)
