"""Find and read the saved results of a run directory, for the report.

The report never trains anything: it reads what earlier stages wrote and shows whatever exists.
Every file is optional; a file that is missing or unreadable is recorded in ``RunResults.notes``
(with the reason) instead of raising, so one broken file never costs the rest of the report.

Two layouts are accepted:

* a full run (``rewardlab run -o RUN_DIR``): ``run.json``, ``strength/``, ``groups/``,
  ``compare/``;
* a plain strength output (``rewardlab strength -o OUT``): ``strength.parquet`` and
  ``summary.json`` directly in the directory.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rewardlab.files import read_json
from rewardlab.layout import RunLayout, find_strength_file, find_strength_summary

__all__ = [
    "STRENGTH_REQUIRED",
    "RunResults",
    "column_values",
    "load_run",
    "numeric_column",
]

STRENGTH_REQUIRED = ("strength_mean", "strength_std")
"""Columns without which a strength table is useless to the report."""



@dataclass
class RunResults:
    """Everything the report could read from one run directory.

    A field is ``None`` when its file is missing or unreadable; ``notes`` says which and why.
    """

    run_dir: Path
    run_info: dict[str, Any] | None = None
    strength_path: Path | None = None
    strength: pa.Table | None = None
    summary_path: Path | None = None
    summary: dict[str, Any] | None = None
    groups_path: Path | None = None
    groups: list[dict[str, Any]] | None = None
    compare_path: Path | None = None
    compare: list[dict[str, Any]] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def found_anything(self) -> bool:
        """Whether at least one result file was read."""
        return any(
            x is not None
            for x in (self.run_info, self.strength, self.summary, self.groups, self.compare)
        )


def _read_json_as(path: Path, kind: type, what: str, notes: list[str]) -> Any:
    """Read JSON expecting a top-level ``kind`` (dict or list); note and return None otherwise."""
    try:
        obj = read_json(path)
    except (OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        notes.append(f"{what}: cannot read {path.name}: {exc}")
        return None
    if not isinstance(obj, kind):
        notes.append(f"{what}: {path.name} holds a {type(obj).__name__}, expected a "
                     f"{kind.__name__}")
        return None
    return obj


def _records(obj: list[Any] | None, what: str, notes: list[str]) -> list[dict[str, Any]] | None:
    """Keep the dict records of a JSON list; an empty or record-less list counts as missing."""
    if obj is None:
        return None
    records = [r for r in obj if isinstance(r, dict)]
    if len(records) < len(obj):
        notes.append(f"{what}: ignored {len(obj) - len(records)} entries that are not records")
    if not records:
        notes.append(f"{what}: no records")
        return None
    return records


def _read_strength(path: Path, notes: list[str]) -> pa.Table | None:
    """Read the strength table; a table without û and σ̂ is noted and treated as missing."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        notes.append(f"strength: cannot read {path.name}: {exc}")
        return None
    missing = [c for c in STRENGTH_REQUIRED if c not in table.column_names]
    if missing:
        notes.append(f"strength: {path.name} lacks column(s) {', '.join(missing)}")
        return None
    for name in STRENGTH_REQUIRED:
        values = numeric_column(table, name, finite=False)
        bad = int((~np.isfinite(values)).sum()) if values is not None else 0
        if bad:
            notes.append(f"strength: {bad} pair(s) have no finite {name} (NaN, ±inf or not a "
                         f"number); they are left out of the figures and lists")
    return table


def load_run(run_dir: str | Path) -> RunResults:
    """Read every known result file under ``run_dir``.

    Raises:
        FileNotFoundError: ``run_dir`` is not a directory.
        ValueError: none of the known result files exists there (likely a wrong path).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory not found: {run_dir}")
    res = RunResults(run_dir=run_dir)

    layout = RunLayout(run_dir)
    run_file = layout.run_json
    if run_file.is_file():
        res.run_info = _read_json_as(run_file, dict, "run", res.notes)

    res.strength_path = find_strength_file(run_dir)
    if res.strength_path is not None:
        res.strength = _read_strength(res.strength_path, res.notes)
    res.summary_path = find_strength_summary(run_dir, res.strength_path)
    if res.summary_path is not None:
        res.summary = _read_json_as(res.summary_path, dict, "summary", res.notes)

    groups_file = layout.groups_json
    if groups_file.is_file():
        res.groups_path = groups_file
        res.groups = _records(_read_json_as(groups_file, list, "groups", res.notes),
                              "groups", res.notes)
    compare_file = layout.compare_json
    if compare_file.is_file():
        res.compare_path = compare_file
        res.compare = _records(_read_json_as(compare_file, list, "compare", res.notes),
                               "compare", res.notes)

    if not res.found_anything and not res.notes:
        raise ValueError(f"no results in {run_dir}: looked for {', '.join(layout.looked_for())}")
    return res


# --- column access ---------------------------------------------------------------------------

def _extras_getter(column: pa.ChunkedArray) -> Callable[[Any], dict[str, Any]]:
    """How to turn one ``extras`` value into a dict: struct/map values or JSON text."""
    if pa.types.is_map(column.type):
        return lambda v: dict(v) if v else {}

    def from_text(v: Any) -> dict[str, Any]:
        if isinstance(v, dict):
            return v
        if isinstance(v, str) and v:
            try:
                parsed = json.loads(v)
            except ValueError:
                return {}
            return parsed if isinstance(parsed, dict) else {}
        return {}

    return from_text


def column_values(table: pa.Table, name: str) -> list[Any] | None:
    """Values of ``name`` per row: a top-level column, or a key of the ``extras`` column.

    Stages keep dataset-specific fields (votes, reference labels) in ``extras``, which may be a
    struct, a map or JSON text depending on the writer, so all three are read. Returns None when
    ``name`` is in neither place.
    """
    if name in table.column_names:
        return table.column(name).to_pylist()
    if "extras" not in table.column_names:
        return None
    extras = table.column("extras")
    if pa.types.is_struct(extras.type):
        # A struct has a fixed schema: answer from it without touching Python objects per row.
        if extras.type.get_field_index(name) < 0:
            return None
        return extras.combine_chunks().field(name).to_pylist()
    getter = _extras_getter(extras)
    values = [getter(v).get(name) for v in extras.to_pylist()]
    return values if any(v is not None for v in values) else None


def numeric_column(table: pa.Table, name: str, *, finite: bool = True) -> np.ndarray | None:
    """``name`` as float64 with NaN for nulls and non-numbers, or None when absent.

    With ``finite`` (the default) ±inf is NaN too: no figure, count or vote means anything
    with an infinite value, and the report must draw whatever the data holds.
    """
    out = _numeric_column(table, name)
    if out is not None and finite:
        out[np.isinf(out)] = np.nan
    return out


def _numeric_column(table: pa.Table, name: str) -> np.ndarray | None:
    if name in table.column_names:
        col = table.column(name)
        kind = col.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
            # Fast path for the big numeric columns (û, σ̂, rank): no Python object per row.
            as_float = pc.cast(col, pa.float64()).fill_null(np.nan)
            return np.array(as_float.to_numpy(), dtype=np.float64)
    values = column_values(table, name)
    if values is None:
        return None
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        # bool is an int subclass; votes and 0/1 flags both convert sensibly to float.
        if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
            out[i] = float(v)
    return out
