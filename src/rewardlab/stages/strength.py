"""Stage: preference strength of every pair, from an ensemble of M reward models.

Work is cut into *jobs*, each of which trains some members on some pairs and scores others; every
finished job's Δ is written atomically at once under ``OUT/.partial/<fingerprint>/``. A rerun of
the same command (after ``kill -9``, say) loads the finished jobs and trains only the rest; a run
with other settings has another fingerprint, so stale partial results are never reused.

* ``insample`` (the paper): every member trains on all pairs, each in its own random order, and
  scores all of them.
* ``crossfit``: pairs are split into K prompt-grouped folds. For each fold, all M members train on
  the other K - 1 folds and score the held-out fold, so each pair gets M out-of-fold scores and no
  model scores a pair it trained on. It costs about K - 1 times the in-sample training.

A backend that trains members jointly (embedding) runs one job per fold with all M members; one
that trains them one after another (finetune) runs one job per member and fold, so a killed run
loses at most the member in progress.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import logging
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardlab.config import (
    CommonConfig,
    InputConfig,
    LoadConfig,
    ModelConfig,
    NoiseConfig,
    OutputConfig,
    StrengthConfig,
    config_dict,
)
from rewardlab.files import read_json, write_json
from rewardlab.gauge import instrument_summary
from rewardlab.launch import Ranks
from rewardlab.layout import RunLayout
from rewardlab.models import (
    Pairs,
    PreparedPairs,
    backend_class,
    build_reward_model,
    input_truncation,
    prepare_pairs,
)
from rewardlab.models.processes import encode_before_training
from rewardlab.noise import flips_by_id, inject_flips
from rewardlab.seeds import derive_seed
from rewardlab.stages.command import CommandResult
from rewardlab.stages.parallel import (
    JobOutcome,
    job_file,
    load_finished,
    may_remove_partial,
    run_jobs,
    sum_counts,
)
from rewardlab.stages.tables import write_pairs_table
from rewardlab.strength import (
    NoiseFloor,
    auroc,
    categorize,
    fit_noise_floor,
    strength_groups,
    strength_ranks,
    strength_statistics,
    summarize_strength,
)

__all__ = ["EnsembleRun", "StrengthOutput", "assign_folds", "ensemble_deltas", "ensemble_run",
           "noise_floor", "noise_lines", "plan_jobs", "run_strength", "self_test",
           "strength_columns", "strength_command", "wants_self_test"]

log = logging.getLogger("rewardlab")


def assign_folds(keys: list[str], folds: int, *, seed: int) -> np.ndarray:
    """Fold 0..K-1 of each pair, grouped by ``keys`` (prompts): equal keys share a fold.

    Folds are balanced by pair count: groups go, largest first (ties in a seeded random order),
    to the fold holding the fewest pairs so far. Every fold gets at least one group, so every
    fold is scored by models that trained on the others. Raises ``ValueError`` when there are
    fewer distinct keys than folds.
    """
    counts = Counter(keys)
    unique = sorted(counts)
    if len(unique) < folds:
        raise ValueError(f"--folds {folds}: cross-fitting needs at least as many distinct prompts "
                         f"as folds, and the data has {len(unique)}; use --folds "
                         f"{max(len(unique), 2)} or fewer, or --scheme insample")
    shuffled = np.random.default_rng(seed).permutation(len(unique))
    order = sorted(shuffled.tolist(), key=lambda j: -counts[unique[j]])  # stable: ties shuffled
    loads = np.zeros(folds, dtype=np.int64)
    fold_of = {}
    for j in order:
        k = int(np.argmin(loads))  # the first of the least-loaded folds
        fold_of[unique[j]] = k
        loads[k] += counts[unique[j]]
    return np.array([fold_of[k] for k in keys], dtype=np.int64)


@dataclass(frozen=True)
class Job:
    """Train ``members`` (global indices) on pairs ``train`` and score pairs ``score``."""

    index: int
    members: tuple[int, ...]
    train: np.ndarray
    score: np.ndarray
    seed: int


def plan_jobs(prompts: list[str], *, members: int, scheme: str, folds: int, seed: int,
              joint: bool) -> list[Job]:
    """The jobs of a strength run (see the module docstring)."""
    n = len(prompts)
    everything = np.arange(n)
    if scheme == "insample":
        parts = [(everything, everything)]
    elif scheme == "crossfit":
        fold = assign_folds(prompts, folds, seed=derive_seed(seed, "folds"))
        parts = [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(folds)]
    else:
        raise ValueError(f"unknown scheme {scheme!r}; choose insample or crossfit")
    groups = [tuple(range(members))] if joint else [(m,) for m in range(members)]
    jobs = []
    for p, (train, score) in enumerate(parts):
        for g in groups:
            # Its own stream per fold (and per member for one-at-a-time backends), apart from
            # every other use of --seed: member 0 is never the experiments' baseline model.
            job_seed = derive_seed(seed, "strength", scheme, p, "all" if joint else g[0])
            jobs.append(Job(len(jobs), g, train, score, job_seed))
    return jobs


def _fingerprint(pairs: Pairs, model: ModelConfig, strength: StrengthConfig) -> str:
    """Identifies a strength computation: the exact pairs and every setting that changes Δ."""
    from rewardlab import __version__

    h = hashlib.blake2b(pairs.digest().encode(), digest_size=10)
    # The version too: a new release may compute Δ differently, and must not reuse old jobs.
    settings = {**config_dict(model), "scheme": strength.scheme, "folds": strength.folds,
                "version": __version__}
    # Where it runs and how it batches encoding do not change what it computes.
    settings.pop("device", None)
    settings.pop("encode_batch_size", None)
    settings["finetune"].pop("parallel", None)
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    if model.finetune.meta:  # MetaRM: what the meta file holds, not only its name
        from rewardlab.data.meta import read_meta

        meta = read_meta(model.finetune.meta)[0]
        h.update(json.dumps([meta.prompts, meta.responses]).encode())
    return h.hexdigest()


@dataclass
class EnsembleRun:
    """Δ ``[M, N]`` of a strength ensemble, and how many of the N pairs were cut to the token
    budget (``None`` for backends that do not count it)."""

    delta: np.ndarray
    truncation: dict[str, int] | None = None
    partial: Path | None = None
    """Where the finished jobs were published (``None`` without a run layout)."""
    ranks: Ranks = field(default_factory=Ranks)
    """The processes that shared the jobs (one, unless ``--parallel members`` under a launch)."""
    jobs: list[dict[str, Any]] = field(default_factory=list)
    """Per job: its members, the rank that ran it, its final training loss and steps."""


def ensemble_deltas(pairs: Pairs, *, model: ModelConfig, strength: StrengthConfig,
                    layout: RunLayout | None = None, progress: bool = True) -> np.ndarray:
    """Δ ``[M, N]`` of an M-member ensemble (see :func:`ensemble_run`)."""
    return ensemble_run(pairs, model=model, strength=strength, layout=layout,
                        progress=progress).delta


def ensemble_run(pairs: Pairs, *, model: ModelConfig, strength: StrengthConfig,
                 layout: RunLayout | None = None, progress: bool = True,
                 desc: str = "strength") -> EnsembleRun:
    """Δ ``[M, N]`` of an M-member ensemble, by the chosen scheme, resuming finished jobs.

    Finished jobs are kept under ``layout``'s partial folder (none without a layout). Pairs whose
    chosen equals rejected carry no preference: they are left out of every loss but still scored
    (their Δ is 0 for any model). ``desc`` names the work on the progress bar. With
    ``--parallel members`` under a launcher, each rank runs
    its own jobs and every rank gathers all of them (:mod:`rewardlab.stages.parallel`).
    """
    from tqdm.auto import tqdm

    identical = pairs.identical()
    if identical.any():
        log.info("strength: %d identical pairs (chosen == rejected) left out of training",
                 int(identical.sum()))
    jobs = plan_jobs(list(pairs.prompt), members=model.members, scheme=strength.scheme,
                     folds=strength.folds, seed=model.seed,
                     joint=trains_jointly(model))
    partial = None
    if layout is not None:
        partial = layout.partial_dir(_fingerprint(pairs, model, strength))
        partial.mkdir(parents=True, exist_ok=True)
    delta = np.full((model.members, len(pairs)), np.nan)
    todo = load_finished(jobs, partial, delta)
    if len(todo) < len(jobs):
        log.info("strength: resuming, %d of %d jobs already finished", len(jobs) - len(todo),
                 len(jobs))
    ranks = Ranks.from_env() if model.finetune.parallel == "members" else Ranks()
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), unit="job",
               disable=not progress or not ranks.is_main,
               desc=f"{desc} ({strength.scheme}, M={model.members})")
    records: dict[int, dict[str, Any]] = {}
    run_jobs(jobs, todo, run=_job_runner(pairs, identical, model, records, progress),
             delta=delta, partial=partial, ranks=ranks, on_done=lambda: bar.update(1))
    bar.close()
    if np.isnan(delta).any():  # every (member, pair) must be scored exactly once
        raise RuntimeError("internal error: some pairs were not scored by every member")
    every = {j.index: records.get(j.index) or _record(partial, j.index) for j in jobs}
    # Each pair is scored once by member 0: its jobs' counts cover every pair exactly once.
    firsts = [every[j.index] for j in jobs if 0 in j.members]
    # How each job went, without wall-clock seconds (the same seed writes the same bytes).
    job_log = [{"job": i, **{k: v for k, v in r.items() if k not in ("seconds", "truncation")}}
            for i, r in sorted(every.items())]
    return EnsembleRun(delta, sum_counts([r.get("truncation") for r in firsts]), partial, ranks,
                       job_log)


def trains_jointly(model: ModelConfig) -> bool:
    """Whether one job trains all M members: the backend trains them together, or the members
    are coupled (``--diversity nuclear``: each member's term reads the earlier members)."""
    return backend_class(model.backend).trains_members_jointly or model.diversity == "nuclear"


def member_label(job: Job, members: int) -> str:
    """What job ``job``'s training progress bar calls its member, out of the ensemble's
    ``members``: "member 3/4" when it trains one (each backend's own default otherwise)."""
    return f"member {job.members[0] + 1}/{members}" if len(job.members) == 1 else ""


def _job_runner(pairs: Pairs, identical: np.ndarray, model: ModelConfig,
                records: dict[int, dict[str, Any]], progress: bool) -> Callable[[Job], JobOutcome]:
    """Train and score one job; the pairs are prepared once, at the first job run here."""
    prepared: list[PreparedPairs] = []

    def run(job: Job) -> JobOutcome:
        if not prepared:
            prepared.append(prepare_pairs(model, pairs, progress=progress))
        data = prepared[0]
        cfg = dataclasses.replace(model, members=len(job.members), seed=job.seed)
        rm = build_reward_model(cfg, progress=progress, label=member_label(job, model.members))
        train = job.train[~identical[job.train]]
        # A tie kept with --ties half trains towards 0.5: the per-pair target reaches the loss.
        fit = rm.fit(data.subset(train).inputs,
                     target=torch.as_tensor(pairs.label_target[train], dtype=torch.float32))
        scored = data.subset(job.score)
        d = rm.score(scored.inputs).numpy().astype(np.float64)
        del rm
        gc.collect()  # free this job's models before the next one loads its own
        records[job.index] = {"members": list(job.members), "train_loss": fit.train_loss,
                              "steps": fit.steps, "seconds": round(fit.seconds, 3),
                              "truncation": input_truncation(scored)}
        return JobOutcome(d, records[job.index])

    return run


def _record(partial: Path | None, index: int) -> dict[str, Any]:
    """The record of a job finished in an earlier run (empty when there is none)."""
    file = None if partial is None else job_file(partial, index, ".json")
    return read_json(file) if file is not None and file.is_file() else {}


def strength_columns(delta: np.ndarray, strength: StrengthConfig,
                     identical: np.ndarray) -> dict[str, Any]:
    """The per-pair columns of ``strength.parquet`` from Δ ``[M, N]``.

    Pairs with chosen == rejected (``identical``, ``[N]`` bool) carry no preference: they are
    left out before ranking, so they never pile into one strength group, and their rank, group
    and category are null. Callers pass kept ties (target 0.5) here too: a tie has no direction,
    so a low Δ on it says nothing about a wrong label.
    """
    stats = strength_statistics(delta)
    ok = ~np.asarray(identical, dtype=bool)
    ranks = strength_ranks(stats.mean[ok])
    cats = categorize(stats.mean[ok], method=strength.categories, ranks=ranks, tau=strength.tau)
    return {
        "strength_mean": stats.mean,
        "strength_std": stats.std,
        "strength_members": stats.members.T,
        "strength_rank": _scatter(ranks, ok),
        "strength_group": _scatter(strength_groups(ranks), ok),
        "category": _scatter(cats, ok),
    }


def _scatter(values: np.ndarray, where: np.ndarray) -> list[Any]:
    """``values`` placed at the true positions of ``where``, ``None`` elsewhere."""
    out: list[Any] = [None] * where.shape[0]
    for i, v in zip(np.flatnonzero(where), values.tolist(), strict=True):
        out[i] = v
    return out


def detection_summary(mean: np.ndarray, flipped: np.ndarray) -> dict[str, float]:
    """How well low û finds known flipped labels: AUROC of -û, precision and recall of the
    lowest-û cuts."""
    flipped = np.asarray(flipped, dtype=bool)
    order = np.argsort(mean, kind="stable")
    out: dict[str, float] = {"flipped": int(flipped.sum()), "auroc": auroc(-mean, flipped)}
    for frac in (0.1, 0.2, 0.3):
        k = round(frac * len(mean))
        hit = flipped[order[:k]].sum()
        out[f"precision_lowest_{int(frac * 100)}"] = float(hit / k) if k else float("nan")
        out[f"recall_lowest_{int(frac * 100)}"] = (float(hit / flipped.sum())
                                                   if flipped.any() else float("nan"))
    return out


def agreement_summary(mean: np.ndarray, columns: dict[str, list[Any]]) -> dict[str, Any] | None:
    """Strength against human votes (``votes_for_chosen``, ``votes_against``, optional ``ties``).

    Unanimous pairs (every vote for chosen) against split ones: mean û of each, and the AUROC of û
    for separating them (above 0.5 means split pairs get lower strength).
    """
    if "votes_for_chosen" not in columns or "votes_against" not in columns:
        return None
    pro = np.asarray(columns["votes_for_chosen"], dtype=np.float64)  # None (null) reads as NaN
    con = np.asarray(columns["votes_against"], dtype=np.float64)
    ties = np.asarray(columns.get("ties", np.zeros_like(pro)), dtype=np.float64)
    # Votes that are missing, NaN or infinite say nothing: such pairs are counted, not guessed.
    known = np.isfinite(pro) & np.isfinite(con) & np.isfinite(ties)
    pro, con, ties, mean = pro[known], con[known], ties[known], np.asarray(mean)[known]
    unanimous = (con == 0) & (ties == 0)
    return {
        "votes_unknown": int((~known).sum()),
        "unanimous": int(unanimous.sum()),
        "split": int((~unanimous).sum()),
        "mean_strength_unanimous": float(mean[unanimous].mean()) if unanimous.any() else None,
        "mean_strength_split": float(mean[~unanimous].mean()) if (~unanimous).any() else None,
        "auroc_unanimous_vs_split": auroc(mean, unanimous),
        "majority_agrees": float((pro > con).mean()) if len(pro) else None,
    }


def wants_self_test(model: ModelConfig, strength: StrengthConfig) -> bool:
    """Whether the strength stage runs the self-test: as asked, else where it is cheap. A
    backend that trains its M members jointly on cached features (embedding) pays about K jobs
    of seconds for it; one that fine-tunes a network per member would pay K·M trainings."""
    if strength.no_self_test or strength.self_test:
        return strength.self_test
    return backend_class(model.backend).trains_members_jointly


def self_test(ds: Any, pairs: Pairs, *, model: ModelConfig, strength: StrengthConfig,
              layout: RunLayout | None, progress: bool = True) -> dict[str, Any]:
    """The gauge: flip ``strength.self_test_rate`` of the labels (by id, its own seed),
    measure cross-fitted strength on that copy with the same ensemble, and score how well low û
    finds the flips (:func:`rewardlab.gauge.instrument_summary`). With fewer distinct prompts
    than ``--folds`` it uses one fold per prompt; with a single prompt it cannot cross-fit and
    says so (``skipped``) instead of failing the command.

    The copy flips a label through its target (1 - t) rather than by swapping texts, so the
    backend's prepared inputs and feature cache serve it unchanged. Pairs that carry no
    direction (chosen == rejected, kept ties) are neither flipped nor scored.
    """
    prompts = len(set(pairs.prompt))
    if prompts < 2:  # cross-fitting needs two prompt groups at least
        reason = (f"skipped: cross-fitting needs at least 2 distinct prompts, and the data has "
                  f"{prompts}")
        log.warning("self-test %s; the ensemble's ranks are unverified", reason)
        return {"skipped": reason, "ok": None}
    t = pairs.label_target
    eligible = ~pairs.identical() & ~pairs.ties()
    seed = derive_seed(model.seed, "self-test")
    flip = flips_by_id(list(ds["id"]), strength.self_test_rate, seed=seed) & eligible
    copy = dataclasses.replace(pairs, target=np.where(flip, 1.0 - t, t))
    cfg = dataclasses.replace(model, seed=seed)  # members apart from the strength ensemble's
    crossfit = dataclasses.replace(strength, scheme="crossfit",
                                   folds=min(strength.folds, prompts))
    delta = ensemble_run(copy, model=cfg, strength=crossfit, layout=layout, progress=progress,
                         desc="self-test").delta
    u = np.where(flip, -1.0, 1.0) * delta.mean(axis=0)  # û as labelled in the copy
    out = instrument_summary(u[eligible], flip[eligible], rate=strength.self_test_rate,
                             seed=seed)
    log.info("self-test: %s", out["verdict"])
    return {"folds": crossfit.folds, "members": model.members, **out}


@dataclass
class StrengthOutput:
    """What the strength stage wrote."""

    parquet: Path
    jsonl: Path
    summary_path: Path
    summary: dict[str, Any]
    delta: np.ndarray


def run_strength(ds: Any, *, model: ModelConfig, strength: StrengthConfig, layout: RunLayout,
                 progress: bool = True,
                 extra_summary: dict[str, Any] | None = None) -> StrengthOutput:
    """Measure strength of every pair in ``ds`` and write the strength table (Parquet and JSONL)
    and its summary into ``layout``. Every input column is kept.
    """
    pairs = Pairs.from_dataset(ds)
    ensemble = ensemble_run(pairs, model=model, strength=strength, layout=layout,
                            progress=progress)
    delta = ensemble.delta
    identical = pairs.identical()
    ties = pairs.ties() & ~identical
    cols = strength_columns(delta, strength, identical | ties)
    write_pairs_table(ds, cols, layout.strength_parquet, layout.strength_jsonl)
    ok = ~(identical | ties)
    stats = strength_statistics(delta[:, ok])
    summary: dict[str, Any] = {
        "n": len(pairs), "members": model.members, "scheme": strength.scheme,
        "folds": strength.folds if strength.scheme == "crossfit" else None,
        "backend": model.backend, "model": model.model, "seed": model.seed,
        "categories": strength.categories,
        "identical_pairs_left_out": int(identical.sum()),
        "ties_left_out": int(ties.sum()),
        # Over-long pairs are cut (never dropped); how many, and how, when the backend counts.
        "truncation": ensemble.truncation,
        "jobs": ensemble.jobs,
        **summarize_strength(stats, np.asarray(cols["strength_group"], dtype=object)[ok],
                             np.asarray(cols["category"], dtype=object)[ok]),
    }
    if wants_self_test(model, strength):
        summary["instrument"] = self_test(ds, pairs, model=model, strength=strength,
                                          layout=layout, progress=progress)
    floor = dataclasses.replace(fit_noise_floor(stats.mean),
                                instrument_ok=summary.get("instrument", {}).get("ok"))
    # What flip@auto would flip (0 without evidence, or when the self-test found the ensemble
    # blind); meaningful for cross-fitted strength, where a model never scores a pair it
    # trained on. "noise" says which of "estimated", "clean" and "no evidence" holds.
    summary["estimated_noise_rate"] = floor.rate
    summary["noise"] = floor.to_dict()
    names = ds.column_names
    if "injected_flip" in names:
        summary["detection"] = detection_summary(
            stats.mean, np.asarray(ds["injected_flip"], dtype=bool)[ok])
    agree = agreement_summary(stats.mean, {
        c: np.asarray(ds[c], dtype=object)[ok].tolist()
        for c in ("votes_for_chosen", "votes_against", "ties") if c in names})
    if agree is not None:
        summary["human_agreement"] = agree
    if extra_summary:
        summary.update(extra_summary)
    write_json(layout.strength_summary, summary)
    # Finished: the per-job results have served their purpose (a rerun reuses the table).
    if ensemble.partial is None or may_remove_partial(ensemble.partial, ensemble.ranks):
        shutil.rmtree(layout.partial_root, ignore_errors=True)
    return StrengthOutput(layout.strength_parquet, layout.strength_jsonl,
                          layout.strength_summary, summary, delta)


def strength_command(*, data: InputConfig, load: LoadConfig, model: ModelConfig,
                     strength: StrengthConfig, noise: NoiseConfig, output: OutputConfig,
                     common: CommonConfig) -> CommandResult:
    """``rewardlab strength``: û and σ̂ of every pair, in ``OUT/strength/``."""
    from rewardlab.data import read_preferences

    ds, report = read_preferences(data.data, **load.read_kwargs())
    ds = inject_flips(ds, noise.inject_flips, seed=noise.inject_seed)
    # Under a multi-process launch every process encodes a share; only the main one trains.
    share = encode_before_training(model, lambda: Pairs.from_dataset(ds),
                                   progress=not common.quiet)
    if share is not None and not share.main:
        return CommandResult([share.line()], {}, share)
    res = run_strength(ds, model=model, strength=strength, layout=RunLayout.of(output.folder()),
                       progress=not common.quiet, extra_summary={"data": report.to_dict()})
    s = res.summary
    lines = [f"{s['n']} pairs, M={s['members']} ({s['scheme']}): "
             f"{s['fraction_negative']:.1%} have mean strength < 0"]
    lines += report.problem_lines()  # skips, ties and warnings: shown even with --quiet
    if s["ties_left_out"]:
        lines.append(f"{s['ties_left_out']} kept ties have no direction: left out of ranks, "
                     "groups, categories and the fractions above")
    if "detection" in s:
        lines.append(f"injected flips found with AUROC {s['detection']['auroc']:.3f}")
    lines += noise_lines(s)
    outputs = {"strength": res.parquet, "strength (jsonl)": res.jsonl,
               "summary": res.summary_path}
    return CommandResult(lines, outputs, res)


def noise_floor(summary: dict[str, Any] | None) -> NoiseFloor | None:
    """The noise floor a strength summary recorded, with the self-test's verdict (``None`` for
    a summary from before the floor was recorded: the plan then fits û alone)."""
    if not summary or "noise" not in summary:
        return None
    return NoiseFloor.from_dict(summary["noise"])


def noise_lines(summary: dict[str, Any]) -> list[str]:
    """The self-test's verdict and what the noise estimate means, for a command's output."""
    lines = []
    inst = summary.get("instrument") or {}
    if "verdict" in inst or "skipped" in inst:
        lines.append(inst.get("verdict") or f"self-test {inst['skipped']}")
    noise = summary.get("noise")
    if noise is None:
        return lines
    if noise["status"] == "estimated":
        lines.append(f"estimated share of wrong labels: {noise['rate']:.3f}")
    elif noise["status"] == "clean":
        lines.append("no evidence of wrong labels, from an ensemble that passed its self-test")
    else:
        lines.append("estimated noise rate 0 means no evidence, not clean data: "
                     + ("the ensemble is too weak to tell" if noise["instrument_ok"] is False
                        else "the ensemble was not self-tested"))
    return lines
