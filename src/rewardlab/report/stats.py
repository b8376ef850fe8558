"""Numbers the report derives from saved results: per-group statistics, agreement, best method.

Each function prefers the most direct source (the strength table itself) and falls back to the
summaries other stages wrote, so a report can be made from partial results. When something
cannot be computed the functions raise :class:`Unavailable` with a reason a person can act on;
the caller shows that reason instead of the figure or table.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from rewardlab import strength
from rewardlab.layout import RunLayout
from rewardlab.layout import best_method as best_of_compare
from rewardlab.report.loaders import RunResults, column_values, numeric_column

__all__ = [
    "N_GROUPS",
    "BestMethod",
    "GroupStats",
    "Opinion",
    "Unavailable",
    "agreement_by_group",
    "best_method",
    "category_counts",
    "detect_opinions",
    "fraction_negative",
    "group_stats",
    "table_groups",
]

N_GROUPS = 10
"""Strength groups are deciles of û: group 1 holds the lowest 10%."""


class Unavailable(Exception):
    """A figure, table or number cannot be made from the results at hand; the message says why."""


# --- strength groups -------------------------------------------------------------------------

def table_groups(table: pa.Table) -> np.ndarray:
    """Group 1..10 of each pair: the saved ``strength_group``, else deciles of û recomputed.

    Recomputing keeps older or hand-made tables usable; it matches the strength stage's rule
    (:func:`rewardlab.strength.strength_groups`). Pairs with no û get group 0.
    """
    saved = numeric_column(table, "strength_group")
    if saved is not None and not np.isnan(saved).all():
        return np.nan_to_num(saved, nan=0.0).astype(np.int64)
    mean = numeric_column(table, "strength_mean")
    assert mean is not None  # the loader rejects tables without it
    groups = np.zeros(len(mean), dtype=np.int64)
    valid = np.flatnonzero(~np.isnan(mean))
    # The strength stage's own rule, so recomputed groups match saved ones.
    groups[valid] = strength.strength_groups(strength.strength_ranks(mean[valid]),
                                             n_groups=N_GROUPS)
    return groups


@dataclass(frozen=True)
class GroupStats:
    """Mean û and mean σ̂ of each strength group, and where they came from."""

    group: list[int]
    n: list[int]
    mean_strength: list[float]
    mean_std: list[float]
    source: str

    @property
    def total(self) -> int:
        """Pairs behind the statistics."""
        return int(sum(self.n))


def group_stats(results: RunResults) -> GroupStats:
    """Per-group mean û and σ̂, from the strength table or else from summary.json."""
    if results.strength is not None:
        table = results.strength
        mean = numeric_column(table, "strength_mean")
        std = numeric_column(table, "strength_std")
        assert mean is not None and std is not None
        groups = table_groups(table)
        ids = [g for g in range(1, N_GROUPS + 1) if (groups == g).any()]
        if not ids:
            raise Unavailable("strength table has no pairs with a strength group")
        masks = [groups == g for g in ids]
        return GroupStats(
            group=ids,
            n=[int(m.sum()) for m in masks],
            mean_strength=[float(np.nanmean(mean[m])) for m in masks],
            mean_std=[float(np.nanmean(std[m])) for m in masks],
            source=_name(results.strength_path),
        )
    records = (results.summary or {}).get("groups")
    if isinstance(records, list):
        rows = [r for r in records if isinstance(r, dict) and r.get("group") is not None]
        rows.sort(key=lambda r: r["group"])
        if rows:
            return GroupStats(
                group=[int(r["group"]) for r in rows],
                n=[int(r.get("n") or 0) for r in rows],
                mean_strength=[_float(r.get("mean_strength")) for r in rows],
                mean_std=[_float(r.get("std_strength_mean")) for r in rows],
                source=_name(results.summary_path),
            )
    raise Unavailable("no strength/strength.parquet and no groups in strength/summary.json")


def _name(path: Any) -> str:
    """A result file's name for "taken from" notes."""
    return path.name if path is not None else "?"


def _float(x: Any) -> float:
    """JSON number or null → float (NaN for null, so plots leave a gap)."""
    return float(x) if isinstance(x, (int, float)) else float("nan")


def fraction_negative(results: RunResults) -> float | None:
    """Share of pairs with û < 0, from summary.json or the strength table."""
    saved = (results.summary or {}).get("fraction_negative")
    if isinstance(saved, (int, float)):
        return float(saved)
    if results.strength is None:
        return None
    mean = numeric_column(results.strength, "strength_mean")
    assert mean is not None
    mean = mean[~np.isnan(mean)]
    return float((mean < 0).mean()) if len(mean) else None


def category_counts(results: RunResults) -> dict[str, int]:
    """Pairs per category (incorrect / ambiguous / normal), from summary.json or the table."""
    saved = (results.summary or {}).get("category_counts")
    if isinstance(saved, dict) and saved:
        return {str(k): int(v) for k, v in saved.items() if isinstance(v, (int, float))}
    if results.strength is None or "category" not in results.strength.column_names:
        return {}
    counts = Counter(str(c) for c in results.strength.column("category").to_pylist() if c)
    # Fixed order of the known categories first, so the summary reads the same in every run.
    known = [c for c in ("incorrect", "ambiguous", "normal") if c in counts]
    return {c: counts[c] for c in [*known, *sorted(set(counts) - set(known))]}


# --- best method -----------------------------------------------------------------------------

