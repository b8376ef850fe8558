"""``--diversity``: what makes the embedding heads differ beyond seeds and data order.

Trained on random features through ``fit_features`` (no encoder), so each test is quick.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import rewardlab.models.embedding as embedding
from rewardlab.config import EmbeddingConfig, ModelConfig
from rewardlab.models.base import member_seed
from rewardlab.models.embedding import EmbeddingRewardModel, PairFeatures
from rewardlab.models.heads import EnsembleHeads, feature_subspaces


def model(diversity: str, members: int = 4, epochs: int = 2) -> EmbeddingRewardModel:
    cfg = ModelConfig(members=members, epochs=epochs, batch_size=16, device="cpu",
                      embedding=EmbeddingConfig(hidden=8, diversity=diversity))
    return EmbeddingRewardModel(cfg, progress=False)


def features(n: int = 64, dim: int = 4) -> PairFeatures:
    g = torch.Generator().manual_seed(0)
    f = 3 * dim + 1
    return PairFeatures(torch.randn(n, f, generator=g) + 0.5, torch.randn(n, f, generator=g))


def test_bagging_gives_each_member_its_own_bootstrap_sample() -> None:
    seeds = [member_seed(0, m) for m in range(3)]
    plain = model("none")._member_orders(50, seeds, epoch=0)
    bagged = model("bagging")._member_orders(50, seeds, epoch=0)
    assert all(sorted(row.tolist()) == list(range(50)) for row in plain)  # permutations
    for row in bagged:
        assert len(set(row.tolist())) < 50  # drawn with replacement: repeats, some left out
    assert not torch.equal(bagged[0], bagged[1])
    # The sample is drawn once: a later epoch reorders the same multiset.
    later = model("bagging")._member_orders(50, seeds, epoch=1)
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
    feats = features()
    free = model("none")
    free.fit_features(feats)
    monkeypatch.setattr(embedding, "ANCHOR_WEIGHT", 10.0)
    anchored = model("anchored")
    anchored.fit_features(feats)
    start = model("none")._new_heads(feats.chosen.shape[1])  # the same seeds: the same init

    def distance(m: EmbeddingRewardModel) -> float:
        return sum(float(((p - p0) ** 2).sum().detach()) for p, p0 in
                   zip(m.heads.parameters(), start.parameters()))

    assert distance(anchored) < 0.2 * distance(free)


@pytest.mark.parametrize("diversity", ["bagging", "subspace", "anchored"])
def test_diverse_models_save_and_load(tmp_path: Path, diversity: str) -> None:
    feats = features()
    m = model(diversity)
    m.fit_features(feats)
    m.save(tmp_path / "m")
    again = EmbeddingRewardModel.load(tmp_path / "m", progress=False)
    assert again.config.embedding.diversity == diversity
    torch.testing.assert_close(again.score_features(feats), m.score_features(feats))
    # Diversity changes what is trained, with the same seeds.
    plain = model("none")
    plain.fit_features(feats)
    assert not torch.allclose(plain.score_features(feats), m.score_features(feats))
