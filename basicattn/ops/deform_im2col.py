"""Deformable im2col in plain PyTorch.

The columns of a deformable convolution are the input sampled bilinearly at
``p0 + p_k + offset_k(p0)`` for every output pixel ``p0`` and every kernel
tap ``k``. They are built with one ``grid_sample`` call over all deformable
groups, taps and pixels (no Python loop over taps or pixels):
:func:`deform_im2col` does it with autograd; :func:`sampling_grid`,
:func:`sample_columns` and :func:`sample_columns_backward` are the same
steps for callers with their own backward
(:mod:`basicattn.ops.deform_conv_function`).

Sampling follows mmcv / torchvision: a sample point is ``(y, x)`` in input
pixel units; its four integer neighbours contribute with bilinear weights
when they lie inside the image and count as zero otherwise, so a point whose
four neighbours are all outside gives 0 and a point near the border gets a
partial sum. ``grid_sample(align_corners=False, padding_mode='zeros')`` has
exactly these semantics once pixel coordinates are normalised as
``g = (2 * x + 1) / W - 1``.

Details that keep it exact and cheap:

* ``grid_sample`` maps ``g`` back to pixels as ``(g + 1) * W / 2 - 0.5``.
  When ``W`` is a power of two every step is exact in floating point, so an
  integer position (zero offset) stays an integer and the offset gradient
  there is mmcv's one-sided ``I(y + 1) - I(y)``. For other sizes the input is
  zero-padded on the bottom / right to the next power of two (the padding
  reads as "outside the image", which it is), so this holds for every size.
* ``grid_sample`` wants ``(x, y)`` pairs while the offsets hold ``(dy, dx)``;
  instead of reordering the offsets, the input is handed over transposed
  (a free view), so its "x" is our ``y``. The grid is then one
  ``addcmul(base, offset, scale)``, written as coordinate planes.
"""

from functools import lru_cache
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F

from .op_utils import exporting

__all__ = [
    'deform_im2col',
    'SamplingGrid',
    'sampling_grid',
    'sample_columns',
    'sample_columns_backward',
]


def _next_pow2(n: int) -> int:
    # int(): under torch.jit.trace (get_flops) shape entries are tensors
    return 1 << (int(n) - 1).bit_length()


