"""Stages: the paper's two experiments.

* ``groups``: rank training pairs by û, cut them into 10 groups of 10%, train a fresh model on
  each group and evaluate it on the validation set (the data-contribution experiment).
* ``compare``: train with each denoising method and compare validation accuracy, loss,
  calibration and the accuracy curve over training steps.

Both repeat every setting over ``seeds`` (model seed s = base seed + k) and report mean ± std.
"""

from __future__ import annotations

import dataclasses
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.config import ModelConfig
from rewardlab.denoise import resolve_plan
from rewardlab.evaluation import preference_metrics
from rewardlab.files import write_json
from rewardlab.models.base import Pairs
from rewardlab.stages.train import train_reward_model
from rewardlab.strength import strength_groups, strength_ranks

__all__ = ["run_compare", "run_groups"]


def _mean_std(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std())


def _seed_configs(model: ModelConfig, seeds: int) -> list[ModelConfig]:
    """One single-member config per seed: experiments measure single reward models."""
    return [dataclasses.replace(model, members=1, seed=model.seed + k) for k in range(seeds)]


def run_groups(train: Pairs, valid: Pairs, strength_mean: np.ndarray, *, model: ModelConfig,
               seeds: int = 3, out_dir: str | os.PathLike[str] | None = None,
               progress: bool = True) -> list[dict[str, Any]]:
    """Validation accuracy of models trained on each 10% strength group of ``train``.

    Args:
        train: training pairs; ``strength_mean`` ``[N]`` is their û (from training data only).
        valid: validation pairs.

    Returns (and writes to ``OUT/groups.json``) 10 records with ``group``, ``n_train``,
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
            accs.append(preference_metrics(outcome.model.score(valid))["accuracy"])
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
    if out_dir is not None:
        write_json(Path(out_dir) / "groups.json", records)
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


def run_compare(train: Pairs, valid: Pairs, strength_mean: np.ndarray, *, model: ModelConfig,
                methods: list[str], seeds: int = 3, eval_every: int = 0,
                margin_scale: float | None = None,
                out_dir: str | os.PathLike[str] | None = None,
                progress: bool = True) -> list[dict[str, Any]]:
    """Train with each denoising method (a preset name) and compare on ``valid``.

    Returns (and writes to ``OUT/compare.json``) one record per method: ``method``,
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
            metrics = preference_metrics(outcome.model.score(valid))
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
    if out_dir is not None:
        write_json(Path(out_dir) / "compare.json", records)
    return records
