"""Pixel-wise losses: L1, MSE and Charbonnier.

All three share one calling convention, ``loss(pred, target, weight=None)``,
and the same reduction rules:

* ``'none'``: the elementwise loss, same shape as ``pred``;
* ``'sum'``: the sum over all elements;
* ``'mean'``: the mean over all elements. With a ``weight`` it is the
  weighted mean ``sum(w * l) / sum(w)``, ``w`` broadcast to the shape of the
  loss first, so a 0/1 mask averages over the masked-in pixels only (the same
  rule as BasicSR's ``weight_reduce_loss``).

``loss_weight`` multiplies the reduced loss.
"""

from typing import Optional

import torch
from torch import Tensor, nn

from basicattn.registry import LOSSES

_REDUCTIONS = ('none', 'mean', 'sum')


def _check_reduction(reduction: str) -> None:
    """Raise a ``ValueError`` naming the allowed values for a bad reduction."""
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f'reduction={reduction!r} is not supported; allowed '
            f'values are {", ".join(map(repr, _REDUCTIONS))}'
        )


def weighted_reduce(
    loss: Tensor, weight: Optional[Tensor] = None, reduction: str = 'mean'
) -> Tensor:
    """Apply an optional elementwise weight to a loss map, then reduce it.

    Args:
        loss (Tensor): Elementwise loss, any shape.
        weight (Tensor, optional): Weight broadcastable to ``loss``.
            Default: None.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``. With a weight,
            ``'mean'`` divides by the sum of the broadcast weight.
            Default: ``'mean'``.

    Returns:
        Tensor: The reduced loss (a scalar unless ``reduction='none'``).
    """
    _check_reduction(reduction)
    if weight is not None:
        try:
            weight = torch.broadcast_to(weight.to(loss.dtype), loss.shape)
        except RuntimeError as err:
            raise ValueError(
                f'weight of shape {tuple(weight.shape)} does not '
                f'broadcast to the loss shape '
                f'{tuple(loss.shape)}'
            ) from err
        loss = loss * weight
    if reduction == 'none':
        return loss
    if reduction == 'sum':
        return loss.sum()
    if weight is None:
        return loss.mean()
    # Weighted mean; the clamp only guards an all-zero weight (loss is 0 then).
    return loss.sum() / weight.sum().clamp_min(torch.finfo(loss.dtype).tiny)


def _check_shapes(pred: Tensor, target: Tensor, name: str) -> None:
    if pred.shape != target.shape:
        raise ValueError(
            f'{name}: pred shape {tuple(pred.shape)} differs '
            f'from target shape {tuple(target.shape)}'
        )


class _PixelLoss(nn.Module):
    """Shared argument handling of the pixel losses."""

    def __init__(self, loss_weight: float = 1.0, reduction: str = 'mean'):
        super().__init__()
        _check_reduction(reduction)
        self.loss_weight = float(loss_weight)
        self.reduction = reduction

    def elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        """The loss of every element (same shape as ``pred``)."""
        raise NotImplementedError

    def forward(self, pred: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        """Compute the loss.

        Args:
            pred (Tensor): Prediction, e.g. (N, C, H, W).
            target (Tensor): Ground truth, same shape as ``pred``.
            weight (Tensor, optional): Elementwise weight broadcastable to
                ``pred``. Default: None.

        Returns:
            Tensor: ``loss_weight`` times the reduced loss.
        """
        _check_shapes(pred, target, type(self).__name__)
        loss = self.elementwise(pred, target)
        return self.loss_weight * weighted_reduce(loss, weight, self.reduction)

    def extra_repr(self) -> str:
        """``loss_weight`` and ``reduction``, for ``repr``."""
        return f'loss_weight={self.loss_weight}, reduction={self.reduction!r}'


@LOSSES.register_module()
class L1Loss(_PixelLoss):
    """L1 (mean absolute error) loss, ``|pred - target|``.

    Args:
        loss_weight (float): Multiplier of the reduced loss. Default: 1.0.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
            Default: ``'mean'``.
    """

    def elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        """``|pred - target|``."""
        return (pred - target).abs()


@LOSSES.register_module()
class MSELoss(_PixelLoss):
    """MSE (L2) loss, ``(pred - target) ** 2``.

    Args:
        loss_weight (float): Multiplier of the reduced loss. Default: 1.0.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
            Default: ``'mean'``.
    """

    def elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        """``(pred - target) ** 2``."""
        return (pred - target) ** 2


@LOSSES.register_module()
class CharbonnierLoss(_PixelLoss):
    """Charbonnier loss, a differentiable variant of L1.

    ``loss = sqrt((pred - target) ** 2 + eps ** 2)``

    This is the form of eq. (13) of the DKSAN paper, with ``eps`` squared
    inside the root, so ``loss -> |pred - target|`` as ``eps -> 0`` and equals
    ``eps`` where ``pred == target``. Note that BasicSR's ``CharbonnierLoss``
    adds ``eps`` unsquared (``sqrt(d ** 2 + eps)``); to reproduce a BasicSR
    setting ``eps_b`` here, pass ``eps = sqrt(eps_b)``.

    Args:
        loss_weight (float): Multiplier of the reduced loss. Default: 1.0.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
            Default: ``'mean'``.
        eps (float): The Charbonnier constant (squared in the formula),
            > 0. Half-precision inputs are computed in float32 so that
            ``eps ** 2`` does not underflow. Default: 1e-12.
    """

    def __init__(self, loss_weight: float = 1.0, reduction: str = 'mean', eps: float = 1e-12):
        super().__init__(loss_weight, reduction)
        if not eps > 0:
            raise ValueError(
                'eps must be > 0 (the gradient at pred == '
                f'target is 0/0 otherwise), got eps={eps!r}'
            )
        self.eps = float(eps)

    def elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        """``sqrt((pred - target) ** 2 + eps ** 2)`` (float32 for half inputs)."""
        diff = pred - target
        if diff.dtype in (torch.float16, torch.bfloat16):
            # eps ** 2 = 1e-24 underflows in half precision (AMP): use fp32.
            diff = diff.float()
        return torch.sqrt(diff**2 + self.eps**2)

    def extra_repr(self) -> str:
        """Also ``eps``."""
        return super().extra_repr() + f', eps={self.eps}'
