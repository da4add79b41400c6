"""Deformable kernel convolution in plain PyTorch.

Gao, Zhu, Darrell, Hoffman, Wang, "Deformable Kernels: Adapting Effective
Receptive Fields for Object Deformation", ICLR 2020
(https://arxiv.org/abs/1910.02940), combined with image-space deformable
sampling as DKSAN (AIM 2020 video extreme SR, eq. 11) combines them::

    y(p) = sum_k W(t_k + dk_k(p)) * x(p + p_k + dp_k(p)) [* m_k(p)]

The learned weight is a *scope* kernel of ``Sh x Sw`` cells (e.g. 4x4) per
(out, in) channel pair. The ``kh x kw`` effective taps are read from it by
bilinear interpolation at ``t_k + dk_k(p)``: ``t_k`` is a fixed position per
tap (the tap grid below) and ``dk_k(p)`` an optional per-pixel kernel-space
offset, in scope cells. Cells outside the scope count as zero (a tap whose
four neighbouring cells are all outside is 0), as in Gao et al.'s CUDA op.

Tap grid (scope coordinates: cell ``(r, c)`` is at ``(r, c)``; tap
``k = i*kw + j``):

* ``'centered'`` (default; the grid of Gao et al.'s official CUDA op, whose
  ``DeformKernelConv2d`` passes zero kernel offsets, the fixed-tap variant
  the DKSAN authors appear to have run): unit spacing, centred,
  ``t = (i + (Sh - kh) / 2, j + (Sw - kw) / 2)``. For a 3x3 kernel in a 4x4
  scope the rows / columns are 0.5, 1.5, 2.5, so with zero kernel offsets
  every tap is the mean of a 2x2 block of the scope: tap (0, 0) averages
  cells (0..1, 0..1), the centre tap cells (1..2, 1..2), tap (2, 2) cells
  (2..3, 2..3); each inner cell feeds four taps, each corner cell one.
  With ``scope_size == kernel_size`` the taps are exactly the cells (a plain
  deformable conv).
* ``'stretched'``: the grid scaled to span the scope,
  ``t = (i * (Sh - 1) / (kh - 1), j * (Sw - 1) / (kw - 1))``: for 3x3 in 4x4
  rows / columns 0, 1.5, 3, so corner taps are corner cells, edge taps mean
  two cells and the centre tap the inner 2x2 block.

Layouts:

* ``offset`` (image space): as DCN, (B, 2*dg*kh*kw, Ho, Wo) ``(dy, dx)``
  pairs per tap, ``mask`` (B, dg*kh*kw, Ho, Wo).
* ``kernel_offset``: (B, 2*G*kh*kw, Ho, Wo) with the same interleaving: for
  kernel-offset group ``g`` and tap ``k`` the scope-space ``(dy, dx)`` are
  channels ``g*2*K + 2*k`` and ``g*2*K + 2*k + 1``. Group ``g`` applies to
  the input channels ``[g*C/G, (g+1)*C/G)`` (contiguous blocks, like
  deformable groups; Gao et al. assign channel ``c`` to group ``c % G``).

Computation: with fixed taps the effective ``kh x kw`` kernel is computed
once from the scope and the op is a (modulated) deformable convolution. With
kernel offsets the per-pixel interpolation weights ``beta[g, p, k, s]`` (at
most four non-zero per tap, built by one ``scatter_add``) first fold the
deformable columns from taps onto scope cells with a batched matmul per
pixel, ``cols_s[c, s, p] = sum_k cols[c, k, p] * beta[g(c), p, k, s]``, then
one grouped matmul with the scope weight gives the output (about 3.5x the
cost of the fixed-tap path on CPU).
"""

import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .columns_matmul import columns_matmul
from .deform_conv_function import deform_conv_columns
from .deform_im2col import deform_im2col
from .op_utils import (
    DeformConvBase,
    IntPair,
    cast,
    check_divisible,
    check_grouped_weight,
    check_input,
    check_map,
    check_offset_and_mask,
    compute_dtype,
    conv_output_size,
    no_autocast,
    split_offset_mask,
    to_pair,
)

__all__ = [
    'TAP_GRIDS',
    'scope_tap_positions',
    'sample_scope_kernel',
    'deform_kernel_conv2d',
    'DeformableKernelConv2d',
]