@lru_cache(maxsize=32)
def _base_grid(
    kernel_size: Tuple[int, int],
    stride: Tuple[int, int],
    padding: Tuple[int, int],
    dilation: Tuple[int, int],
    out_size: Tuple[int, int],
    grid_size: Tuple[int, int],
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """Regular sampling grid, normalised, as ``(y, x)`` planes (cached per
    geometry, dtype and device; never modified in place).

    Returns:
        Tensor: (2, K, Ho, Wo). Tap ``k = i*kw + j`` of output pixel
        ``(ho, wo)`` is at pixel ``(ho*stride_h - pad_h + i*dil_h,
        wo*stride_w - pad_w + j*dil_w)``, normalised as ``(2*v + 1)/size - 1``
        with ``size`` from ``grid_size`` (exact for power-of-two sizes).
    """
    kh, kw = kernel_size
    ho, wo = out_size
    f64 = dict(dtype=torch.float64, device=device)
    tap_y = (torch.arange(kh, **f64) * dilation[0]).repeat_interleave(kw)
    tap_x = (torch.arange(kw, **f64) * dilation[1]).repeat(kh)
    y = tap_y[:, None, None] + (torch.arange(ho, **f64) * stride[0] - padding[0])[None, :, None]
    x = tap_x[:, None, None] + (torch.arange(wo, **f64) * stride[1] - padding[1])[None, None, :]
    y = (2 * y + 1) / grid_size[0] - 1
    x = (2 * x + 1) / grid_size[1] - 1
    k = kh * kw
    return torch.stack((y.expand(k, ho, wo), x.expand(k, ho, wo))).to(dtype)


class SamplingGrid(NamedTuple):
    """What :func:`sampling_grid` prepares for ``grid_sampler_2d``.

    Attributes:
        input (Tensor): (B*dg, C/dg, gw, gh): the input, zero-padded to
            power-of-two sizes ``(gh, gw)`` and handed over transposed.
        grid (Tensor): (B*dg, K*Ho, Wo, 2) normalised sample positions, a
            permuted view of ``(B, dg, 2, K, Ho, Wo)`` coordinate planes.
        scale (Tensor): (2, 1, 1) pixel-to-normalised factors ``2/gh, 2/gw``
            of the ``(dy, dx)`` offsets.
    """

    input: torch.Tensor
    grid: torch.Tensor
    scale: torch.Tensor

    def images(self, start: int, stop: int, deform_groups: int) -> 'SamplingGrid':
        """The part of the grid that samples images ``start:stop`` of the
        batch."""
        rows = slice(start * deform_groups, stop * deform_groups)
        return SamplingGrid(self.input[rows], self.grid[rows], self.scale)


def sampling_grid(
    input: torch.Tensor,
    offset: torch.Tensor,
    geometry: Tuple[Tuple[int, int], ...],
    deform_groups: int,
) -> SamplingGrid:
    """Prepare the input and the normalised grid of a deformable im2col.

    Arguments as :func:`deform_im2col` (``offset`` must be given), with
    ``geometry = (kernel_size, stride, padding, dilation, out_size)``. Sampling
    ``grid_sampler_2d(grid.input, grid.grid, 0, 0, False)`` (bilinear, zeros,
    ``align_corners=False``) gives the columns as (B*dg, C/dg, K*Ho, Wo).
    """
    kernel_size, stride, padding, dilation, out_size = geometry
    b, c, h, w = input.shape
    ho, wo = out_size
    k = kernel_size[0] * kernel_size[1]
    dg = deform_groups
    if exporting():
        # An ONNX export records the grid as ops on the input's size (traced
        # values, no cache, no padding), so the graph holds for any size; the
        # normalisation by a size that is not a power of two is exact to
        # float rounding (1e-7 of a pixel) instead of exactly.
        gh, gw = h, w
    else:
        gh, gw = _next_pow2(h), _next_pow2(w)
        if (gh, gw) != (h, w):
            input = F.pad(input, (0, gw - w, 0, gh - h))
    # Under torch.compile the cache is bypassed on purpose (the graph builds
    # the grid itself; dynamo would ignore the lru_cache wrapper anyway).
    uncached = torch.compiler.is_compiling() or exporting()
    build_base = _base_grid.__wrapped__ if uncached else _base_grid
    base = build_base(
        tuple(kernel_size),
        tuple(stride),
        tuple(padding),
        tuple(dilation),
        tuple(out_size),
        (gh, gw),
        input.dtype,
        input.device,
    )
    if exporting():  # from the traced sizes, not constants
        two = input.new_full((1,), 2.0)
        scale = torch.cat((two / gh, two / gw)).view(2, 1, 1)
    else:
        scale = torch.tensor([2.0 / gh, 2.0 / gw], dtype=input.dtype, device=input.device).view(
            2, 1, 1
        )  # exact
    # Grid built as (b, dg, 2, K, Ho, Wo) planes (inner dims contiguous) and
    # handed to grid_sample as a permuted (N, K*Ho, Wo, 2) view, a layout its
    # CPU kernel reads directly.
    off = offset.reshape(b, dg, k, 2, ho, wo).transpose(2, 3)
    grid = (
        torch.addcmul(base, off, scale.unsqueeze(-1))
        .view(b * dg, 2, k * ho, wo)
        .permute(0, 2, 3, 1)
    )
    # Transposed input: grid_sample's x runs along our H, matching (dy, dx).
    return SamplingGrid(input.reshape(b * dg, c // dg, gh, gw).transpose(2, 3), grid, scale)


def sample_columns(grid: SamplingGrid) -> torch.Tensor:
    """Bilinear samples (B*dg, C/dg, K*Ho, Wo) of a :class:`SamplingGrid`
    (no autograd graph of its own when called inside an autograd function).

    While :func:`~.op_utils.exporting`, the same bilinear / zeros /
    ``align_corners=False`` sampling goes through ``F.grid_sample``, which
    ONNX maps to ``GridSample`` (opset >= 16).
    """
    if exporting():
        return F.grid_sample(
            grid.input, grid.grid, mode='bilinear', padding_mode='zeros', align_corners=False
        )
    return torch.grid_sampler_2d(grid.input, grid.grid, 0, 0, False)


def sample_columns_backward(
    grad: torch.Tensor,
    grid: SamplingGrid,
    grad_input: Optional[torch.Tensor] = None,
    grad_offset: Optional[torch.Tensor] = None,
) -> None:
    """Write the gradients of :func:`sample_columns` for the input and the
    offsets into the given tensors.

    Args:
        grad (Tensor): (B*dg, C/dg, K*Ho, Wo), contiguous: gradient of the
            samples.
        grid (SamplingGrid): As used in the forward pass.
        grad_input (Tensor | None): (B, C, H, W) to receive the input
            gradient; None = not needed.
        grad_offset (Tensor | None): (B, 2*dg*K, Ho, Wo), contiguous, to
            receive the offset gradient; None = not needed.
    """
    n, _, kho, _ = grad.shape
    grad_in, grad_grid = torch.ops.aten.grid_sampler_2d_backward(
        grad, grid.input, grid.grid, 0, 0, False, [grad_input is not None, grad_offset is not None]
    )
    if grad_input is not None:
        b, c, h, w = grad_input.shape
        gw, gh = grad_in.shape[-2:]
        grad_input.copy_(grad_in.view(b, c, gw, gh).transpose(2, 3)[:, :, :h, :w])
    if grad_offset is not None:
        b, _, ho, wo = grad_offset.shape
        dg, k = n // b, kho // ho
        # (N, K*Ho, Wo, 2) interleaved -> (b, dg, K, 2, Ho, Wo) offset layout
        torch.mul(
            grad_grid.view(b, dg, k, ho, wo, 2).permute(0, 1, 2, 5, 3, 4),
            grid.scale,
            out=grad_offset.view(b, dg, k, 2, ho, wo),
        )


def deform_im2col(
    input: torch.Tensor,
    offset: Optional[torch.Tensor],
    kernel_size: Tuple[int, int],
    stride: Tuple[int, int],
    padding: Tuple[int, int],
    dilation: Tuple[int, int],
    deform_groups: int,
    out_size: Tuple[int, int],
) -> torch.Tensor:
    """Sample the (unmodulated) deformable convolution columns.

    Shapes are not checked here (callers validate them).

    Args:
        input (Tensor): (B, C, H, W).
        offset (Tensor | None): (B, 2*dg*kh*kw, Ho, Wo); for deformable
            group ``g`` and tap ``k`` the pair ``(dy, dx)`` is at channels
            ``g*2*K + 2*k`` and ``g*2*K + 2*k + 1``. ``None`` means zero
            offsets (plain im2col via :func:`F.unfold`).
        kernel_size, stride, padding, dilation (tuple[int, int]): Geometry.
        deform_groups (int): Deformable groups ``dg``; group ``g`` covers the
            input channels ``[g*C/dg, (g+1)*C/dg)``.
        out_size (tuple[int, int]): ``(Ho, Wo)``.

    Returns:
        Tensor: Samples of shape (B, dg, C/dg, K, Ho*Wo), ``K = kh*kw``, tap
        index ``k = i*kw + j``; viewed as (B, C*K, Ho*Wo) these are the
        im2col columns in the order of ``weight.view(O, C*K)``.
    """
    b, c = input.shape[:2]
    ho, wo = out_size
    k = kernel_size[0] * kernel_size[1]
    dg = deform_groups
    if offset is None:
        cols = F.unfold(input, kernel_size, dilation=dilation, padding=padding, stride=stride)
        return cols.view(b, dg, c // dg, k, ho * wo)
    geometry = (kernel_size, stride, padding, dilation, out_size)
    grid = sampling_grid(input, offset, geometry, deform_groups)
    cols = F.grid_sample(
        grid.input, grid.grid, mode='bilinear', padding_mode='zeros', align_corners=False
    )
    return cols.view(b, dg, c // dg, k, ho * wo)
