"""Stage: train one reward model (optionally denoised by a strength file) and evaluate it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from rewardlab.config import (
    CommonConfig,
    ConfigError,
    DenoiseConfig,
    InputConfig,
    LoadConfig,
    ModelConfig,
    ModelPathConfig,
    NoiseConfig,
    OutputConfig,
    SplitConfig,
    TrainConfig,
    config_dict,
)
from rewardlab.denoise import DenoisePlan, bind_floor, resolve_plan, training_set
from rewardlab.evaluation import preference_metrics
from rewardlab.files import write_json
from rewardlab.layout import TrainLayout
from rewardlab.models import (
    FitResult,
    Pairs,
    PreparedPairs,
    RewardModel,
    build_reward_model,
    load_reward_model,
)
from rewardlab.stages.command import CommandResult
from rewardlab.stages.denoising import strength_floor, strength_for_training
from rewardlab.stages.prepare import prepare_data

__all__ = [
    "TrainOutcome",
    "evaluate_command",
    "evaluate_model",
    "plan_from_config",
    "run_train",
    "train_command",
    "train_reward_model",
]

log = logging.getLogger("rewardlab")


def plan_from_config(cfg: DenoiseConfig) -> DenoisePlan:
    """The :class:`DenoisePlan` of ``--method`` with explicit options applied on top."""
    margin = None if cfg.margin is None else cfg.margin == "adaptive"
    try:
        return resolve_plan(cfg.method, flip=cfg.flip, drop=cfg.drop, smooth=cfg.smooth,
                            smooth_where=cfg.smooth_where, margin=margin,
                            margin_scale=cfg.margin_scale)
    except ValueError as exc:
        raise ConfigError(f"--method: {exc}") from None


@dataclass
class TrainOutcome:
    """A trained model, its fit report and what denoising did."""

    model: RewardModel
    fit: FitResult
    denoise: dict[str, int] = field(default_factory=dict)


def train_reward_model(data: Pairs | PreparedPairs, *, model: ModelConfig,
                       plan: DenoisePlan | None = None, strength_mean: np.ndarray | None = None,
                       valid: Pairs | PreparedPairs | None = None, eval_every: int = 0,
                       progress: bool = True) -> TrainOutcome:
    """Fit a fresh reward model on ``data`` under denoising ``plan`` (baseline when ``None``).

    Pairs whose chosen equals rejected carry no preference and are always left out.
    """
    plan = plan or DenoisePlan()
    prepared = data if isinstance(data, PreparedPairs) else PreparedPairs(data, data)
    if strength_mean is None:
        if plan.reads_strength:
            raise ValueError("this denoising method needs strength: pass --strength-file "
                             "(a strength.parquet from `rewardlab strength`)")
        strength_mean = np.zeros(len(prepared))
    chosen = training_set(strength_mean, plan, identical=prepared.pairs.identical(),
                          label_target=prepared.pairs.target)
    if len(chosen.index) == 0:
        raise ValueError("no training pairs left after denoising")
    rm = build_reward_model(model, progress=progress)
    valid_inputs = valid.inputs if isinstance(valid, PreparedPairs) else valid
    fit = rm.fit(prepared.subset(chosen.index).inputs,
                 target=torch.as_tensor(chosen.target, dtype=torch.float32),
                 margin=torch.as_tensor(chosen.margin, dtype=torch.float32),
                 valid=valid_inputs, eval_every=eval_every)
    return TrainOutcome(rm, fit, chosen.counts)


def evaluate_model(model: RewardModel, ds: Any) -> dict[str, Any]:
    """Metrics of ``model`` on the pairs of ``ds`` (per ``source`` when the column exists)."""
    delta = model.score(Pairs.from_dataset(ds))
    source = ds["source"] if "source" in ds.column_names else None
    return preference_metrics(delta, source=source)


def run_train(train_ds: Any, held_out: dict[str, Any], *, model: ModelConfig, plan: DenoisePlan,
              strength_mean: np.ndarray | None, out: TrainLayout, progress: bool = True,
              extra: dict[str, Any] | None = None, score_train: bool = False) -> dict[str, Any]:
    """Train, evaluate on each non-empty held-out split (``{"valid": ds, "test": ds}``) and,
    with ``score_train``, on the training pairs too, and write the model and its metrics under
    ``out``."""
    outcome = train_reward_model(Pairs.from_dataset(train_ds), model=model, plan=plan,
                                 strength_mean=strength_mean, progress=progress)
    outcome.model.save(out.model_dir)
    metrics: dict[str, Any] = {
        "settings": config_dict(model),
        "denoise": {"plan": config_dict(plan), **outcome.denoise},
        # No wall-clock seconds: the same seed must write the same bytes.
        "fit": {"train_loss": outcome.fit.train_loss, "steps": outcome.fit.steps,
                "truncation": outcome.fit.truncation},
    }
    if score_train:
        metrics["train"] = evaluate_model(outcome.model, train_ds)
    for name, ds in held_out.items():
        if ds is not None and len(ds):
            metrics[name] = evaluate_model(outcome.model, ds)
    if extra:
        metrics.update(extra)
    write_json(out.metrics_json, metrics)
    return metrics


def train_command(*, data: InputConfig, load: LoadConfig, split: SplitConfig, model: ModelConfig,
                  noise: NoiseConfig, denoise: DenoiseConfig, train: TrainConfig,
                  output: OutputConfig, common: CommonConfig) -> CommandResult:
    """``rewardlab train``: one (denoised) reward model, evaluated on the validation pairs."""
    prep = prepare_data(data.data, load=load, split=split, seed=model.seed, noise=noise)
    u = strength_for_training(prep, strength_file=denoise.strength_file,
                              allow_overlap=denoise.allow_overlap)
    floor = strength_floor(denoise.strength_file) if denoise.strength_file else None
    plan = bind_floor(plan_from_config(denoise), floor)
    out = TrainLayout(output.folder())
    metrics = run_train(prep.train, {"valid": prep.valid, "test": prep.test}, model=model,
                        plan=plan, strength_mean=u, out=out, progress=not common.quiet,
                        extra={"data": prep.report}, score_train=train.score_train)
    lines = [f"{name} accuracy {metrics[name]['accuracy']:.4f} on {metrics[name]['n']} pairs"
             for name in ("valid", "test") if name in metrics]
    return CommandResult(lines, {"model": out.model_dir, "metrics": out.metrics_json}, metrics)


def evaluate_command(*, model_path: ModelPathConfig, data: InputConfig, load: LoadConfig,
                     output: OutputConfig, common: CommonConfig) -> CommandResult:
    """``rewardlab evaluate``: a saved model's metrics on any preference data."""
    from rewardlab.data import read_preferences

    ds, report = read_preferences(data.data, **load.read_kwargs())
    model = load_reward_model(model_path.model_dir, progress=not common.quiet)
    metrics = {"valid": evaluate_model(model, ds), "data": report.to_dict(),
               "model": str(model_path.model_dir)}
    out = TrainLayout(output.folder())
    write_json(out.metrics_json, metrics)
    line = f"accuracy {metrics['valid']['accuracy']:.4f} on {metrics['valid']['n']} pairs"
    return CommandResult([line], {"metrics": out.metrics_json}, metrics)
