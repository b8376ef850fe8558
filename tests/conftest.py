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


@pytest.fixture(scope="session", autouse=True)
def _feature_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One feature cache for the session: tests never touch ~/.cache, and share encodings."""
    import os

    os.environ["REWARDLAB_CACHE"] = str(tmp_path_factory.mktemp("feature-cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
