"""Stage: train one reward model (optionally denoised by a strength file) and evaluate it."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardlab.config import DenoiseConfig, ModelConfig, StrengthConfig, config_dict
from rewardlab.denoise import DenoisePlan, DenoiseResult, denoise, resolve_plan
from rewardlab.evaluation import preference_metrics
from rewardlab.files import write_json
from rewardlab.models.base import FitResult, Pairs, RewardModel, build_reward_model
from rewardlab.noise import choose_flips

__all__ = [
    "TrainOutcome",
    "evaluate_model",
    "flip_labels",
    "inject_flips",
    "plan_from_config",
    "run_train",
    "train_reward_model",
]

log = logging.getLogger("rewardlab")


def inject_flips(ds: Any, strength: StrengthConfig) -> Any:
    """Swap chosen and rejected on a known random share of pairs (``--inject-flips``).

    Adds the boolean column ``injected_flip``; returns ``ds`` unchanged when the share is 0.
    """
    if strength.inject_flips <= 0:
        return ds
    mask = choose_flips(len(ds), strength.inject_flips, seed=strength.inject_seed)
    log.info("injected %d label flips (seed %d)", int(mask.sum()), strength.inject_seed)
    return flip_labels(ds, mask)


def flip_labels(ds: Any, mask: np.ndarray) -> Any:
    """Swap chosen and rejected where ``mask`` (``[N]`` bool) and record it in ``injected_flip``."""

    def swap(row: dict[str, Any], i: int) -> dict[str, Any]:
        if mask[i]:
            row["chosen"], row["rejected"] = row["rejected"], row["chosen"]
        row["injected_flip"] = bool(mask[i])
        return row

    return ds.map(swap, with_indices=True, desc="flipping labels", load_from_cache_file=False)


def plan_from_config(cfg: DenoiseConfig) -> DenoisePlan:
    """The :class:`DenoisePlan` of ``--method`` with explicit options applied on top."""
    margin = None if cfg.margin is None else cfg.margin == "adaptive"
    return resolve_plan(cfg.method, flip=cfg.flip, drop=cfg.drop, smooth=cfg.smooth,
                        smooth_where=cfg.smooth_where, margin=margin,
                        margin_scale=cfg.margin_scale)


def needs_strength(plan: DenoisePlan) -> bool:
    """Whether a plan reads û at all (the baseline does not)."""
    return bool(plan.flip or plan.flip_negative or plan.drop or plan.margin
                or (plan.smooth and plan.smooth_where == "negative"))


@dataclass
class TrainOutcome:
    """A trained model, its fit report and what denoising did."""

    model: RewardModel
    fit: FitResult
    denoise: dict[str, int] = field(default_factory=dict)


def training_inputs(pairs: Pairs, plan: DenoisePlan, strength_mean: np.ndarray | None,
                    ) -> tuple[Pairs, torch.Tensor, torch.Tensor, dict[str, int]]:
    """Kept pairs with their per-pair target and margin, after denoising.

    Pairs whose chosen equals rejected carry no preference and are always left out.
    """
    n = len(pairs)
    if strength_mean is None:
        if needs_strength(plan):
            raise ValueError("this denoising method needs strength: pass --strength "
                             "(a strength.parquet from `rewardlab strength`)")
        strength_mean = np.zeros(n)
    result: DenoiseResult = denoise(strength_mean, plan)
    identical = pairs.identical()
    keep = result.keep & ~identical
    counts = {**result.counts(), "identical_left_out": int(identical.sum()),
              "trained_on": int(keep.sum())}
    idx = np.flatnonzero(keep)
    return (pairs.subset(idx), torch.as_tensor(result.target[idx], dtype=torch.float32),
            torch.as_tensor(result.margin[idx], dtype=torch.float32), counts)


def train_reward_model(pairs: Pairs, *, model: ModelConfig, plan: DenoisePlan | None = None,
                       strength_mean: np.ndarray | None = None, valid: Pairs | None = None,
                       eval_every: int = 0, progress: bool = True) -> TrainOutcome:
    """Fit a fresh reward model on ``pairs`` under denoising ``plan`` (baseline when ``None``)."""
    plan = plan or DenoisePlan()
    kept, target, margin, counts = training_inputs(pairs, plan, strength_mean)
    if len(kept) == 0:
        raise ValueError("no training pairs left after denoising")
    rm = build_reward_model(model, progress=progress)
    fit = rm.fit(kept, target=target, margin=margin, valid=valid, eval_every=eval_every)
    return TrainOutcome(rm, fit, counts)


def evaluate_model(model: RewardModel, ds: Any) -> dict[str, Any]:
    """Metrics of ``model`` on the pairs of ``ds`` (per ``source`` when the column exists)."""
    delta = model.score(Pairs.from_dataset(ds))
    source = ds["source"] if "source" in ds.column_names else None
    return preference_metrics(delta, source=source)


def run_train(train_ds: Any, valid_ds: Any | None, *, model: ModelConfig, plan: DenoisePlan,
              strength_mean: np.ndarray | None, out_dir: str | os.PathLike[str],
              progress: bool = True, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train, evaluate on train and valid, and write ``OUT/model/`` and ``OUT/metrics.json``."""
    out = Path(out_dir)
    outcome = train_reward_model(Pairs.from_dataset(train_ds), model=model, plan=plan,
                                 strength_mean=strength_mean, progress=progress)
    outcome.model.save(out / "model")
    metrics: dict[str, Any] = {
        "settings": config_dict(model),
        "denoise": {"plan": config_dict(plan), **outcome.denoise},
        "fit": {"train_loss": outcome.fit.train_loss, "steps": outcome.fit.steps,
                "seconds": outcome.fit.seconds},
        "train": evaluate_model(outcome.model, train_ds),
    }
    if valid_ds is not None and len(valid_ds):
        metrics["valid"] = evaluate_model(outcome.model, valid_ds)
    if extra:
        metrics.update(extra)
    write_json(out / "metrics.json", metrics)
    return metrics
