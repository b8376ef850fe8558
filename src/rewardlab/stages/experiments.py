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
import pyarrow as pa

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
from rewardlab.denoise import bind_floor, resolve_plan, training_set
from rewardlab.evaluation import preference_metrics, seed_spread
from rewardlab.files import write_json, write_table
from rewardlab.layout import RunLayout
from rewardlab.models import Pairs, PreparedPairs, prepare_pairs
from rewardlab.seeds import derive_seed
from rewardlab.stages.command import CommandResult
from rewardlab.stages.denoising import strength_floor, strength_for_training
from rewardlab.stages.prepare import Prepared, prepare_data, require_validation
from rewardlab.stages.strength import run_strength
from rewardlab.stages.train import train_reward_model
from rewardlab.strength import N_GROUPS, NoiseFloor, strength_groups, strength_ranks

__all__ = ["compare_command", "groups_command", "run_compare", "run_groups"]


def _seed_configs(model: ModelConfig, seeds: int) -> list[ModelConfig]:
    """One single-member config per seed: experiments measure single reward models. Seed k is
    its own stream, apart from the strength ensemble's (which uses the same --seed)."""
    return [dataclasses.replace(model, members=1, seed=derive_seed(model.seed, "experiment", k))
            for k in range(seeds)]


def _held_out_accuracy(model: Any, held_out: dict[str, PreparedPairs]) -> dict[str, float]:
    """Accuracy of ``model``'s mean Δ on each non-empty held-out split."""
    return {name: preference_metrics(model.score(part.inputs))["accuracy"]
            for name, part in held_out.items() if len(part)}


def _group_index(train: PreparedPairs, strength_mean: np.ndarray) -> tuple[np.ndarray, int]:
    """Strength group (1..10, 0 for none) of each training pair, and how many pairs without a
    direction were left out before ranking: identical pairs (chosen == rejected; all have
    û = 0, and would pile into one group) and kept ties (target 0.5), as in the strength
    stage."""
    ok = ~train.pairs.identical() & ~train.pairs.ties()
    if ok.sum() < N_GROUPS:
        raise ValueError(f"groups needs at least {N_GROUPS} training pairs that carry a "
                         f"preference (one per strength group); this split has {int(ok.sum())}"
                         f" ({int((~ok).sum())} identical pairs or kept ties left out). Use "
                         f"more data or smaller --valid-frac/--test-frac")
    groups = np.zeros(len(train), dtype=np.int64)
    groups[ok] = strength_groups(strength_ranks(strength_mean[ok]))
    return groups, int((~ok).sum())


