"""MetaRM's step on a model small enough to check by hand, and the contrastive views."""

from __future__ import annotations

import math

import pytest
import torch

from rewardlab.losses import difference_loss, preference_loss
from rewardlab.models.objectives import ascended, contrastive_views, metarm_step


def _sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


# r(x) = w·x, w = (1, 0). Meta set: one prompt, responses s1 = (1, 1), s2 = (0, 0), so
# J(w) = σ(|w·(s1 - s2)|)/2 and ∇J = σ'(1)/2 · (1, 1) at w. One labelled pair: chosen (0, 1),
# rejected (0, 0), so Δ = w_2: 0 at θ, where ∇L = (0, σ(0) - 1) = (0, -0.5).
S1, S2 = torch.tensor([1.0, 1.0], dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
XC, XR = torch.tensor([0.0, 1.0], dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
A = _sig(1) * (1 - _sig(1)) / 2  # ∇J's entries at θ


def _j(w: torch.Tensor) -> torch.Tensor:
    return difference_loss(torch.stack([w @ S1, w @ S2]).unsqueeze(0))


def _bt(w: torch.Tensor) -> torch.Tensor:
    return preference_loss((w @ XC - w @ XR).unsqueeze(0))


def test_outer_gradient_is_taken_at_the_ascended_weights() -> None:
    w = torch.nn.Parameter(torch.tensor([1.0, 0.0], dtype=torch.float64))
    eta = 1.0
    j, loss = metarm_step([w], lambda: _j(w), lambda: _bt(w), meta_lr=eta)
    # θ' = (1 + ηA, ηA): Δ(θ') = ηA, so ∇L(θ') = (0, σ(ηA) - 1), not θ's (0, -0.5).
    assert float(j) == pytest.approx(_sig(1) / 2, rel=1e-12)
    assert float(loss) == pytest.approx(math.log(1 + math.exp(-eta * A)), rel=1e-12)
    assert w.grad.tolist() == pytest.approx([0.0, _sig(eta * A) - 1], rel=1e-12)
    assert abs(float(w.grad[1]) - (-0.5)) > 0.02  # the two gradients really differ here
    # and the weights are θ again, exactly, for the optimizer to update
    assert w.detach().tolist() == [1.0, 0.0]


def test_ascent_step_moves_j_up() -> None:
    w = torch.nn.Parameter(torch.tensor([1.0, 0.0], dtype=torch.float64))
    before = float(_j(w).detach())
    inside = []
    with ascended([w], _j(w), 1.0):
        inside.append(w.detach().clone())
        after = float(_j(w).detach())
    assert inside[0].tolist() == pytest.approx([1 + A, A], rel=1e-12)
    # J(θ') = σ(1 + 2A)/2 > σ(1)/2 = J(θ)
    assert after == pytest.approx(_sig(1 + 2 * A) / 2, rel=1e-12) and after > before


def test_zero_meta_lr_is_plain_bradley_terry() -> None:
    w = torch.nn.Parameter(torch.tensor([1.0, 0.0], dtype=torch.float64))
    metarm_step([w], lambda: _j(w), lambda: _bt(w), meta_lr=0.0)
    assert w.grad.tolist() == pytest.approx([0.0, -0.5], rel=1e-12)


def test_no_objective_is_a_no_op_and_weights_come_back_after_an_error() -> None:
    w = torch.nn.Parameter(torch.tensor([1.0, 0.0], dtype=torch.float64))
    with ascended([w], None, 1.0):
        assert w.detach().tolist() == [1.0, 0.0]
    with pytest.raises(RuntimeError, match="boom"), ascended([w], _j(w), 1.0):
        raise RuntimeError("boom")
    assert w.detach().tolist() == [1.0, 0.0]


def test_contrastive_views_by_hand() -> None:
    # two pairs: rows 0, 1 chosen, rows 2, 3 rejected
    first = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.0]])
    second = first + 10
    a, b = contrastive_views("simcse-diff", first, second)
    assert a.tolist() == [[0.0, -1.0], [-2.0, 1.0]] and b.tolist() == a.tolist()
    a, b = contrastive_views("simcse-response", first, second)
    assert a is first and b is second
    with pytest.raises(ValueError, match="unknown"):
        contrastive_views("swav", first, second)