@dataclass(frozen=True)
class BestMethod:
    """The method with the best validation accuracy and its gain over the baseline."""

    method: str
    valid_accuracy_mean: float | None
    gain_over_baseline: float | None
    source: str
    gain_split: str = "valid"
    """Where the gain was measured: ``test`` (nothing was chosen on it) or ``valid``."""
    gain_ci95: tuple[float, float] | None = None
    distinguishable: bool | None = None
    """Whether the 95% interval of the gain excludes 0 (None without an interval)."""
    gain_pairs: int | None = None


def best_method(results: RunResults) -> BestMethod | None:
    """run.json's ``best_method`` when present, else the top of compare.json; None without both."""
    saved = (results.run_info or {}).get("best_method")
    if isinstance(saved, dict) and isinstance(saved.get("method"), str):
        acc, gain = saved.get("valid_accuracy_mean"), saved.get("gain_over_baseline")
        ci = saved.get("gain_ci95")
        return BestMethod(
            method=saved["method"],
            valid_accuracy_mean=float(acc) if isinstance(acc, (int, float)) else None,
            gain_over_baseline=float(gain) if isinstance(gain, (int, float)) else None,
            source=RunLayout(results.run_dir).run_json.name,
            gain_split=str(saved.get("gain_split") or "valid"),
            gain_ci95=(float(ci[0]), float(ci[1])) if isinstance(ci, list) and len(ci) == 2
            and all(isinstance(x, (int, float)) for x in ci) else None,
            distinguishable=saved.get("distinguishable") if isinstance(
                saved.get("distinguishable"), bool) else None,
            gain_pairs=saved.get("gain_pairs") if isinstance(saved.get("gain_pairs"), int)
            else None,
        )
    best = best_of_compare(results.compare or [])
    if best is None:
        return None
    return BestMethod(best["method"], float(best["valid_accuracy_mean"]),
                      best["gain_over_baseline"], RunLayout(results.run_dir).compare_json.name,
                      gain_split=best["gain_split"])


# --- second opinions (agreement with the dataset's label) ------------------------------------

@dataclass(frozen=True)
class Opinion:
    """A second opinion on each pair's label: 1.0 agrees, 0.0 disagrees, NaN unknown."""

    name: str
    agrees: np.ndarray

    @property
    def n_known(self) -> int:
        """Pairs on which this opinion says something."""
        return int((~np.isnan(self.agrees)).sum())


_AGREE_WORDS = {"chosen": 1.0, "true": 1.0, "yes": 1.0, "agree": 1.0,
                "rejected": 0.0, "false": 0.0, "no": 0.0, "disagree": 0.0}


def _agreement_value(v: Any) -> float:
    """One value of an agreement column → 1.0 / 0.0 / NaN.

    "chosen" means the second opinion prefers the dataset's chosen answer, i.e. agrees; a bool or
    number in [0, 1] already means "agrees" (fractions are averaged as shares).
    """
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v) if 0.0 <= v <= 1.0 else float("nan")
    if isinstance(v, str):
        return _AGREE_WORDS.get(v.strip().lower(), float("nan"))
    return float("nan")


def _column_opinion(table: pa.Table, name: str) -> Opinion | None:
    values = column_values(table, name)
    if values is None:
        return None
    return Opinion(name, np.array([_agreement_value(v) for v in values], dtype=np.float64))


def _votes_opinion(table: pa.Table) -> Opinion | None:
    """Annotator votes: agrees when more annotators voted for chosen than against it."""
    pro = numeric_column(table, "votes_for_chosen")
    con = numeric_column(table, "votes_against")
    if pro is None or con is None:
        return None
    known = ~(np.isnan(pro) | np.isnan(con))
    agrees = np.where(known, (pro > con).astype(np.float64), np.nan)
    return Opinion("votes (for chosen > against)", agrees)


def _flip_opinion(table: pa.Table) -> Opinion | None:
    """Noise benchmarks record which labels were flipped on purpose: those are known wrong."""
    flipped = column_values(table, "injected_flip")
    if flipped is None:
        return None
    agrees = np.array([np.nan if f is None else float(not f) for f in flipped], dtype=np.float64)
    return Opinion("label not flipped on purpose (injected_flip)", agrees)


def detect_opinions(table: pa.Table, agree_column: str | None = None) -> list[Opinion]:
    """Second opinions the table carries; only ``agree_column`` when it is given.

    Without ``agree_column`` this looks for ``reference_label``, then annotator votes
    (``votes_for_chosen`` / ``votes_against``), then ``injected_flip``, and returns every one
    found so they can be compared in one figure.
    """
    if agree_column is not None:
        found = _column_opinion(table, agree_column)
        if found is None:
            raise Unavailable(f"column {agree_column!r} not found (looked in the table's "
                              "columns and in extras)")
        candidates = [found]
    else:
        candidates = [o for o in (_column_opinion(table, "reference_label"),
                                  _votes_opinion(table), _flip_opinion(table)) if o is not None]
        if not candidates:
            raise Unavailable("no second opinion in the data (no reference_label, "
                              "votes_for_chosen/votes_against or injected_flip; "
                              "name one with agree_column)")
    usable = [o for o in candidates if o.n_known > 0]
    if not usable:
        names = ", ".join(o.name for o in candidates)
        raise Unavailable(f"{names}: no usable values (expected chosen/rejected, bool or 0/1)")
    return usable


def agreement_by_group(opinion: Opinion, groups: np.ndarray) -> tuple[list[int], list[float],
                                                                       list[int]]:
    """Per strength group: share of known pairs on which ``opinion`` agrees, and their count."""
    ids, shares, counts = [], [], []
    for g in range(1, N_GROUPS + 1):
        vals = opinion.agrees[groups == g]
        vals = vals[~np.isnan(vals)]
        if len(vals):
            ids.append(g)
            shares.append(float(vals.mean()))
            counts.append(len(vals))
    return ids, shares, counts
