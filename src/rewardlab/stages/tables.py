"""Stage outputs as tables with named columns: written atomically as Parquet and JSONL, read back
and joined by ``id``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rewardlab.files import atomic_path
from rewardlab.layout import find_strength_file

__all__ = ["join_strength", "read_strength_table", "write_pairs_table"]


ROWS_PER_GROUP = 65_536
"""Rows per Parquet row group, and per slice of the input held in memory while writing."""


def _rows(ds: Any, start: int, stop: int) -> pa.Table:
    """Rows ``start:stop`` of ``ds`` as a plain pyarrow Table (a zero-copy slice where it can)."""
    if not isinstance(ds, pa.Table) and getattr(ds, "_indices", None) is not None:
        return ds.with_format("arrow")[start:stop].replace_schema_metadata(None)
    table = ds if isinstance(ds, pa.Table) else ds.data.table
    return table.slice(start, stop - start).replace_schema_metadata(None)


def _arrow(values: Any) -> pa.Array:
    """One new column as an Arrow array: a ``[N, M]`` ndarray becomes a list column without a
    detour through N Python lists."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    if isinstance(values, np.ndarray) and values.ndim == 2:
        offsets = np.arange(0, values.size + 1, max(values.shape[1], 1), dtype=np.int32)
        if values.shape[1] == 0:
            offsets = np.zeros(values.shape[0] + 1, np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.reshape(-1)))
    return pa.array(values if isinstance(values, np.ndarray) else list(values))


def write_pairs_table(ds: Any, columns: dict[str, Any], parquet: str | os.PathLike[str],
                      jsonl: str | os.PathLike[str] | None = None, *,
                      rows_per_group: int = ROWS_PER_GROUP) -> list[str]:
    """Write every column of ``ds`` plus ``columns`` (name -> ``[N]`` values, or an ``[N, M]``
    array for a list column) to Parquet (+ JSONL), ``rows_per_group`` rows at a time.

    Both files are written atomically and streamed: the Parquet file gets one row group per
    slice, so only one slice of the input's rows is ever converted at once. Returns the column
    names written.
    """
    new = {name: _arrow(values) for name, values in columns.items()}
    n = len(ds)
    with contextlib.ExitStack() as stack:
        parquet_tmp = stack.enter_context(atomic_path(parquet))
        lines = None if jsonl is None else stack.enter_context(
            open(stack.enter_context(atomic_path(jsonl)), "w", encoding="utf-8"))
        writer: pq.ParquetWriter | None = None
        for start in range(0, max(n, 1), rows_per_group):
            stop = min(start + rows_per_group, n)
            part = _rows(ds, start, stop)
            part = part.drop_columns([c for c in new if c in part.column_names])
            for name, arr in new.items():
                part = part.append_column(name, arr.slice(start, stop - start))
            if writer is None:
                writer = stack.enter_context(pq.ParquetWriter(str(parquet_tmp), part.schema,
                                                              compression="zstd"))
            writer.write_table(part, row_group_size=rows_per_group)
            if lines is not None:
                _write_lines(lines, part)
        names = list(part.schema.names)
    return names


def _write_lines(fh: Any, part: pa.Table, step: int = 4096) -> None:
    """``part``'s rows as JSON lines, a few thousand Python dicts at a time."""
    for start in range(0, part.num_rows, step):
        fh.writelines(json_line(row) + "\n" for row in part.slice(start, step).to_pylist())


def json_line(row: dict[str, Any]) -> str:
    """One row as strict JSON: NaN (and infinities) become null, as in ``write_jsonl``."""
    try:
        return json.dumps(row, ensure_ascii=False, allow_nan=False)
    except ValueError:  # rare: a non-finite float somewhere in the row
        return json.dumps(_finite(row), ensure_ascii=False, allow_nan=False)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def read_strength_table(path: str | os.PathLike[str]) -> pa.Table:
    """The strength table named by ``path`` (a file or a run folder), with a clear error when
    there is none."""
    found = find_strength_file(path)
    if found is None:
        raise FileNotFoundError(f"{path}: no strength table here (expected a strength.parquet "
                                f"from `rewardlab strength`, or a folder holding one)")
    return pq.read_table(found)


def join_strength(pairs: Any, strength: pa.Table, *,
                  source: str = "strength file") -> np.ndarray:
    """û ``[N]`` for each pair of ``pairs`` (a dataset with ``id``, ``chosen``, ``rejected``),
    from a strength table, joined by id.

    Ids hash a pair's original orientation, so an id alone does not say which side the table
    called chosen: a table measured with other injected flips would join to the opposite label.
    Every joined pair must have the same chosen and rejected text in both; an error counts the
    pairs missing from the table, the pairs stored the other way round, and those whose texts
    differ.
    """
    lookup = {row_id: k for k, row_id in enumerate(strength.column("id").to_pylist())}
    t_chosen = strength.column("chosen").to_pylist()
    t_rejected = strength.column("rejected").to_pylist()
    missing, swapped, other, rows = [], [], [], []
    for pair_id, c, r in zip(pairs["id"], pairs["chosen"], pairs["rejected"], strict=True):
        k = lookup.get(pair_id)
        if k is None:
            missing.append(pair_id)
        elif (t_chosen[k], t_rejected[k]) == (c, r):
            rows.append(k)
        elif (t_chosen[k], t_rejected[k]) == (r, c):
            swapped.append(pair_id)
        else:
            other.append(pair_id)
    if missing or swapped or other:
        raise ValueError(_join_problem(source, len(pairs["id"]), missing, swapped, other))
    return strength.column("strength_mean").to_numpy()[rows].astype(np.float64)


def _join_problem(source: str, n: int, missing: list[str], swapped: list[str],
                  other: list[str]) -> str:
    parts = []
    if missing:
        parts.append(f"{len(missing)} of {n} training pairs have no strength (first ids: "
                     f"{', '.join(map(str, missing[:5]))})")
    if swapped:
        parts.append(f"{len(swapped)} pairs are stored with chosen and rejected the other way "
                     f"round (first ids: {', '.join(map(str, swapped[:5]))}); were they measured "
                     f"with other --inject-flips settings?")
    if other:
        parts.append(f"{len(other)} pairs have other texts under the same id (first ids: "
                     f"{', '.join(map(str, other[:5]))})")
    return (f"{source}: " + "; ".join(parts) + ". Measure strength on the same data, with the "
            "same --inject-flips and --inject-seed, with `rewardlab strength`")
