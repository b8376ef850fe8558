"""Toy preference data with a learnable signal, for backend tests."""

import random

import pytest

from rewardlab.models.base import Pairs

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
