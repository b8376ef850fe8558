"""Out-of-core features: the on-disk store, index-based subsets, the whitening PCA from streamed
moments (all texts or a bounded sample), chunked scoring, float16 storage."""

from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_encoder import tiny_encoder

from rewardlab.config import ModelConfig
from rewardlab.models import build_reward_model
from rewardlab.models.encode import TextEncoder
from rewardlab.models.features import (
    VectorStore,
    encode_pairs,
    project_store,
    projection_moments,
)
from rewardlab.models.heads import EIGEN_FLOOR, fit_projection, projection_from_moments
from tiny_models import make_toy_pairs


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tiny_encoder(tmp_path_factory.mktemp("tiny")))


def test_store_writes_scattered_rows_and_reads_windows(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import rewardlab.models.features as features

    monkeypatch.setattr(features, "WINDOW_BYTES", 5 * 3 * 4)  # 5 rows a window: many windows
    rng = np.random.default_rng(0)
    data = rng.normal(size=(23, 3)).astype(np.float32)
    store = VectorStore(23, 3, np.float32, tmp_path)
    order = rng.permutation(23)
    with store.writer() as write:
        for part in np.array_split(order, 4):
            write(part, data[part])
    assert np.array_equal(np.concatenate([w for _, w in store.windows()]), data)
    rows = np.array([22, 0, 7, 7, 13, 1])
    assert np.array_equal(store.take(rows), data[rows])
    assert np.array_equal(store.tensor().numpy(), data)
    assert not list(tmp_path.iterdir())  # the file has no name: nothing is left behind


def test_pair_vectors_match_the_encoder_and_subset_by_index(tiny: str, tmp_path: Path) -> None:
    pairs = make_toy_pairs(30)
    enc = TextEncoder(tiny, cache_dir=tmp_path / "cache", progress=False)
    vec = encode_pairs(enc, pairs, dtype="float32", folder=tmp_path / "s", key="k")
    table = vec.store.tensor()
    assert torch.equal(table[vec.prompt], enc.encode(pairs.prompt, side="prompt").vectors)
    chosen = enc.encode(list(pairs.chosen), side="response")
    assert torch.equal(table[vec.chosen], chosen.vectors)
    assert torch.equal(vec.chosen_tokens, chosen.tokens)
    # One row per distinct text: prompts and responses apart.
    assert vec.store.rows == len(set(pairs.prompt)) + len(set(pairs.chosen) | set(pairs.rejected))
    sub = vec.subset([4, 2, 2])
    assert sub.store is vec.store and list(sub.prompt) == [vec.prompt[i] for i in (4, 2, 2)]
    mask = np.zeros(30, bool)
    mask[[1, 5]] = True
    assert torch.equal(vec.subset(mask).rejected_tokens, vec.rejected_tokens[[1, 5]])


def test_float16_store_is_close_to_float32(tiny: str, tmp_path: Path) -> None:
    pairs = make_toy_pairs(20)
    enc = TextEncoder(tiny, cache_dir=tmp_path / "cache", progress=False)
    full = encode_pairs(enc, pairs, dtype="float32", folder=tmp_path / "s", key="k")
    half = encode_pairs(enc, pairs, dtype="float16", folder=tmp_path / "s", key="k")
    assert half.store.dtype == np.float16
    assert half.store.file.seek(0, 2) == full.store.file.seek(0, 2) // 2
    a, b = full.store.take(full.chosen), half.store.take(half.chosen)
    assert np.abs(a - b).max() < 1e-3 and not np.array_equal(a, b)


def test_projection_from_streamed_moments_equals_the_in_memory_fit(tiny: str,
                                                                   tmp_path: Path) -> None:
    pairs = make_toy_pairs(50)
    enc = TextEncoder(tiny, cache_dir=tmp_path / "cache", progress=False)
    vec = encode_pairs(enc, pairs, dtype="float32", folder=tmp_path / "s", key="k")
    occurrences = vec.store.tensor()[vec.occurrences()]  # [3N, D], repeats counted
    mean, cov, used = projection_moments(vec, limit=0, seed=0)
    assert used == {"texts": 150, "of": 150}
    assert torch.allclose(mean, occurrences.double().mean(0), atol=1e-9)
    assert torch.allclose(cov, torch.from_numpy(np.cov(occurrences.double().numpy().T)),
                          atol=1e-9)
    streamed = projection_from_moments(mean, cov, 8)
    in_memory = fit_projection(occurrences, 8)
    for a, b in zip(streamed, in_memory):
        assert torch.allclose(a, b, atol=1e-4)
    # A bounded sample: exactly `limit` occurrences, seeded, and close to the full fit.
    m1, _, u1 = projection_moments(vec, limit=60, seed=1)
    m2, _, _ = projection_moments(vec, limit=60, seed=1)
    m3, _, _ = projection_moments(vec, limit=60, seed=2)
    assert u1 == {"texts": 60, "of": 150}
    assert torch.equal(m1, m2) and not torch.equal(m1, m3)
    assert (m1 - mean).abs().max() < 0.1


def test_eigen_floor_applies_to_moments() -> None:
    cov = torch.diag(torch.tensor([1.0, 0.5, EIGEN_FLOOR / 10, 0.0], dtype=torch.float64))
    _, matrix = projection_from_moments(torch.zeros(4, dtype=torch.float64), cov, 4)
    assert matrix.shape == (4, 2)  # the two directions under the floor are not whitened


def test_projected_store_is_written_once_per_projection(tiny: str, tmp_path: Path) -> None:
    pairs = make_toy_pairs(10)
    enc = TextEncoder(tiny, cache_dir=tmp_path / "cache", progress=False)
    vec = encode_pairs(enc, pairs, dtype="float32", folder=tmp_path / "s", key="k")
    proj = (torch.zeros(32), torch.eye(32)[:, :5] * 2)
    first = project_store(vec.store, proj, tmp_path / "s")
    assert project_store(vec.store, proj, tmp_path / "s") is first
    assert torch.allclose(first, vec.store.tensor()[:, :5] * 2)
    other = project_store(vec.store, None, tmp_path / "s")
    assert torch.equal(other, vec.store.tensor()) and len(vec.store.projected) == 1


def test_chunked_scoring_equals_one_pass(tiny: str, tmp_path: Path) -> None:
    cfg = ModelConfig.from_dict({"members": 3, "epochs": 2, "batch_size": 8, "model": tiny,
                                 "proj_dim": 8, "cache_dir": str(tmp_path / "cache")})
    model = build_reward_model(cfg, progress=False)
    pairs = make_toy_pairs(40)
    vec = model.prepare(pairs)
    model.fit(vec)
    whole = model.score(vec)
    assert whole.shape == (3, 40)
    assert torch.equal(model.score(vec, chunk=7), whole)
    assert torch.equal(model.score(pairs), whole)  # texts are encoded (from the cache) alike
    assert model.projection_fit == {"texts": 120, "of": 120, "sampled": False}


def test_a_sampled_projection_is_reported_and_reproducible(tiny: str, tmp_path: Path) -> None:
    base = {"members": 2, "epochs": 1, "batch_size": 8, "model": tiny, "proj_dim": 8,
            "cache_dir": str(tmp_path / "cache"), "pca_sample": 50}
    pairs = make_toy_pairs(40)
    runs = []
    for _ in range(2):
        model = build_reward_model(ModelConfig.from_dict(base), progress=False)
        model.fit(pairs)
        runs.append(model.score(pairs))
    assert model.projection_fit == {"texts": 50, "of": 120, "sampled": True}
    assert torch.equal(runs[0], runs[1])
