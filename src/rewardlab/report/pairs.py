"""Choose the pairs a person should look at, for the report's pair browser.

Three lists, ``limit`` pairs each: the lowest û (the ensemble prefers the rejected answer, so the
label is likely wrong), the û nearest 0 (the ensemble cannot tell the answers apart: ambiguous),
and the highest σ̂ (the ensemble members disagree with each other). A pair on several lists is
shown once, tagged with every list it is on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from rewardlab.layout import STRENGTH_COLUMNS
from rewardlab.report.loaders import numeric_column
from rewardlab.report.stats import table_groups

__all__ = ["LISTS", "MAX_TEXT_CHARS", "select_pairs"]

LISTS: dict[str, str] = {
    "lowest": "lowest û (label likely wrong)",
    "ambiguous": "û nearest 0 (ambiguous)",
    "disagree": "highest σ̂ (members disagree)",
}
"""List key → what being on it means, in the order the lists are filled."""

MAX_TEXT_CHARS = 20_000
"""Longer texts are cut, so one huge transcript cannot bloat the report past usefulness."""

_TEXT_COLUMNS = ("prompt", "chosen", "rejected")
_OWN_COLUMNS = frozenset({"id", *_TEXT_COLUMNS, "source", "suspicious", "injected_flip",
                          "category", *STRENGTH_COLUMNS})
MAX_EXTRAS = 8
"""Extra input columns shown beside each pair (human votes, scores, ...), at most."""


def _list_orders(mean: np.ndarray, std: np.ndarray) -> dict[str, np.ndarray]:
    """Row indices of each list, best candidates first; rows without a value are left out.

    Stable sorts make ties fall back to file order, so the same table always gives the same
    report.
    """
    has_mean = np.flatnonzero(~np.isnan(mean))
    has_std = np.flatnonzero(~np.isnan(std))
    return {
        "lowest": has_mean[np.argsort(mean[has_mean], kind="stable")],
        "ambiguous": has_mean[np.argsort(np.abs(mean[has_mean]), kind="stable")],
        "disagree": has_std[np.argsort(-std[has_std], kind="stable")],
    }


def _cut(text: Any) -> str:
    """Texts as str, cut to :data:`MAX_TEXT_CHARS` with a visible note of what was left out."""
    text = "" if text is None else str(text)
    if len(text) <= MAX_TEXT_CHARS:
        return text
    return f"{text[:MAX_TEXT_CHARS]}… [{len(text) - MAX_TEXT_CHARS:,} more characters not shown]"


def _optional_float(x: float) -> float | None:
    """NaN → None, so the embedded JSON stays strict (JSON has no NaN)."""
    return None if np.isnan(x) else round(float(x), 6)


def select_pairs(table: pa.Table, limit: int) -> list[dict[str, Any]]:
    """Rows for the pair browser: up to ``limit`` per list, deduplicated by id, with tags.

    Each row has ``id``, ``prompt``, ``chosen``, ``rejected``, ``mean`` (û), ``std`` (σ̂),
    ``category``, ``group``, ``source``, ``suspicious`` (list), ``flipped`` (injected flip or
    None), ``lists`` (the keys of :data:`LISTS` it was chosen for) and ``extras``: the pair's
    other input columns with short scalar values (human votes beside û, say).
    """
    if limit <= 0 or table.num_rows == 0:
        return []
    mean = numeric_column(table, "strength_mean")
    std = numeric_column(table, "strength_std")
    assert mean is not None and std is not None  # the loader rejects tables without them
    has_id = "id" in table.column_names
    ids = ([str(x) for x in table.column("id").to_pylist()] if has_id
           else [str(i) for i in range(table.num_rows)])

    chosen_rows: dict[str, int] = {}  # id → row index, in first-listed order
    tags: dict[str, list[str]] = {}
    for key, order in _list_orders(mean, std).items():
        for i in order[:limit]:
            pid = ids[i]
            chosen_rows.setdefault(pid, int(i))
            if key not in tags.setdefault(pid, []):
                tags[pid].append(key)

    indices = list(chosen_rows.values())
    groups = table_groups(table)[indices]
    extras = [c for c in table.column_names if c not in _OWN_COLUMNS][:MAX_EXTRAS]
    wanted = [c for c in (*_TEXT_COLUMNS, "category", "source", "suspicious", "injected_flip",
                          *extras) if c in table.column_names]
    # A zero-column table converts to no records at all, hence the explicit empty ones.
    records = (table.select(wanted).take(pa.array(indices, type=pa.int64())).to_pylist()
               if wanted else [{} for _ in indices])

    rows = []
    for pid, i, group, rec in zip(chosen_rows, indices, groups, records, strict=True):
        suspicious = rec.get("suspicious")
        flipped = rec.get("injected_flip")
        rows.append({
            "id": pid,
            **{c: _cut(rec.get(c)) for c in _TEXT_COLUMNS},
            "mean": _optional_float(mean[i]),
            "std": _optional_float(std[i]),
            "category": str(rec.get("category") or ""),
            "group": int(group) if group > 0 else None,
            "source": str(rec.get("source") or ""),
            "suspicious": [str(s) for s in suspicious] if isinstance(suspicious, list) else [],
            "flipped": bool(flipped) if flipped is not None else None,
            "lists": tags[pid],
            "extras": {c: _scalar(rec.get(c)) for c in extras
                       if _scalar(rec.get(c)) is not None},
        })
    return rows


def _scalar(value: Any) -> str | float | int | bool | None:
    """A short, JSON-safe rendering of an extra column's value, or None to leave it out."""
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return None if not np.isfinite(value) else round(value, 6)
    if isinstance(value, str) and len(value) <= 80:
        return value
    return None