TAP_GRIDS = ('centered', 'stretched')


def scope_tap_positions(
    kernel_size: IntPair, scope_size: IntPair, tap_grid: str = 'centered'
) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """Scope coordinates of the kernel rows and columns with zero offsets.

    Args:
        kernel_size (int | tuple[int, int]): ``(kh, kw)``.
        scope_size (int | tuple[int, int]): ``(Sh, Sw)``.
        tap_grid (str): ``'centered'`` or ``'stretched'`` (module docstring).

    Returns:
        tuple[tuple[float, ...], tuple[float, ...]]: Row positions (``kh``
        values) and column positions (``kw`` values); tap ``(i, j)`` sits at
        ``(rows[i], cols[j])``.
    """
    kernel_size = to_pair(kernel_size, 'kernel_size', 1)
    scope_size = to_pair(scope_size, 'scope_size', 1)
    if tap_grid not in TAP_GRIDS:
        raise ValueError(f'tap_grid must be one of {TAP_GRIDS}, got {tap_grid!r}')
    out = []
    for k, s in zip(kernel_size, scope_size):
        if tap_grid == 'centered':
            out.append(tuple(i + (s - k) / 2 for i in range(k)))
        elif k == 1:
            out.append(((s - 1) / 2,))
        else:
            out.append(tuple(i * (s - 1) / (k - 1) for i in range(k)))
    return out[0], out[1]


def _interp_weights(pos: torch.Tensor, size: int) -> torch.Tensor:
    """1-D linear interpolation weights onto ``size`` cells, zero outside.

    ``pos`` (any shape) -> (*pos.shape, size). Uses ``floor`` so that the
    gradient at an integer position is the one-sided ``v[i + 1] - v[i]``
    (Gao et al.'s and mmcv's convention).
    """
    low = torch.floor(pos)
    frac = (pos - low).unsqueeze(-1)
    low = low.unsqueeze(-1)
    cells = torch.arange(size, dtype=pos.dtype, device=pos.device)
    return (1 - frac) * (cells == low) + frac * (cells == low + 1)


