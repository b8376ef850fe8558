"""Pair tables written in row groups, with a streamed JSONL copy."""

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rewardlab.stages.tables import write_pairs_table


def _table(n: int) -> pa.Table:
    return pa.table({"id": [f"p{i}" for i in range(n)], "prompt": [f"q{i}" for i in range(n)],
                     "score": [float(i) if i != 3 else math.nan for i in range(n)]})


def test_row_groups_hold_the_same_table_as_one_pass(tmp_path: Path) -> None:
    members = np.arange(20, dtype=np.float64).reshape(10, 2)
    cols = {"strength_mean": members.mean(axis=1), "strength_members": members,
            "category": ["normal"] * 9 + [None], "score": np.ones(10)}
    names = write_pairs_table(_table(10), cols, tmp_path / "g.parquet", tmp_path / "g.jsonl",
                              rows_per_group=3)
    write_pairs_table(_table(10), cols, tmp_path / "one.parquet", tmp_path / "one.jsonl")
    grouped, one = pq.ParquetFile(tmp_path / "g.parquet"), pq.read_table(tmp_path / "one.parquet")
    assert grouped.metadata.num_row_groups == 4
    assert grouped.read().equals(one) and names == one.column_names
    assert names == ["id", "prompt", "strength_mean", "strength_members", "category", "score"]
    assert one.column("strength_members").to_pylist()[4] == [8.0, 9.0]
    assert one.schema.field("strength_members").type == pa.list_(pa.float64())
    lines = (tmp_path / "g.jsonl").read_text().splitlines()
    assert lines == (tmp_path / "one.jsonl").read_text().splitlines() and len(lines) == 10
    assert json.loads(lines[9]) == {"id": "p9", "prompt": "q9", "strength_mean": 18.5,
                                    "strength_members": [18.0, 19.0], "category": None,
                                    "score": 1.0}


def test_nan_becomes_null_and_empty_tables_keep_their_columns(tmp_path: Path) -> None:
    write_pairs_table(_table(5), {"x": np.zeros(5)}, tmp_path / "a.parquet", tmp_path / "a.jsonl",
                      rows_per_group=2)
    assert json.loads((tmp_path / "a.jsonl").read_text().splitlines()[3])["score"] is None
    names = write_pairs_table(_table(0), {"x": np.zeros(0)}, tmp_path / "e.parquet",
                              tmp_path / "e.jsonl")
    assert names == ["id", "prompt", "score", "x"]
    assert pq.read_table(tmp_path / "e.parquet").num_rows == 0
    assert (tmp_path / "e.jsonl").read_text() == ""


def test_a_selected_view_is_written_row_group_by_row_group(tmp_path: Path) -> None:
    import datasets

    view = datasets.Dataset(_table(10)).select([9, 0, 4, 4, 7])  # rows through an index map
    write_pairs_table(view, {"x": np.arange(5)}, tmp_path / "v.parquet", rows_per_group=2)
    table = pq.read_table(tmp_path / "v.parquet")
    assert table.column("id").to_pylist() == ["p9", "p0", "p4", "p4", "p7"]
    assert table.column("x").to_pylist() == [0, 1, 2, 3, 4]
