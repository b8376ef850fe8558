"""Fixtures for stage tests."""

from pathlib import Path

import pytest
from toy_data import write_toy


@pytest.fixture
def toy_file(tmp_path: Path) -> Path:
    return write_toy(tmp_path / "toy.jsonl", 80, flip_every=5)
