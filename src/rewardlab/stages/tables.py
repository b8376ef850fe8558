"""Stage outputs as tables with named columns: written atomically as Parquet and JSONL, read back
and joined by ``id``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
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


def join_strength(ids: Sequence[str], strength: pa.Table, *,
                  source: str = "strength file") -> np.ndarray:
    """û for each id in ``ids``, from a strength table; an error lists ids the table lacks."""
    table_ids = strength.column("id").to_pylist()
    values = strength.column("strength_mean").to_numpy()
    lookup = dict(zip(table_ids, values))
    missing = [i for i in ids if i not in lookup]
    if missing:
        raise ValueError(f"{source}: {len(missing)} of {len(ids)} training pairs have no strength "
                         f"(first ids: {', '.join(map(str, missing[:5]))}); measure strength on "
                         f"the same data with `rewardlab strength`")
    return np.array([lookup[i] for i in ids], dtype=np.float64)
