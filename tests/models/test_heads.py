"""The batched ensemble equals M separately trained heads."""

import torch

from rewardlab.losses import preference_loss
from rewardlab.models.heads import EnsembleHeads, pair_features


def test_joint_training_equals_separate_members() -> None:
    torch.manual_seed(0)
    seeds = [11, 22, 33]
    feat_dim, hidden, batch = 7, 5, 4
    joint = EnsembleHeads(3, feat_dim, hidden, seeds=seeds)
    single = [EnsembleHeads(1, feat_dim, hidden, seeds=[s]) for s in seeds]
    opt_j = torch.optim.AdamW(joint.parameters(), lr=1e-2, weight_decay=0.01)
    opt_s = [torch.optim.AdamW(h.parameters(), lr=1e-2, weight_decay=0.01) for h in single]
    for _ in range(5):
        xc, xr = torch.randn(3, batch, feat_dim), torch.randn(3, batch, feat_dim)
        loss = preference_loss(joint(xc) - joint(xr), reduction="none").mean(dim=1).sum()
        opt_j.zero_grad()
        loss.backward()
        opt_j.step()
        for m, (head, opt) in enumerate(zip(single, opt_s)):
            lm = preference_loss(head(xc[m:m + 1]) - head(xr[m:m + 1]))
            opt.zero_grad()
            lm.backward()
            opt.step()
    for m, head in enumerate(single):
        assert torch.allclose(joint.w1[m], head.w1[0], atol=1e-6)
        assert torch.allclose(joint.w2[m], head.w2[0], atol=1e-6)


def test_members_differ_and_shapes() -> None:
    heads = EnsembleHeads(4, 6, 3, seeds=[1, 2, 3, 4])
    assert not torch.equal(heads.w1[0], heads.w1[1])
    out = heads.score_all(torch.randn(10, 6), chunk=3)
    assert out.shape == (4, 10)


def test_pair_features_layout() -> None:
    p, r = torch.ones(2, 3), torch.full((2, 3), 2.0)
    f = pair_features(p, r, torch.tensor([0, 10]))
    assert f.shape == (2, 10)
    assert f[0, 6:9].tolist() == [2.0, 2.0, 2.0]  # p ⊙ r
    assert f[0, -1] == 0.0 and f[1, -1] > 0
    assert pair_features(p, r, torch.tensor([1, 1]), kind="response").shape == (2, 4)
