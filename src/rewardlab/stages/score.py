"""Stage: score responses or pairs with a saved ensemble (``score``), or serve it (``serve``).

``score`` reads single responses (``prompt`` + ``response``/``completion``, or conversational
messages; :mod:`rewardlab.data.responses`) or preference pairs (anything
:func:`rewardlab.data.read_preferences` reads), says which it found, and writes every input
column plus, per response, ``reward_mean``, ``reward_std`` (population std over members),
``reward_members`` (the M rewards), ``reward_uwo`` (mean - λ·variance) and ``reward_min``. For
pairs, each side gets those columns prefixed ``chosen_`` / ``rejected_``, and Δ = r(chosen) -
r(rejected) gets ``delta_mean``, ``delta_std`` and ``delta_members`` (as ``strength_*``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.config import (
    CommonConfig,
    ConfigError,
    InputConfig,
    LoadConfig,
    ModelPathConfig,
    OutputConfig,
    ScoreConfig,
    ServeConfig,
    UncertaintyConfig,
)
from rewardlab.files import write_jsonl, write_table
from rewardlab.serve.ensemble import RewardStats, reward_statistics
from rewardlab.serve.scorer import EnsembleScorer
from rewardlab.stages.command import CommandResult
from rewardlab.strength import strength_statistics

__all__ = ["SCORE_COLUMNS", "reward_columns", "score_command", "serve_command"]

log = logging.getLogger("rewardlab")

SCORE_COLUMNS: dict[str, str] = {
    "reward_mean": "mean reward over the M members",
    "reward_std": "population std of the reward over members",
    "reward_members": "the M rewards, members in order",
    "reward_uwo": "reward_mean - penalty * reward_std**2 (uncertainty-weighted)",
    "reward_min": "the lowest member reward (worst case)",
}
"""The columns ``score`` adds per response (pairs: prefixed ``chosen_`` and ``rejected_``)."""


def reward_columns(stats: RewardStats, prefix: str = "") -> dict[str, Any]:
    """The :data:`SCORE_COLUMNS` of ``stats``, each ``[N]`` (members ``[N, M]``)."""
    return {f"{prefix}reward_mean": stats.mean, f"{prefix}reward_std": stats.std,
            f"{prefix}reward_members": stats.members.T, f"{prefix}reward_uwo": stats.uwo,
            f"{prefix}reward_min": stats.min}


def _write(ds: Any, columns: dict[str, Any], out: Path) -> None:
    """Every column of ``ds`` plus ``columns``, to ``out`` (.parquet or .jsonl), atomically."""
    import pyarrow as pa

    table = ds.data.table.replace_schema_metadata(None)
    for name, values in columns.items():
        if name in table.column_names:
            table = table.drop_columns([name])
        table = table.append_column(name, pa.array(np.asarray(values).tolist()))
    if out.name.endswith(".parquet"):
        write_table(out, table)
    else:
        write_jsonl(out, table.to_pylist())


def _pair_columns(scorer: EnsembleScorer, ds: Any, *, chunk: int,
                  progress: bool) -> dict[str, Any]:
    prompts = list(ds["prompt"])
    rewards = {side: scorer.rewards_in_chunks(prompts, list(ds[side]), chunk=chunk,
                                              progress=progress, desc=f"scoring {side}")
               for side in ("chosen", "rejected")}
    delta = strength_statistics(rewards["chosen"] - rewards["rejected"])
    columns: dict[str, Any] = {}
    for side, r in rewards.items():
        columns.update(reward_columns(reward_statistics(r, penalty=scorer.penalty), f"{side}_"))
    columns.update({"delta_mean": delta.mean, "delta_std": delta.std,
                    "delta_members": delta.members.T})
    return columns


def score_command(*, model_path: ModelPathConfig, data: InputConfig, load: LoadConfig,
                  uncertainty: UncertaintyConfig, score: ScoreConfig, output: OutputConfig,
                  common: CommonConfig) -> CommandResult:
    """``rewardlab score``: every member's reward of each response (or pair), with uncertainty."""
    from rewardlab.data import read_preferences
    from rewardlab.data.responses import detect_input_kind, read_responses

    out = output.out_path
    if not out.name.endswith((".parquet", ".jsonl")):
        raise ValueError(f"-o {out}: write to a .parquet or .jsonl file")
    if out.is_dir() or (out.exists() and not score.overwrite):
        raise ConfigError(f"-o/--out: {out} already exists; pass --overwrite to replace it")
    kind = detect_input_kind(data.data, mapping=load.map)
    if kind == "pairs":
        ds, report = read_preferences(data.data, **load.read_kwargs())
    else:
        ds, report = read_responses(data.data, on_bad=load.on_bad)
    lines = [f"found {kind}: {len(ds):,} from {len(report.by_file)} input(s) "
             f"({', '.join(f'{k} {v:,}' for k, v in report.by_format.items())})",
             *report.problem_lines()]
    scorer = EnsembleScorer.load(model_path.model_dir, penalty=uncertainty.uncertainty_penalty,
                                 progress=not common.quiet)
    progress = not common.quiet
    if scorer.members == 1:
        lines.append("warning: the model has one member (M=1): no uncertainty, so reward_std is "
                     "0 and reward_uwo and reward_min equal reward_mean; train an ensemble "
                     "(--members, or run's --final-members) for them to mean anything")
    if kind == "pairs":
        columns = _pair_columns(scorer, ds, chunk=score.chunk, progress=progress)
        accuracy = float((columns["delta_mean"] > 0).mean()) if len(ds) else float("nan")
        lines.append(f"M={scorer.members}: mean Δ > 0 (agrees with the label) on {accuracy:.1%}; "
                     f"mean σ̂(Δ) {float(np.mean(columns['delta_std'])):.4f}")
    else:
        rewards = scorer.rewards_in_chunks(list(ds["prompt"]), list(ds["response"]),
                                           chunk=score.chunk, progress=progress)
        columns = reward_columns(reward_statistics(rewards, penalty=scorer.penalty))
        lines.append(f"M={scorer.members}: mean reward {float(np.mean(columns['reward_mean'])):.4f}"
                     f", mean σ̂ {float(np.mean(columns['reward_std'])):.4f}")
    _write(ds, columns, out)
    return CommandResult(lines, {"scores": out}, {"kind": kind, "n": len(ds)})


def serve_command(*, model_path: ModelPathConfig, uncertainty: UncertaintyConfig,
                  serve: ServeConfig, common: CommonConfig) -> CommandResult:
    """``rewardlab serve``: the ensemble over HTTP (OpenRLHF's protocol and rewardlab's own)."""
    import dataclasses

    from rewardlab.serve.server import require_serve_extra, run_server, security_warning

    require_serve_extra()
    if serve.api_key is None and os.environ.get("REWARDLAB_API_KEY", "").strip():
        serve = dataclasses.replace(serve, api_key=os.environ["REWARDLAB_API_KEY"].strip())
    warning = security_warning(serve)
    if warning:
        log.warning("%s", warning)
    # No progress bars: the model would draw one per request.
    scorer = EnsembleScorer.load(model_path.model_dir, penalty=uncertainty.uncertainty_penalty,
                                 progress=False, feature_cache=False)
    info = run_server(scorer, serve, quiet=common.quiet)
    b = info["batching"]
    return CommandResult([f"stopped ({', '.join(info['stopped_by']) or 'server exit'}): served "
                          f"{b['requests']:,} requests, {b['items']:,} items in "
                          f"{b['forward_passes']:,} forward passes"], {}, info)
