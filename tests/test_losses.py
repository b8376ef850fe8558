"""preference_loss against values worked out by hand, gradients, shapes and extremes."""

import math

import pytest
import torch

from rewardlab.losses import preference_loss


def _sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_bradley_terry_by_hand() -> None:
    # Δ = 1: -log σ(1) = log(1 + e^-1) = 0.31326...
    delta = torch.tensor([1.0, 0.0, -2.0], dtype=torch.float64)
    expected = [math.log(1 + math.exp(-1)), math.log(2), math.log(1 + math.exp(2))]
    got = preference_loss(delta, reduction="none")
    assert got.tolist() == pytest.approx(expected, rel=1e-12)
    assert float(preference_loss(delta)) == pytest.approx(sum(expected) / 3, rel=1e-12)


def test_label_smoothing_by_hand() -> None:
    # α = 0.1, Δ = 2: -(0.9·log σ(2) + 0.1·log σ(-2))
    alpha, d = 0.1, 2.0
    expected = -((1 - alpha) * math.log(_sig(d)) + alpha * math.log(_sig(-d)))
    got = preference_loss(torch.tensor([d], dtype=torch.float64), target=1 - alpha)
    assert float(got) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.32692801, rel=1e-6)


def test_adaptive_margin_by_hand() -> None:
    # Δ = 0.5, û = 1.5: -log σ(0.5 - 1.5) = log(1 + e^1)
    got = preference_loss(torch.tensor([0.5], dtype=torch.float64),
                          margin=torch.tensor([1.5], dtype=torch.float64))
    assert float(got) == pytest.approx(math.log(1 + math.e), rel=1e-12)


def test_flipped_label_is_bt_on_negated_delta() -> None:
    d = torch.tensor([0.7, -1.3, 3.0], dtype=torch.float64)
    flipped = preference_loss(d, target=0.0, reduction="none")
    assert torch.allclose(flipped, preference_loss(-d, reduction="none"))
    assert float(flipped[0]) == pytest.approx(math.log(1 + math.exp(0.7)), rel=1e-12)


def test_per_pair_target_and_margin() -> None:
    d = torch.tensor([1.0, 1.0], dtype=torch.float64)
    t = torch.tensor([1.0, 0.0], dtype=torch.float64)
    m = torch.tensor([0.0, 2.0], dtype=torch.float64)
    got = preference_loss(d, target=t, margin=m, reduction="none")
    # pair 2: t = 0, m = 2: -log σ(-(1 - 2)) = -log σ(1)
    assert got.tolist() == pytest.approx([math.log(1 + math.exp(-1))] * 2, rel=1e-12)


