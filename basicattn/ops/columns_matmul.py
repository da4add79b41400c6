"""The GEMM half of a convolution on im2col columns.

:func:`columns_matmul` is ``weight @ columns`` per convolution group (one
``bmm``; autograd does the backward). The deformable kernels' scope-cell path
uses it; DCNv2 has its own chunked function
(:mod:`basicattn.ops.deform_conv_function`).
"""

from typing import Optional

import torch

__all__ = ['columns_matmul']


def _batched_weight(weight: torch.Tensor, groups: int, batch: int) -> torch.Tensor:
    """(O, C/groups, ...) -> (batch*groups, O/groups, C/groups*...)."""
    o = weight.shape[0]
    w = weight.reshape(groups, o // groups, -1)
    return (
        w.unsqueeze(0).expand(batch, -1, -1, -1).reshape(batch * groups, o // groups, w.shape[-1])
    )


def columns_matmul(
    columns: torch.Tensor, weight: torch.Tensor, groups: int, bias: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Grouped ``weight @ columns``.

    Args:
        columns (Tensor): (B, C*T, P): ``T`` values per input channel
            (kernel taps, or scope cells), channel-major.
        weight (Tensor): (O, C/groups, *tap_shape), ``prod(tap_shape) == T``.
        groups (int): Convolution groups.
        bias (Tensor | None): (O,).

    Returns:
        Tensor: (B, O, P).
    """
    b, ct, p = columns.shape
    o = weight.shape[0]
    w = _batched_weight(weight, groups, b)
    cols = columns.reshape(b * groups, ct // groups, p)
    # bmm then add: baddbmm with a broadcast bias runs at about half the
    # speed of bmm on CPU (torch 2.13, MKL).
    out = torch.bmm(w, cols).view(b, o, p)
    if bias is not None:
        out = out + bias.view(1, o, 1)
    return out
