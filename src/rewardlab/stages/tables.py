"""Stage outputs as tables with named columns: written atomically as Parquet and JSONL, read back
and joined by ``id``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rewardlab.files import write_jsonl, write_table
from rewardlab.layout import find_strength_file

__all__ = ["join_strength", "read_strength_table", "write_pairs_table"]


def _plain_table(ds: Any) -> pa.Table:
    """A ``datasets.Dataset`` (or a pyarrow Table) as a pyarrow Table without HF metadata."""
    table = ds if isinstance(ds, pa.Table) else ds.data.table
    if not isinstance(ds, pa.Table) and getattr(ds, "_indices", None) is not None:
        table = ds.with_format("arrow")[:]  # materialise a select()/shuffle() view
    return table.replace_schema_metadata(None)


def write_pairs_table(ds: Any, columns: dict[str, Any], parquet: str | os.PathLike[str],
                      jsonl: str | os.PathLike[str] | None = None) -> pa.Table:
    """Write every column of ``ds`` plus ``columns`` (name -> ``[N]`` values) to Parquet (+ JSONL).

    Returns the written table. Both files are written atomically.
    """
    table = _plain_table(ds)
    for name, values in columns.items():
        if name in table.column_names:
            table = table.drop_columns([name])
        arr = values if isinstance(values, pa.Array) else pa.array(
            values.tolist() if isinstance(values, np.ndarray) else list(values))
        table = table.append_column(name, arr)
    write_table(parquet, table)
    if jsonl is not None:
        write_jsonl(jsonl, table.to_pylist())
    return table


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
