"""Modulated deformable convolution (DCNv2) in plain PyTorch.

Zhu et al., "Deformable ConvNets v2: More Deformable, Better Results",
CVPR 2019 (https://arxiv.org/abs/1811.11168)::

    y(p) = sum_k w_k * x(p + p_k + dp_k) * m_k

Layout (mmcv / torchvision, so weights and offset predictors interchange):

* ``offset``: (B, 2*dg*kh*kw, Ho, Wo). For deformable group ``g`` and tap
  ``k = i*kw + j`` the vertical offset ``dy`` is channel ``g*2*K + 2*k`` and
  the horizontal ``dx`` channel ``g*2*K + 2*k + 1`` (interleaved pairs).
* ``mask``: (B, dg*kh*kw, Ho, Wo), channel ``g*K + k``.
* group ``g`` deforms input channels ``[g*C/dg, (g+1)*C/dg)``.

The modules keep mmcv's parameter names (``weight``, ``bias``,
``conv_offset.weight``, ``conv_offset.bias``) so state dicts load either way.
"""

import math
from typing import Optional

import torch
import torch.nn as nn

from .dcn_backends import get_dcn_backend_fn, resolve_dcn_backend
from .deform_conv_function import deform_conv_columns
from .op_utils import (
    DeformConvBase,
    IntPair,
    cast,
    check_grouped_weight,
    check_input,
    check_offset_and_mask,
    compute_dtype,
    conv_output_size,
    no_autocast,
    split_offset_mask,
    to_pair,
)

__all__ = ['modulated_deform_conv2d', 'ModulatedDeformConv2d', 'ModulatedDeformConv2dPack']


def modulated_deform_conv2d(
    input: torch.Tensor,
    offset: torch.Tensor,
    mask: Optional[torch.Tensor],
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    deform_groups: int = 1,
    backend: str = 'auto',
) -> torch.Tensor:
    """Modulated deformable 2-D convolution (DCNv2).

    Forward and backward (input, offset, mask, weight, bias) are plain
    PyTorch ops: bilinear sampling by ``grid_sample``
    (:mod:`basicattn.ops.deform_im2col`) and grouped ``bmm`` over chunks of
    pixels (:mod:`basicattn.ops.deform_conv_function`). Single backward only
    (no double backward), as mmcv. Float16 / bfloat16 inputs are
    computed in float32 (also under autocast) and the output is returned in
    the input's dtype.

    Args:
        input (Tensor): (B, C, H, W).
        offset (Tensor): (B, 2*deform_groups*kh*kw, Ho, Wo), ``(dy, dx)``
            pairs per tap (mmcv / torchvision layout).
        mask (Tensor | None): (B, deform_groups*kh*kw, Ho, Wo) modulation
            scalars, usually in [0, 1]. ``None`` gives DCNv1 (no modulation).
        weight (Tensor): (O, C/groups, kh, kw).
        bias (Tensor | None): (O,). Defaults to None.
        stride, padding, dilation (int | tuple[int, int]): As in
            :func:`torch.nn.functional.conv2d`. Defaults to 1, 0, 1.
        groups (int): Convolution groups. Defaults to 1.
        deform_groups (int): Groups of input channels sharing one offset /
            mask field. Defaults to 1.
        backend (str): ``'torch'``, ``'mmcv'``, ``'torchvision'`` or
            ``'auto'`` (see :mod:`basicattn.ops.dcn_backends`). Defaults to
            ``'auto'``, which is ``'torch'`` unless configured otherwise.

    Returns:
        Tensor: (B, O, Ho, Wo).
    """
    check_input(input)
    check_grouped_weight(input, weight, bias, groups, deform_groups, 'tensor (O, C/groups, kh, kw)')
    stride = to_pair(stride, 'stride', 1)
    padding = to_pair(padding, 'padding', 0)
    dilation = to_pair(dilation, 'dilation', 1)
    h, w = input.shape[2:]
    kh, kw = weight.shape[2:]
    ho, wo = conv_output_size((h, w), (kh, kw), stride, padding, dilation)
    if offset is None:
        raise ValueError('offset must be a tensor (B, 2*deform_groups*kh*kw, Ho, Wo), got None')
    check_offset_and_mask(input, offset, mask, deform_groups, kh * kw, (ho, wo))

    name = resolve_dcn_backend(backend, input.device)
    if name != 'torch':
        fn = get_dcn_backend_fn(name, input.device)
        return fn(
            input, offset, mask, weight, bias, stride, padding, dilation, groups, deform_groups
        )
    with no_autocast(input.device):
        out = deform_conv_columns(
            *cast(compute_dtype(input), input, offset, mask, weight, bias),
            ((kh, kw), stride, padding, dilation, (ho, wo)),
            groups,
            deform_groups,
        )
    return out.to(input.dtype)


