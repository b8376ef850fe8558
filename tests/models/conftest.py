"""Toy preference data with a learnable signal, and tiny offline models, for backend tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from tiny_encoder import tiny_encoder

from rewardlab.models.base import Pairs
from tiny_models import build_tiny_gpt2, build_tiny_llama, make_toy_pairs


@pytest.fixture(scope="module")
def tiny_encoder_and_cache(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A tiny random encoder (``model``) and a feature cache (``cache``), the module's own."""
    return {"model": str(tiny_encoder(tmp_path_factory.mktemp("tiny"))),
            "cache": str(tmp_path_factory.mktemp("cache"))}


@pytest.fixture
def toy_pairs() -> Pairs:
    return make_toy_pairs(120)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread for the test: the CPU is shared, and two threads fighting a neighbour
    are slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_gpt2(tmp_path_factory.mktemp("gpt2"))


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("llama"))