def test_gradcheck() -> None:
    d = torch.tensor([0.3, -1.2, 2.5], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([1.0, 0.9, 0.0], dtype=torch.float64)
    m = torch.tensor([0.1, -0.4, 1.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda d, m: preference_loss(d, target=t, margin=m, reduction="none"), (d, m))


def test_gradient_of_bt_is_sigmoid_minus_one() -> None:
    d = torch.tensor([0.4], dtype=torch.float64, requires_grad=True)
    preference_loss(d).backward()
    assert float(d.grad) == pytest.approx(_sig(0.4) - 1, rel=1e-12)


@pytest.mark.parametrize("scale", [1e2, 1e3, 1e4])
def test_finite_for_huge_deltas(scale: float) -> None:
    d = torch.tensor([scale, -scale], requires_grad=True)
    loss = preference_loss(d, target=torch.tensor([0.9, 0.9]), reduction="none")
    assert torch.isfinite(loss).all()
    # -log σ(-1e4) ≈ 1e4 exactly, not inf.
    assert float(loss[1].detach()) == pytest.approx(0.9 * scale, rel=1e-3)
    loss.sum().backward()
    assert torch.isfinite(d.grad).all()


def test_margin_does_not_broadcast_against_column_rewards() -> None:
    # A [B] margin against [B, 1] rewards would silently become [B, B] with plain broadcasting.
    rewards_c, rewards_r = torch.randn(4, 1), torch.randn(4, 1)
    with pytest.raises(ValueError, match="shape"):
        preference_loss(rewards_c - rewards_r, margin=torch.zeros(4))
    out = preference_loss((rewards_c - rewards_r).squeeze(-1), margin=torch.zeros(4),
                          reduction="none")
    assert out.shape == (4,)


def test_shapes_and_reductions() -> None:
    d = torch.randn(3, 5)
    assert preference_loss(d, reduction="none").shape == (3, 5)
    assert preference_loss(d).shape == ()
    assert float(preference_loss(d, reduction="sum")) == pytest.approx(
        float(preference_loss(d, reduction="none").sum()), rel=1e-6)
    with pytest.raises(ValueError, match="reduction"):
        preference_loss(d, reduction="max")


def test_scalar_tensor_target_and_margin_apply_to_every_pair() -> None:
    d = torch.tensor([1.0, -0.5], dtype=torch.float64)
    got = preference_loss(d, target=torch.tensor(0.0, dtype=torch.float64),
                          margin=torch.tensor(0.5, dtype=torch.float64), reduction="none")
    # t = 0, m = 0.5: -log σ(-(Δ - 0.5)) = log(1 + e^(Δ - 0.5))
    assert got.tolist() == pytest.approx([math.log(1 + math.exp(0.5)), math.log(1 + math.exp(-1))],
                                         rel=1e-12)


def test_output_follows_delta_dtype() -> None:
    # float64 targets must not promote a float32 loss (or a bf16 one) to float64.
    d = torch.tensor([0.5, -1.0], dtype=torch.float32)
    t = torch.tensor([0.9, 1.0], dtype=torch.float64)
    m = torch.tensor([0.1, 0.0], dtype=torch.float64)
    assert preference_loss(d, target=t, margin=m, reduction="none").dtype == torch.float32
    assert preference_loss(d, target=t, margin=m).dtype == torch.float32


def test_sum_and_mean_by_hand() -> None:
    d = torch.tensor([0.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    assert float(preference_loss(d, reduction="sum")) == pytest.approx(4 * math.log(2))
    assert float(preference_loss(d, reduction="mean")) == pytest.approx(math.log(2))
    # A per-pair target shaped like delta but of another shape is refused, naming the argument.
    with pytest.raises(ValueError, match=r"^target has shape \(3,\) but delta has shape \(4,\)"):
        preference_loss(d, target=torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"^margin has shape \(4, 1\) but delta has shape"):
        preference_loss(d, margin=torch.ones(4, 1, dtype=torch.float64))


# -- the nuclear-norm diversity term -------------------------------------------------------------
def test_nuclear_diversity_by_hand() -> None:
    from rewardlab.losses import nuclear_diversity_loss

    # Two members, rank 1, d = 2. Orthogonal rows: the stack is I, singular values 1 and 1.
    apart = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]], dtype=torch.float64)
    assert float(nuclear_diversity_loss([apart])) == pytest.approx(-2.0, rel=1e-12)
    # The same row twice: [[1, 0], [1, 0]] has singular values √2 and 0, a smaller norm.
    same = torch.tensor([[[1.0, 0.0]], [[1.0, 0.0]]], dtype=torch.float64)
    assert float(nuclear_diversity_loss([same])) == pytest.approx(-math.sqrt(2), rel=1e-12)
    # Layers are averaged; a layer of another width counts on its own:
    # diag(3, 4) stacked from two rank-1 members has nuclear norm 7.
    wide = torch.tensor([[[3.0, 0.0, 0.0]], [[0.0, 4.0, 0.0]]], dtype=torch.float64)
    assert float(nuclear_diversity_loss([apart, wide])) == pytest.approx(-(2 + 7) / 2, rel=1e-12)
    assert float(nuclear_diversity_loss([])) == 0.0


def test_nuclear_diversity_gradient_pushes_a_member_away() -> None:
    from rewardlab.losses import nuclear_diversity_loss

    frozen = torch.tensor([[1.0, 0.0]], dtype=torch.float64)  # an earlier member, detached
    current = torch.tensor([[1.0, 0.2]], dtype=torch.float64, requires_grad=True)
    nuclear_diversity_loss([torch.stack([frozen, current])]).backward()
    # Descending the loss moves the current row's second (free) coordinate further from the
    # frozen member's direction.
    assert current.grad is not None and float(current.grad[0, 1]) < 0
    generic = torch.randn(3, 2, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: nuclear_diversity_loss([a]), (generic,))
