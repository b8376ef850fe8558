"""NaN and ±inf in a run's numbers never crash the report: they are unknown values, counted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from rewardlab.report import build_report
from rewardlab.report.loaders import numeric_column
from rewardlab.report.stats import detect_opinions

INF, NAN = float("inf"), float("nan")


def _with(table: pa.Table, name: str, values: np.ndarray | list) -> pa.Table:
    return table.set_column(table.column_names.index(name), name, pa.array(values))


def test_non_finite_strength_and_votes_are_left_out_and_counted(
        strength_table: pa.Table, make_run: Callable[..., Path]) -> None:
    mean = strength_table.column("strength_mean").to_numpy().copy()
    std = strength_table.column("strength_std").to_numpy().copy()
    mean[[10, 11, 12]] = [INF, -INF, NAN]
    std[13] = INF
    extras = strength_table.column("extras").to_pylist()
    for i, bad in enumerate([INF, NAN, -INF]):
        extras[20 + i]["votes_for_chosen"] = bad
    extras[23]["score"] = INF  # a numeric extra column nothing draws
    table = _with(_with(_with(strength_table, "strength_mean", mean), "strength_std", std),
                  "extras", extras)

    result = build_report(make_run(table=table), progress=False)

    assert result.html.is_file() and not result.skipped
    assert any("3 pair(s) have no finite strength_mean" in n for n in result.notes)
    assert any("1 pair(s) have no finite strength_std" in n for n in result.notes)
    assert np.isnan(numeric_column(table, "strength_mean")[[10, 11, 12]]).all()
    votes = next(o for o in detect_opinions(table) if o.name.startswith("votes"))
    assert np.isnan(votes.agrees[[20, 21, 22]]).all()  # infinite votes say nothing
    assert votes.n_known == len(mean) - 3
    assert "Infinity" not in result.html.read_text(encoding="utf-8")
