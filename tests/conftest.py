"""Fixtures shared by the whole test suite."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
"""Real data sets, kept beside the checkout (``<repo>/../shared/data``), not in it."""


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data not found (real-data tests need the shared folder beside "
                    "the checkout)")
    return SHARED_DATA.resolve()