def _scope_cell_weights(
    pos_y: torch.Tensor, pos_x: torch.Tensor, scope: Tuple[int, int]
) -> torch.Tensor:
    """Bilinear weights of scope positions on the ``Sh*Sw`` cells.

    Args:
        pos_y, pos_x (Tensor): Scope coordinates, same shape ``(*S)``.
        scope (tuple[int, int]): ``(Sh, Sw)``.

    Returns:
        Tensor: (*S, Sh*Sw), at most four non-zeros per position (cells
        outside the scope are dropped), built by one ``scatter_add`` so that
        its backward is a ``gather``. ``floor`` gives the one-sided gradient
        ``v[i + 1] - v[i]`` at integer positions (Gao et al.'s and mmcv's
        convention).
    """
    sh, sw = scope
    y0, x0 = torch.floor(pos_y), torch.floor(pos_x)
    fy, fx = pos_y - y0, pos_x - x0
    weights = torch.stack(((1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx), dim=-1)
    cy = torch.stack((y0, y0, y0 + 1, y0 + 1), dim=-1)
    cx = torch.stack((x0, x0 + 1, x0, x0 + 1), dim=-1)
    inside = (cy >= 0) & (cy < sh) & (cx >= 0) & (cx < sw)
    cells = torch.where(inside, cy * sw + cx, torch.zeros_like(cy)).long()
    weights = weights * inside
    zeros = weights.new_zeros(*weights.shape[:-1], sh * sw)
    return zeros.scatter_add(-1, cells, weights)


def sample_scope_kernel(
    weight: torch.Tensor, kernel_size: IntPair, tap_grid: str = 'centered'
) -> torch.Tensor:
    """Effective kernel of a scope weight with zero kernel offsets.

    Args:
        weight (Tensor): Scope weight (O, C/groups, Sh, Sw).
        kernel_size (int | tuple[int, int]): ``(kh, kw)``.
        tap_grid (str): ``'centered'`` or ``'stretched'``.

    Returns:
        Tensor: (O, C/groups, kh, kw), differentiable w.r.t. ``weight``.
    """
    rows, cols = scope_tap_positions(kernel_size, weight.shape[-2:], tap_grid)
    opts = dict(dtype=weight.dtype, device=weight.device)
    ay = _interp_weights(torch.tensor(rows, **opts), weight.shape[-2])
    ax = _interp_weights(torch.tensor(cols, **opts), weight.shape[-1])
    return torch.einsum('ocyx,iy,jx->ocij', weight, ay, ax)


def deform_kernel_conv2d(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    offset: Optional[torch.Tensor] = None,
    mask: Optional[torch.Tensor] = None,
    kernel_offset: Optional[torch.Tensor] = None,
    kernel_size: IntPair = 3,
    stride: IntPair = 1,
    padding: IntPair = 1,
    dilation: IntPair = 1,
    groups: int = 1,
    deform_groups: int = 1,
    kernel_offset_groups: int = 1,
    tap_grid: str = 'centered',
) -> torch.Tensor:
    """Deformable kernel convolution (functional form).

    Args:
        input (Tensor): (B, C, H, W).
        weight (Tensor): Scope weight (O, C/groups, Sh, Sw).
        bias (Tensor | None): (O,). Defaults to None.
        offset (Tensor | None): Image-space offsets
            (B, 2*deform_groups*kh*kw, Ho, Wo); None = regular grid.
        mask (Tensor | None): Modulation (B, deform_groups*kh*kw, Ho, Wo);
            None = no modulation.
        kernel_offset (Tensor | None): Scope-space offsets
            (B, 2*kernel_offset_groups*kh*kw, Ho, Wo) in scope cells; None =
            fixed taps.
        kernel_size (int | tuple[int, int]): ``(kh, kw)``. Defaults to 3.
        stride, padding, dilation (int | tuple[int, int]): Conv geometry.
            Defaults to 1, 1, 1.
        groups (int): Convolution groups (``groups == C == O`` is
            depthwise). Defaults to 1.
        deform_groups (int): Groups of image-space offsets. Defaults to 1.
        kernel_offset_groups (int): Groups of kernel-space offsets.
            Defaults to 1.
        tap_grid (str): ``'centered'`` or ``'stretched'``. Defaults to
            ``'centered'``.

    Returns:
        Tensor: (B, O, Ho, Wo).
    """
    check_input(input)
    check_grouped_weight(
        input, weight, bias, groups, deform_groups, 'scope tensor (O, C/groups, Sh, Sw)'
    )
    kernel_size = to_pair(kernel_size, 'kernel_size', 1)
    stride = to_pair(stride, 'stride', 1)
    padding = to_pair(padding, 'padding', 0)
    dilation = to_pair(dilation, 'dilation', 1)
    b, c, h, w = input.shape
    sh, sw = weight.shape[2:]
    check_divisible(c, kernel_offset_groups, 'input channels', 'kernel_offset_groups')
    ho, wo = conv_output_size((h, w), kernel_size, stride, padding, dilation)
    k = kernel_size[0] * kernel_size[1]
    check_offset_and_mask(input, offset, mask, deform_groups, k, (ho, wo))
    g = kernel_offset_groups
    check_map(
        kernel_offset,
        'kernel_offset',
        (b, 2 * g * k, ho, wo),
        '(B, 2*kernel_offset_groups*kh*kw, Ho, Wo)',
        input,
    )
    rows, cols_pos = scope_tap_positions(kernel_size, (sh, sw), tap_grid)

    with no_autocast(input.device):
        tensors = cast(compute_dtype(input), input, weight, bias, offset, mask, kernel_offset)
        out = _deform_kernel_conv2d(
            *tensors,
            (kernel_size, stride, padding, dilation),
            (groups, deform_groups, kernel_offset_groups),
            (rows, cols_pos),
            tap_grid,
            (ho, wo),
        )
    return out.to(input.dtype)


def _deform_kernel_conv2d(
    input,
    weight,
    bias,
    offset,
    mask,
    kernel_offset,
    geometry,
    group_counts,
    taps,
    tap_grid,
    out_size,
) -> torch.Tensor:
    """:func:`deform_kernel_conv2d` on validated, same-dtype tensors.

    ``geometry`` is ``(kernel_size, stride, padding, dilation)`` and
    ``group_counts`` ``(groups, deform_groups, kernel_offset_groups)``.
    """
    kernel_size, stride, padding, dilation = geometry
    groups, deform_groups, kernel_offset_groups = group_counts
    b, c = input.shape[:2]
    o, _, sh, sw = weight.shape
    ho, wo = out_size
    p = ho * wo
    k = kernel_size[0] * kernel_size[1]
    g = kernel_offset_groups
    if kernel_offset is None:
        kernel = sample_scope_kernel(weight, kernel_size, tap_grid)
        if offset is not None:
            return deform_conv_columns(
                input,
                offset,
                mask,
                kernel,
                bias,
                (kernel_size, stride, padding, dilation, out_size),
                groups,
                deform_groups,
            )
        if mask is None:
            return F.conv2d(input, kernel, bias, stride, padding, dilation, groups)
    samples = deform_im2col(
        input, offset, kernel_size, stride, padding, dilation, deform_groups, out_size
    )
    cols = samples if mask is None else samples * mask.reshape(b, deform_groups, 1, k, p)
    if kernel_offset is None:  # regular grid with a mask
        return columns_matmul(cols.reshape(b, c * k, p), kernel, groups, bias).view(b, o, ho, wo)
    cg = c // g
    s = sh * sw
    opts = dict(dtype=input.dtype, device=input.device)
    tap_y = torch.tensor(taps[0], **opts).repeat_interleave(kernel_size[1])
    tap_x = torch.tensor(taps[1], **opts).repeat(kernel_size[0])
    # (b, g, p, k, 2): pixels outside taps so that each pixel's taps x cells
    # matrix is contiguous for the batched matmul below.
    koff = kernel_offset.reshape(b, g, k, 2, p).permute(0, 1, 4, 2, 3).contiguous()
    beta = _scope_cell_weights(
        tap_y + koff[..., 0], tap_x + koff[..., 1], (sh, sw)
    )  # (b, g, p, k, S)
    # Fold taps onto scope cells: per (b, g, p), (C/g, K) @ (K, S).
    cols_t = cols.view(b, g, cg, k, p).permute(0, 1, 4, 2, 3).reshape(b * g * p, cg, k)
    scope_cols = torch.bmm(cols_t, beta.view(b * g * p, k, s))
    scope_cols = scope_cols.view(b, g, p, cg, s).permute(0, 1, 3, 4, 2)
    out = columns_matmul(scope_cols.reshape(b, c * s, p), weight, groups, bias)
    return out.view(b, o, ho, wo)


class DeformableKernelConv2d(DeformConvBase):
    """Deformable kernel convolution layer (Gao et al., ICLR 2020).

    "Deformable Kernels: Adapting Effective Receptive Fields for Object
    Deformation" (https://arxiv.org/abs/1910.02940), as used by DKSAN's DKC
    layers: a learned scope kernel (``scope_size``, e.g. 4x4 for a 3x3
    kernel) is sampled bilinearly at per-pixel kernel-space offsets to give
    the ``kh x kw`` taps, which are applied at image-space deformable
    sampling positions. Both offset fields are predicted from the input by
    zero-initialised convs (same geometry as the layer), so the layer starts
    as a plain conv with the fixed-tap kernel. The tap grid and the offset
    layouts are described in :mod:`basicattn.ops.deform_kernel`.

    Differences from Gao et al.'s CUDA op: any ``groups`` (theirs is
    depthwise only) with optional bias; kernel-offset groups are contiguous
    channel blocks (theirs ``c % G``); optional ``deform_groups`` and
    modulation for the image-space part (theirs: one group, no mask); no
    offset clipping.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int | tuple[int, int]): Effective kernel. Defaults to 3.
        scope_size (int | tuple[int, int]): Learned scope kernel, at least
            as large as ``kernel_size``. Defaults to 4.
        stride, dilation (int | tuple[int, int]): Defaults to 1.
        padding (int | tuple[int, int] | None): Defaults to None =
            ``dilation * (kernel_size - 1) // 2`` ("same" for odd kernels).
        groups (int): Convolution groups; ``groups == in_channels ==
            out_channels`` is depthwise. Defaults to 1.
        deform_groups (int): Image-space offset groups. Defaults to 1.
        kernel_offset_groups (int): Kernel-space offset groups. Defaults
            to 1.
        image_offsets (bool): Predict image-space offsets. Defaults to True.
        kernel_offsets (bool): Predict kernel-space offsets; False gives
            fixed taps (the variant DKSAN's authors appear to have run).
            Defaults to True.
        modulated (bool): Also predict a sigmoid modulation mask (DCNv2
            style chunking), needs ``image_offsets``. Defaults to False.
        tap_grid (str): ``'centered'`` or ``'stretched'``. Defaults to
            ``'centered'``.
        bias (bool): Learn a bias. Defaults to True.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair = 3,
        scope_size: IntPair = 4,
        stride: IntPair = 1,
        padding: Optional[IntPair] = None,
        dilation: IntPair = 1,
        groups: int = 1,
        deform_groups: int = 1,
        kernel_offset_groups: int = 1,
        image_offsets: bool = True,
        kernel_offsets: bool = True,
        modulated: bool = False,
        tap_grid: str = 'centered',
        bias: bool = True,
    ) -> None:
        super().__init__()
        self._init_channels(in_channels, out_channels, groups, deform_groups)
        self._init_geometry(kernel_size, stride, padding, dilation)
        check_divisible(in_channels, kernel_offset_groups, 'in_channels', 'kernel_offset_groups')
        self.scope_size = to_pair(scope_size, 'scope_size', 1)
        if any(s < k for s, k in zip(self.scope_size, self.kernel_size)):
            raise ValueError(
                f'scope_size={self.scope_size} must be at least kernel_size={self.kernel_size}'
            )
        if tap_grid not in TAP_GRIDS:
            raise ValueError(f'tap_grid must be one of {TAP_GRIDS}, got {tap_grid!r}')
        if modulated and not image_offsets:
            raise ValueError('modulated=True needs image_offsets=True')
        self.kernel_offset_groups = kernel_offset_groups
        self.modulated = modulated
        self.tap_grid = tap_grid

        self._init_params(self.scope_size, bias)
        taps = self.kernel_size[0] * self.kernel_size[1]
        self.conv_offset = (
            self._offset_conv((3 if modulated else 2) * deform_groups * taps)
            if image_offsets
            else None
        )
        self.conv_kernel_offset = (
            self._offset_conv(2 * kernel_offset_groups * taps) if kernel_offsets else None
        )
        self.init_weights()

    def init_weights(self) -> None:
        """Scope uniform in ``±1/sqrt(C/groups*kh*kw)``, bias and offset
        predictors zero."""
        fan_in = self.in_channels // self.groups * self.kernel_size[0] * self.kernel_size[1]
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        for conv in (self.conv_offset, self.conv_kernel_offset):
            if conv is not None:
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)

    def effective_kernel(self) -> torch.Tensor:
        """The ``kh x kw`` kernel used where the kernel offsets are zero.

        Returns:
            Tensor: (O, C/groups, kh, kw).
        """
        return sample_scope_kernel(self.weight, self.kernel_size, self.tap_grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer.

        Args:
            x (Tensor): (B, C, H, W).

        Returns:
            Tensor: (B, O, Ho, Wo).
        """
        offset = mask = kernel_offset = None
        if self.conv_offset is not None:
            offset = self.conv_offset(x)
            if self.modulated:
                offset, mask = split_offset_mask(offset)
        if self.conv_kernel_offset is not None:
            kernel_offset = self.conv_kernel_offset(x)
        return deform_kernel_conv2d(
            x,
            self.weight,
            self.bias,
            offset,
            mask,
            kernel_offset,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            self.deform_groups,
            self.kernel_offset_groups,
            self.tap_grid,
        )

    def extra_repr(self) -> str:
        s = (
            f'{self.in_channels}, {self.out_channels}, '
            f'kernel_size={self.kernel_size}, scope_size={self.scope_size}, '
            f'stride={self.stride}, padding={self.padding}, '
            f'dilation={self.dilation}, groups={self.groups}, '
            f'deform_groups={self.deform_groups}, '
            f'kernel_offset_groups={self.kernel_offset_groups}, '
            f'tap_grid={self.tap_grid!r}'
        )
        if self.conv_offset is None:
            s += ', image_offsets=False'
        if self.conv_kernel_offset is None:
            s += ', kernel_offsets=False'
        if self.modulated:
            s += ', modulated=True'
        if self.bias is None:
            s += ', bias=False'
        return s