class ModulatedDeformConv2d(DeformConvBase):
    """Modulated deformable conv layer taking offsets and mask as inputs.

    Parameter names, shapes and initialisation follow mmcv's
    ``ModulatedDeformConv2d`` (``weight`` uniform in ``±1/sqrt(C*kh*kw)``,
    ``bias`` zero), so its state dicts load unchanged.

    Args:
        in_channels (int): Input channels ``C``.
        out_channels (int): Output channels ``O``.
        kernel_size (int | tuple[int, int]): ``(kh, kw)``.
        stride, padding, dilation (int | tuple[int, int]): Conv geometry.
            Defaults to 1, 0, 1 (mmcv's defaults).
        groups (int): Convolution groups. Defaults to 1.
        deform_groups (int): Deformable groups. Defaults to 1.
        bias (bool): Learn a bias. Defaults to True.
        backend (str): See :func:`modulated_deform_conv2d`. Defaults to
            ``'auto'``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        groups: int = 1,
        deform_groups: int = 1,
        bias: bool = True,
        backend: str = 'auto',
    ) -> None:
        super().__init__()
        self._init_channels(in_channels, out_channels, groups, deform_groups)
        self._init_geometry(kernel_size, stride, padding, dilation)
        self.backend = backend
        self._init_params(self.kernel_size, bias)
        self.init_weights()

    def init_weights(self) -> None:
        """mmcv's initialisation: uniform weight, zero bias."""
        stdv = 1.0 / math.sqrt(self.in_channels * self.kernel_size[0] * self.kernel_size[1])
        nn.init.uniform_(self.weight, -stdv, stdv)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(
        self, x: torch.Tensor, offset: torch.Tensor, mask: Optional[torch.Tensor]
    ) -> torch.Tensor:
        """Apply the layer.

        Args:
            x (Tensor): (B, C, H, W).
            offset (Tensor): (B, 2*dg*kh*kw, Ho, Wo).
            mask (Tensor | None): (B, dg*kh*kw, Ho, Wo).

        Returns:
            Tensor: (B, O, Ho, Wo).
        """
        return modulated_deform_conv2d(
            x,
            offset,
            mask,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            self.deform_groups,
            self.backend,
        )

    def extra_repr(self) -> str:
        s = (
            f'{self.in_channels}, {self.out_channels}, '
            f'kernel_size={self.kernel_size}, stride={self.stride}, '
            f'padding={self.padding}, dilation={self.dilation}, '
            f'groups={self.groups}, deform_groups={self.deform_groups}'
        )
        if self.bias is None:
            s += ', bias=False'
        if self.backend != 'auto':
            s += f', backend={self.backend!r}'
        return s


class ModulatedDeformConv2dPack(ModulatedDeformConv2d):
    """DCNv2 layer that predicts its own offsets and mask (mmcv's "pack").

    ``conv_offset`` (same kernel / stride / padding / dilation as the layer,
    zero-initialised, so the layer starts as a plain conv with mask 0.5)
    outputs ``3*dg*kh*kw`` channels: ``o1, o2, m = chunk(3)``,
    ``offset = cat(o1, o2)``, ``mask = sigmoid(m)``, exactly as mmcv. State
    dicts of mmcv's ``ModulatedDeformConv2dPack`` and of BasicSR's
    ``DCNv2Pack`` load unchanged; the pre-v2 mmcv key ``conv_offset_mask``
    is renamed on load.

    Args:
        *args, **kwargs: As :class:`ModulatedDeformConv2d`.
    """

    _version = 2

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.conv_offset = self._offset_conv(
            self.deform_groups * 3 * self.kernel_size[0] * self.kernel_size[1]
        )
        self.init_weights()

    def init_weights(self) -> None:
        """Layer weights as mmcv; ``conv_offset`` zero."""
        super().init_weights()
        if hasattr(self, 'conv_offset'):
            nn.init.zeros_(self.conv_offset.weight)
            nn.init.zeros_(self.conv_offset.bias)

    def offset_and_mask(self, x: torch.Tensor):
        """Predict ``(offset, mask)`` from ``x``.

        Args:
            x (Tensor): (B, C, H, W).

        Returns:
            tuple[Tensor, Tensor]: offset (B, 2*dg*kh*kw, Ho, Wo) and mask
            (B, dg*kh*kw, Ho, Wo).
        """
        return split_offset_mask(self.conv_offset(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore
        """Apply the layer.

        Args:
            x (Tensor): (B, C, H, W).

        Returns:
            Tensor: (B, O, Ho, Wo).
        """
        offset, mask = self.offset_and_mask(x)
        return super().forward(x, offset, mask)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        version = local_metadata.get('version', None)
        if version is None or version < 2:
            for suffix in ('weight', 'bias'):
                old = f'{prefix}conv_offset_mask.{suffix}'
                new = f'{prefix}conv_offset.{suffix}'
                if old in state_dict and new not in state_dict:
                    state_dict[new] = state_dict.pop(old)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