def run_groups(train: PreparedPairs, held_out: dict[str, PreparedPairs],
               strength_mean: np.ndarray, *, model: ModelConfig, seeds: int = 3,
               out: RunLayout | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Held-out accuracy of models trained on each 10% strength group of ``train``.

    Args:
        train: training pairs; ``strength_mean`` ``[N]`` is their û (from training data only).
        held_out: ``{"valid": ..., "test": ...}`` pairs to evaluate on (empty ones skipped).

    Returns (and writes to ``out``'s groups.json) 10 records with ``group``, ``n_train``,
    ``identical_left_out``, ``mean_strength``, ``{split}_accuracy_mean``/``_std`` and the
    per-seed ``{split}_accuracy``, and ``train_loss``.
    """
    from tqdm.auto import tqdm

    groups, identical = _group_index(train, strength_mean)
    configs = _seed_configs(model, seeds)
    records = []
    bar = tqdm(total=N_GROUPS * seeds, desc="groups", unit="model", disable=not progress)
    for g in range(1, N_GROUPS + 1):
        idx = np.flatnonzero(groups == g)
        accs: dict[str, list[float]] = defaultdict(list)
        losses = []
        for cfg in configs:
            outcome = train_reward_model(train.subset(idx), model=cfg, progress=False)
            for name, acc in _held_out_accuracy(outcome.model, held_out).items():
                accs[name].append(acc)
            losses.append(outcome.fit.train_loss)
            bar.update(1)
        records.append({
            "group": g, "n_train": len(idx), "identical_left_out": identical,
            "mean_strength": float(strength_mean[idx].mean()),
            **_accuracy_fields(accs), "train_loss": seed_spread(losses)[0],
        })
    bar.close()
    if out is not None:
        write_json(out.groups_json, records)
    return records


def _accuracy_fields(accs: dict[str, list[float]]) -> dict[str, Any]:
    """``{split}_accuracy_mean``, ``_std`` and the per-seed list, for each split."""
    out: dict[str, Any] = {}
    for name, values in accs.items():
        mean, std = seed_spread(values)
        out.update({f"{name}_accuracy_mean": mean, f"{name}_accuracy_std": std,
                    f"{name}_accuracy": values})
    return out


def _aggregate_curves(curves: list[list[dict[str, float]]]) -> list[dict[str, float]]:
    """Mean and std of validation accuracy at each step, over seeds."""
    by_step: dict[int, list[float]] = defaultdict(list)
    for curve in curves:
        for point in curve:
            by_step[int(point["step"])].append(point["valid_accuracy"])
    out = []
    for step in sorted(by_step):
        mean, std = seed_spread(by_step[step])
        out.append({"step": step, "valid_accuracy_mean": mean, "valid_accuracy_std": std})
    return out


def run_compare(train: PreparedPairs, held_out: dict[str, PreparedPairs],
                strength_mean: np.ndarray, *, model: ModelConfig, methods: list[str],
                seeds: int = 3, eval_every: int = 0, margin_scale: float | None = None,
                out: RunLayout | None = None, progress: bool = True,
                floor: NoiseFloor | None = None) -> list[dict[str, Any]]:
    """Train with each denoising method (a preset name); compare on validation and test.

    Validation (``held_out["valid"]``) is what a method is picked on, and carries the accuracy
    curve; test (``held_out["test"]``, may be empty) grades the pick. Returns (and writes to
    ``out``'s compare.json) one record per method: ``method``, ``valid_accuracy_mean``/``_std``,
    ``test_accuracy_mean``/``_std`` (with a test split), ``valid_loss``, ``ece``, ``n_train``,
    ``denoise`` (counts), the per-seed accuracies and ``curve`` (accuracy over steps). With
    ``out``, each method's per-pair held-out predictions (mean over seeds) go to the layout's
    predictions table, for confidence intervals that read saved results only. ``floor`` is the
    strength summary's noise floor, with the self-test's verdict, that the auto and posterior
    methods act on (``None``: they fit û alone).
    """
    from tqdm.auto import tqdm

    plans = {m: bind_floor(resolve_plan(m, margin_scale=margin_scale), floor)
             for m in methods}  # fail fast
    _check_training_sets(plans, strength_mean, train)
    configs = _seed_configs(model, seeds)
    records, predictions = [], []
    bar = tqdm(total=len(plans) * seeds, desc="compare", unit="model", disable=not progress)
    for method, plan in plans.items():
        runs = [_compare_one(train, held_out, strength_mean, cfg, plan, eval_every, bar)
                for cfg in configs]
        deltas = {name: np.stack([r["delta"][name] for r in runs]) for name in runs[0]["delta"]}
        accs = {name: [float((d > 0).mean()) for d in rows] for name, rows in deltas.items()}
        counts = runs[-1]["denoise"]
        records.append({
            "method": method, **_accuracy_fields(accs),
            "valid_loss": seed_spread([r["valid_loss"] for r in runs])[0],
            "ece": seed_spread([r["ece"] for r in runs])[0],
            "n_train": counts.get("trained_on", len(train)), "seeds": seeds,
            "denoise": counts, "curve": _aggregate_curves([r["curve"] for r in runs]),
        })
        predictions.append((method, deltas))
    bar.close()
    if out is not None:
        write_json(out.compare_json, records)
        write_table(out.compare_predictions, prediction_table(predictions))
    return records


def _check_training_sets(plans: dict[str, Any], strength_mean: np.ndarray,
                         train: PreparedPairs) -> None:
    """Refuse, before any training starts, a method that would leave no pair to train on."""
    identical = train.pairs.identical()
    for method, plan in plans.items():
        if len(training_set(strength_mean, plan, identical=identical).index) == 0:
            raise ValueError(f"--methods {method}: leaves no training pair of {len(train)} "
                             f"({int(identical.sum())} identical); use more data or a smaller cut")


def prediction_table(predictions: list[tuple[str, dict[str, np.ndarray]]]) -> pa.Table:
    """One row per (method, split, pair): the mean Δ over seeds, the share of seeds that
    ranked the pair correctly (Δ > 0) and each seed's Δ (``delta_seeds``, for intervals that
    count the seed spread); ``pair`` is the position within its split."""
    rows: dict[str, list[Any]] = defaultdict(list)
    for method, deltas in predictions:
        for split, d in deltas.items():  # d: [seeds, N]
            n = d.shape[1]
            rows["method"] += [method] * n
            rows["split"] += [split] * n
            rows["pair"] += list(range(n))
            rows["delta_mean"] += d.mean(axis=0).tolist()
            rows["correct"] += (d > 0).mean(axis=0).tolist()
            rows["delta_seeds"] += d.T.tolist()
    return pa.table(rows)


def _compare_one(train: PreparedPairs, held_out: dict[str, PreparedPairs],
                 strength_mean: np.ndarray, cfg: ModelConfig, plan: Any, eval_every: int,
                 bar: Any) -> dict[str, Any]:
    """One method, one seed: train, then score every non-empty held-out split once."""
    outcome = train_reward_model(train, model=cfg, plan=plan, strength_mean=strength_mean,
                                 valid=held_out["valid"], eval_every=eval_every, progress=False)
    delta = {name: outcome.model.score(part.inputs).mean(dim=0).numpy().astype(np.float64)
             for name, part in held_out.items() if len(part)}
    valid = preference_metrics(delta["valid"])
    bar.update(1)
    return {"delta": delta, "valid_loss": valid["bt_loss"], "ece": valid["ece"],
            "curve": outcome.fit.curve, "denoise": outcome.denoise}


@dataclass
class ExperimentInputs:
    """What both experiments start from: prepared training pairs with their û, and the
    held-out splits (``valid`` picks, ``test`` grades)."""

    train: PreparedPairs
    held_out: dict[str, PreparedPairs]
    strength_mean: np.ndarray
    model: ModelConfig
    """The single-member model each experiment trains per seed."""
    layout: RunLayout
    floor: NoiseFloor | None = None
    """The strength's noise floor with the self-test's verdict, when its summary recorded one."""


def experiment_inputs(*, data: InputConfig, load: LoadConfig, split: SplitConfig,
                      model: ModelConfig, strength: StrengthConfig, noise: NoiseConfig,
                      denoise: DenoiseConfig, output: OutputConfig,
                      common: CommonConfig) -> ExperimentInputs:
    """Load and split; take û from ``--strength-file`` or measure it on the training split with
    an ensemble of ``--members`` (no held-out pair ever reaches denoising)."""
    prep = prepare_data(data.data, load=load, split=split, seed=model.seed, noise=noise)
    require_validation(prep, split)
    layout = RunLayout.of(output.folder())

    def measure() -> np.ndarray:
        return run_strength(prep.train, model=model, strength=strength, layout=layout,
                            progress=not common.quiet).delta.mean(axis=0)

    u = strength_for_training(prep, strength_file=denoise.strength_file,
                              allow_overlap=denoise.allow_overlap, measure=measure)
    assert u is not None
    floor = strength_floor(denoise.strength_file or layout.root)
    return ExperimentInputs(train=prepared_split(model, prep.train, common),
                            held_out=held_out_splits(model, prep, common),
                            strength_mean=u, model=dataclasses.replace(model, members=1),
                            layout=layout, floor=floor)


def prepared_split(model: ModelConfig, ds: Any, common: CommonConfig) -> PreparedPairs:
    """One split's pairs with the inputs the experiments' single-member models read."""
    single = dataclasses.replace(model, members=1)
    return prepare_pairs(single, Pairs.from_dataset(ds), progress=not common.quiet)


def held_out_splits(model: ModelConfig, prep: Prepared,
                    common: CommonConfig) -> dict[str, PreparedPairs]:
    """``{"valid": ..., "test": ...}`` prepared for evaluation (test may be empty)."""
    return {"valid": prepared_split(model, prep.valid, common),
            "test": prepared_split(model, prep.test, common)}


def groups_command(*, experiment: ExperimentConfig, **configs: Any) -> CommandResult:
    """``rewardlab groups``: a model per 10% strength group, in ``OUT/groups/``."""
    inputs = experiment_inputs(**configs)
    rows = run_groups(inputs.train, inputs.held_out, inputs.strength_mean, model=inputs.model,
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
    rows = run_compare(inputs.train, inputs.held_out, inputs.strength_mean, model=inputs.model,
                       methods=experiment.method_list, seeds=experiment.seeds,
                       eval_every=experiment.eval_every,
                       margin_scale=configs["denoise"].margin_scale, out=inputs.layout,
                       progress=not configs["common"].quiet, floor=inputs.floor)
    lines = [f"{r['method']:<22} valid acc {r['valid_accuracy_mean']:.4f} ± "
             f"{r['valid_accuracy_std']:.4f}"
             + (f"  test acc {r['test_accuracy_mean']:.4f}" if "test_accuracy_mean" in r else "")
             + f"  loss {r['valid_loss']:.4f}  ece {r['ece']:.4f}" for r in rows]
    return CommandResult(lines, {"compare": inputs.layout.compare_json}, rows)
