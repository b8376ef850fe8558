"""Fixtures for the serving tests: small trained ensembles of both backends, and a real
uvicorn server on 127.0.0.1 in a background thread."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_helpers import running_server

# The toy data and tiny models of the other test folders, not copied here.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stages"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))


@pytest.fixture(scope="session")
def toy_pairs_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from toy_data import write_toy

    return write_toy(tmp_path_factory.mktemp("data") / "toy.jsonl", 60)


def _embedding_model(folder: Path, data: Path, members: int, epochs: int) -> Path:
    from rewardlab.config import ModelConfig
    from rewardlab.data import read_preferences
    from rewardlab.models import Pairs, build_reward_model

    ds, _ = read_preferences([data])
    model = build_reward_model(ModelConfig(members=members, epochs=epochs, seed=0),
                               progress=False)
    model.fit(Pairs.from_dataset(ds))
    return model.save(folder)


@pytest.fixture(scope="session")
def embedding_model(tmp_path_factory: pytest.TempPathFactory, toy_pairs_file: Path) -> Path:
    """A 3-member embedding-backend ensemble trained on toy pairs."""
    return _embedding_model(tmp_path_factory.mktemp("models") / "embedding", toy_pairs_file,
                            members=3, epochs=3)


@pytest.fixture(scope="session")
def one_member_model(tmp_path_factory: pytest.TempPathFactory, toy_pairs_file: Path) -> Path:
    """A 1-member embedding model: no uncertainty to serve."""
    return _embedding_model(tmp_path_factory.mktemp("models") / "one_member", toy_pairs_file,
                            members=1, epochs=1)


@pytest.fixture(scope="session")
def finetune_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-member finetune-backend ensemble of a tiny random GPT-2 (word-level tokenizer)."""
    from rewardlab.config import ModelConfig
    from rewardlab.models import build_reward_model
    from tiny_models import build_tiny_gpt2, toy_pairs

    backbone = build_tiny_gpt2(tmp_path_factory.mktemp("gpt2"))
    cfg = ModelConfig(backend="finetune", model=str(backbone), members=2, epochs=1,
                      batch_size=8, lr=1e-3, max_length=32, device="cpu")
    model = build_reward_model(cfg, progress=False)
    model.fit(toy_pairs(32, seed=0))
    return model.save(tmp_path_factory.mktemp("models") / "finetune")


@pytest.fixture(scope="session")
def scorer(embedding_model: Path):
    from rewardlab.serve.scorer import EnsembleScorer

    return EnsembleScorer.load(embedding_model, penalty=0.5, feature_cache=False)


@pytest.fixture(scope="session")
def server(scorer) -> Iterator[str]:
    """The default server, with a wait window long enough that concurrent requests merge."""
    with running_server(scorer, batch_wait_ms=50, max_items=16) as url:
        yield url
