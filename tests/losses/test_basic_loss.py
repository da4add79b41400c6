"""Tests of the pixel losses against values worked out by hand."""

import math

import pytest
import torch

from basicattn.losses.basic_loss import CharbonnierLoss, L1Loss, MSELoss
from basicattn.registry import LOSSES

# pred - target = [[0.5, -1.0], [2.0, 0.0]]
PRED = torch.tensor([[[[1.5, 0.0], [3.0, 1.0]]]])
TARGET = torch.tensor([[[[1.0, 1.0], [1.0, 1.0]]]])
WEIGHT = torch.tensor([[[[1.0, 0.0], [2.0, 1.0]]]])


def test_l1_all_reductions():
    assert L1Loss()(PRED, TARGET).item() == pytest.approx(3.5 / 4)
    assert L1Loss(reduction='sum')(PRED, TARGET).item() == pytest.approx(3.5)
    none = L1Loss(reduction='none')(PRED, TARGET)
    assert torch.allclose(none, torch.tensor([[[[0.5, 1.0], [2.0, 0.0]]]]))
    assert L1Loss(loss_weight=2.0)(PRED, TARGET).item() == pytest.approx(1.75)


def test_mse_all_reductions():
    # squares: 0.25, 1, 4, 0
    assert MSELoss()(PRED, TARGET).item() == pytest.approx(5.25 / 4)
    assert MSELoss(reduction='sum')(PRED, TARGET).item() == pytest.approx(5.25)
    none = MSELoss(reduction='none', loss_weight=0.5)(PRED, TARGET)
    assert torch.allclose(none, 0.5 * torch.tensor([[[[0.25, 1.0], [4.0, 0.0]]]]))


def test_charbonnier_values():
    eps = 0.5
    expect = [math.sqrt(d * d + eps * eps) for d in (0.5, -1.0, 2.0, 0.0)]
    loss = CharbonnierLoss(eps=eps, reduction='none')(PRED, TARGET)
    assert torch.allclose(loss.flatten(), torch.tensor(expect))
    assert CharbonnierLoss(eps=eps)(PRED, TARGET).item() == pytest.approx(sum(expect) / 4)
    assert CharbonnierLoss(eps=eps, reduction='sum')(PRED, TARGET).item() == pytest.approx(
        sum(expect)
    )
    # Default eps=1e-12 is squared: where pred == target the loss is 1e-12,
    # not sqrt(1e-12) = 1e-6 as with BasicSR's unsquared form.
    zero = CharbonnierLoss(reduction='none')(TARGET, TARGET)
    assert torch.allclose(zero, torch.full_like(zero, 1e-12), rtol=1e-4, atol=0)
    assert CharbonnierLoss()(PRED, TARGET).item() == pytest.approx(3.5 / 4)


def test_weighted_reductions():
    # weighted |d|: 0.5, 0, 4, 0 -> sum 4.5, weight sum 4
    l1 = L1Loss()
    assert l1(PRED, TARGET, WEIGHT).item() == pytest.approx(4.5 / 4)
    assert L1Loss(reduction='sum')(PRED, TARGET, WEIGHT).item() == pytest.approx(4.5)
    none = L1Loss(reduction='none')(PRED, TARGET, WEIGHT)
    assert torch.allclose(none, torch.tensor([[[[0.5, 0.0], [4.0, 0.0]]]]))
    # A weight broadcast over 3 channels: mean divides by the broadcast sum.
    pred3 = PRED.expand(1, 3, 2, 2)
    target3 = TARGET.expand(1, 3, 2, 2)
    assert l1(pred3, target3, WEIGHT).item() == pytest.approx(13.5 / 12)
    # MSE weighted: 0.25, 0, 8, 0
    assert MSELoss()(PRED, TARGET, WEIGHT).item() == pytest.approx(8.25 / 4)


@pytest.mark.parametrize('cls', [L1Loss, MSELoss, CharbonnierLoss])
def test_gradient(cls):
    pred = PRED.clone().requires_grad_(True)
    cls(reduction='sum')(pred, TARGET).backward()
    d = PRED - TARGET
    if cls is L1Loss:
        expect = torch.sign(d)
    elif cls is MSELoss:
        expect = 2 * d
    else:  # d / sqrt(d^2 + eps^2), finite (0) where d == 0
        expect = d / torch.sqrt(d**2 + 1e-24)
    assert torch.isfinite(pred.grad).all()
    assert torch.allclose(pred.grad, expect, atol=1e-6)


def test_half_precision_charbonnier_grad_is_finite():
    pred = TARGET.clone().half().requires_grad_(True)
    CharbonnierLoss()(pred, TARGET.half()).backward()
    assert torch.isfinite(pred.grad).all()


@pytest.mark.parametrize('name', ['L1Loss', 'MSELoss', 'CharbonnierLoss'])
def test_registry_build(name):
    loss = LOSSES.build(dict(type=name, loss_weight=0.5, reduction='sum'))
    assert loss.loss_weight == 0.5 and loss.reduction == 'sum'


def test_errors():
    with pytest.raises(ValueError, match="'mean'.*'sum'"):
        L1Loss(reduction='avg')
    with pytest.raises(ValueError, match='eps'):
        CharbonnierLoss(eps=0)
    with pytest.raises(ValueError, match='shape'):
        L1Loss()(PRED, TARGET[..., :1])
    with pytest.raises(ValueError, match='weight of shape'):
        L1Loss()(PRED, TARGET, torch.ones(3, 1, 1))
