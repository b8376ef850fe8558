"""Toy preference data with a learnable signal, and tiny offline models, for backend tests."""

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from rewardlab.models.base import Pairs
from tiny_models import build_tiny_gpt2, build_tiny_llama

GOOD = ["Sure! Here is a clear, detailed and helpful answer.",
        "Happy to help: here are the steps, explained carefully.",
        "Great question. The short answer is yes, and here is why."]
BAD = ["I don't know.", "Go away, that is a stupid question.", "No."]


def make_toy_pairs(n: int, seed: int = 0) -> Pairs:
    rng = random.Random(seed)
    prompts = [f"Question number {i}: can you help me with task {i % 7}?" for i in range(n)]
    chosen = [f"{rng.choice(GOOD)} ({i})" for i in range(n)]
    rejected = [f"{rng.choice(BAD)} ({i})" for i in range(n)]
    return Pairs(prompts, chosen, rejected)


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
