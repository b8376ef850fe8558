"""Report test fixtures: fake run directories (see fake_report_run.py) and a prebuilt report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fake_report_run import PAIR_LIMIT, PARTS, strength_table_for_tests, write_run


@pytest.fixture
def make_run(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_run(parts=..., layout=..., table=...)`` → a fresh fake run directory."""
    counter = iter(range(1000))

    def make(parts: tuple[str, ...] = PARTS, layout: str = "run",
             table: pa.Table | None = None) -> Path:
        return write_run(tmp_path / f"run{next(counter)}", parts, layout, table)

    return make


@pytest.fixture(scope="session")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A report built once from a complete fake run, for the tests that only read it."""
    from rewardlab.report import build_report

    run_dir = write_run(tmp_path_factory.mktemp("full") / "run")
    return run_dir, build_report(run_dir, pair_limit=PAIR_LIMIT, progress=False)


@pytest.fixture
def strength_table() -> pa.Table:
    """The fake run's strength table, for tests that need to change it."""
    return strength_table_for_tests()
