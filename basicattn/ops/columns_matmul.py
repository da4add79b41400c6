"""The GEMM half of a convolution on im2col columns, plain and modulated.

:func:`columns_matmul` is ``weight @ columns`` per convolution group (one
``bmm``; autograd does the backward). :func:`modulated_columns_matmul` first
multiplies the columns by a per-(group, tap, pixel) modulation mask; it is a
custom autograd function because the generic backward of ``samples * mask``
allocates two extra column-sized tensors (``grad * mask`` and
``grad * samples`` before the channel sum), and on CPU those passes cost as
much as a GEMM. Its backward writes ``weight^T @ grad_out`` into the memory
of the modulated columns once ``grad_weight`` has been computed from them,
applies the mask to it in place and sums over channels with ``addcmul_``, so
no column-sized tensor is allocated in backward. A second backward
(``retain_graph=True``) recomputes the columns. No double backward (like
mmcv's op).
"""
from typing import Optional

import torch
from torch.autograd import Function
from torch.autograd.function import once_differentiable

__all__ = ['columns_matmul', 'modulated_columns_matmul']


def _batched_weight(weight: torch.Tensor, groups: int,
                    batch: int) -> torch.Tensor:
    """(O, C/groups, ...) -> (batch*groups, O/groups, C/groups*...)."""
    o = weight.shape[0]
    w = weight.reshape(groups, o // groups, -1)
    return w.unsqueeze(0).expand(batch, -1, -1, -1).reshape(
        batch * groups, o // groups, w.shape[-1])


def columns_matmul(columns: torch.Tensor, weight: torch.Tensor, groups: int,
                   bias: Optional[torch.Tensor] = None) -> torch.Tensor:
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
    if bias is None:
        out = torch.bmm(w, cols)
    else:
        bias_b = bias.view(1, groups, o // groups, 1).expand(
            b, -1, -1, -1).reshape(b * groups, o // groups, 1)
        out = torch.baddbmm(bias_b, w, cols)
    return out.view(b, o, p)


class _ModulatedColumnsMatmul(Function):
    """``weight @ (samples * mask)`` with a lean backward (see module doc)."""

    @staticmethod
    def forward(ctx, samples, mask, weight, bias, groups):
        b, dg, cg, k, p = samples.shape
        cols = samples * mask.unsqueeze(2)
        out = columns_matmul(cols.view(b, dg * cg * k, p), weight, groups,
                             bias)
        ctx.groups = groups
        ctx.save_for_backward(samples, mask, weight)
        # An intermediate, kept on ctx so that backward may recycle its
        # memory for the column gradient once grad_weight has used it.
        ctx.cols = cols
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        samples, mask, weight = ctx.saved_tensors
        cols, ctx.cols = ctx.cols, None
        if cols is None:  # a second backward (retain_graph): recompute
            cols = samples * mask.unsqueeze(2)
        need_samples, need_mask, need_weight, need_bias = \
            ctx.needs_input_grad[:4]
        groups = ctx.groups
        b, dg, cg, k, p = samples.shape
        o = weight.shape[0]
        grad_g = grad_out.reshape(b * groups, o // groups, p)
        cols_g = cols.view(b * groups, -1, p)
        grad_samples = grad_mask = grad_weight = grad_bias = None
        if need_weight:
            grad_weight = torch.bmm(grad_g, cols_g.transpose(1, 2)).view(
                b, o, -1).sum(0).view_as(weight)
        if need_bias:
            grad_bias = grad_out.sum((0, 2))
        if need_samples or need_mask:
            w = _batched_weight(weight, groups, b)
            # cols is not needed any more: write the column gradient into it.
            grad_cols = torch.bmm(w.transpose(1, 2), grad_g,
                                  out=cols_g).view(b, dg, cg, k, p)
            if need_mask:
                grad_mask = grad_cols[:, :, 0] * samples[:, :, 0]
                for c in range(1, cg):
                    grad_mask.addcmul_(grad_cols[:, :, c], samples[:, :, c])
            if need_samples:
                grad_samples = grad_cols.mul_(mask.unsqueeze(2))
        return grad_samples, grad_mask, grad_weight, grad_bias, None


def modulated_columns_matmul(samples: torch.Tensor,
                             mask: Optional[torch.Tensor],
                             weight: torch.Tensor,
                             groups: int,
                             bias: Optional[torch.Tensor] = None,
                             scratch: bool = False) -> torch.Tensor:
    """Grouped ``weight @ (samples * mask)``.

    Args:
        samples (Tensor): (B, dg, C/dg, K, P) from
            :func:`basicattn.ops.deform_im2col.deform_im2col`.
        mask (Tensor | None): (B, dg, K, P); ``None`` = no modulation.
        weight (Tensor): (O, C/groups, kh, kw) with ``kh*kw == K``.
        groups (int): Convolution groups.
        bias (Tensor | None): (O,).
        scratch (bool): ``samples`` is a temporary of the caller's; when no
            gradient is needed it is modulated in place. Defaults to False.

    Returns:
        Tensor: (B, O, P).
    """
    b, dg, cg, k, p = samples.shape
    if mask is None:
        return columns_matmul(samples.reshape(b, dg * cg * k, p), weight,
                              groups, bias)
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad
        for t in (samples, mask, weight, bias))
    if scratch and not needs_grad:
        cols = samples.mul_(mask.reshape(b, dg, 1, k, p))
        return columns_matmul(cols.view(b, dg * cg * k, p), weight, groups,
                              bias)
    return _ModulatedColumnsMatmul.apply(samples.contiguous(),
                                         mask.contiguous(), weight, bias,
                                         groups)
