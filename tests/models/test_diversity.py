"""``--diversity``: what makes the embedding heads differ beyond seeds and data order.

Trained on toy pairs through a tiny random encoder, so each test is quick.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import rewardlab.models.embedding as embedding
from rewardlab.config import EmbeddingConfig, ModelConfig
from rewardlab.models.base import Pairs
from rewardlab.models.embedding import EmbeddingRewardModel
from rewardlab.models.heads import EnsembleHeads, feature_subspaces
from tiny_models import make_toy_pairs

_TINY: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def tiny(tiny_encoder_and_cache: dict[str, str]) -> str:
    """A tiny random encoder and a feature cache of this module's own."""
    _TINY.update(tiny_encoder_and_cache)
    return _TINY["model"]


def model(diversity: str, members: int = 4, epochs: int = 2) -> EmbeddingRewardModel:
    cfg = ModelConfig(model=_TINY.get("model", ""), members=members, epochs=epochs,
                      batch_size=16, device="cpu", max_length=32, diversity=diversity,
                      embedding=EmbeddingConfig(hidden=8, proj_dim=4,
                                                cache_dir=_TINY.get("cache", "")))
    return EmbeddingRewardModel(cfg, progress=False)


def pairs(n: int = 64) -> Pairs:
    return make_toy_pairs(n)


def orders(diversity: str, n: int, epoch: int, members: int = 3) -> torch.Tensor:
    """``[M, n]``: each member's order of the pairs in ``epoch`` (one batch of all n)."""
    return model(diversity, members=members)._batches(n, n, epoch)[0]


def test_bagging_gives_each_member_its_own_bootstrap_sample() -> None:
    plain = orders("none", 50, 0)
    bagged = orders("bagging", 50, 0)
    assert all(sorted(row.tolist()) == list(range(50)) for row in plain)  # permutations
    for row in bagged:
        assert len(set(row.tolist())) < 50  # drawn with replacement: repeats, some left out
    assert not torch.equal(bagged[0], bagged[1])
    # The sample is drawn once: a later epoch reorders the same multiset.
    later = orders("bagging", 50, 1)
    assert sorted(later[0].tolist()) == sorted(bagged[0].tolist())
    assert not torch.equal(later[0], bagged[0])


def test_subspace_masks() -> None:
    masks = feature_subspaces(3 * 10 + 1, [1, 2, 3], kind="prompt-response", keep=0.5)
    assert masks.shape == (3, 31)
    for row in masks:
        p, r, pr, length = row[:10], row[10:20], row[20:30], row[30]
        assert p.sum() == 5 and torch.equal(p, r) and torch.equal(p, pr) and length == 1
    assert not torch.equal(masks[0], masks[1])
    assert feature_subspaces(11, [1], kind="response", keep=0.3)[0, :10].sum() == 3
    with pytest.raises(ValueError, match="do not fit"):
        feature_subspaces(30, [1], kind="prompt-response", keep=0.5)


def test_a_member_ignores_the_features_outside_its_subspace() -> None:
    mask = feature_subspaces(31, [5, 6], kind="prompt-response", keep=0.5)
    assert not torch.equal(mask[0], mask[1])
    heads = EnsembleHeads(2, 31, 8, seeds=[5, 6], feature_mask=mask)
    x = torch.randn(3, 31)
    changed = x.clone()
    hidden = mask[0] == 0
    changed[:, hidden] += 10.0
    before, after = heads.score_all(x), heads.score_all(changed)
    assert torch.allclose(before[0], after[0])  # member 0 never reads those features
    assert not torch.allclose(before[1], after[1])


def test_anchored_members_stay_near_their_initial_weights(monkeypatch) -> None:
    data = pairs()
    free = model("none", epochs=10)
    free.fit(data)
    monkeypatch.setattr(embedding, "ANCHOR_WEIGHT", 100.0)
    anchored = model("anchored", epochs=10)
    anchored.fit(data)
    start = model("none")._new_heads(free.heads.in_dim)  # the same seeds: the same init

    def distance(m: EmbeddingRewardModel) -> float:
        return sum(float(((p - p0) ** 2).sum().detach()) for p, p0 in
                   zip(m.heads.parameters(), start.parameters()))

    assert distance(anchored) < 0.2 * distance(free)


@pytest.mark.parametrize("diversity", ["bagging", "subspace", "anchored"])
def test_diverse_models_save_and_load(tmp_path: Path, diversity: str) -> None:
    data = pairs()
    m = model(diversity)
    m.fit(data)
    m.save(tmp_path / "m")
    again = EmbeddingRewardModel.load(tmp_path / "m", progress=False)
    assert again.config.diversity == diversity
    torch.testing.assert_close(again.score(data), m.score(data))
    # Diversity changes what is trained, with the same seeds.
    plain = model("none")
    plain.fit(data)
    assert not torch.allclose(plain.score(data), m.score(data))
