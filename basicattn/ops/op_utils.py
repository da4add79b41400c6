"""Argument checks and layer plumbing shared by the deformable operators."""

from contextlib import contextmanager
from typing import Iterator, Optional, Sequence, Tuple, Union

import torch
from torch import nn

IntPair = Union[int, Sequence[int]]


def exporting() -> bool:
    """Whether an ONNX export is tracing the current call.

    Ops then take their plain, traceable path (no custom autograd function,
    no activation checkpointing, ONNX-mapped ``grid_sample``); the numbers
    are the eager path's to float32 rounding (other kernels, other sum order).
    """
    return torch.onnx.is_in_onnx_export()


def records_autograd(*tensors: Optional[torch.Tensor]) -> bool:
    """Whether autograd records a graph through any of ``tensors``.

    False while :func:`exporting`: an export traces the forward only.
    """
    if exporting() or not torch.is_grad_enabled():
        return False
    return any(t is not None and t.requires_grad for t in tensors)


def to_pair(value: IntPair, name: str, minimum: int = 0) -> Tuple[int, int]:
    """Return ``value`` as a ``(height, width)`` pair of ints.

    Args:
        value (int | Sequence[int]): One int for both sides, or two ints.
        name (str): Argument name used in the error message.
        minimum (int): Smallest accepted value. Defaults to 0.

    Returns:
        tuple[int, int]: ``(value_h, value_w)``.
    """
    bad = f'{name} must be an int or a pair of ints, got {value!r}'
    if isinstance(value, bool):
        raise ValueError(bad)
    if isinstance(value, int):
        pair = (value, value)
    else:
        try:
            pair = tuple(int(v) for v in value)
        except (TypeError, ValueError):
            raise ValueError(bad) from None
        if len(pair) != 2 or any(int(v) != v for v in value):
            raise ValueError(bad)
    if min(pair) < minimum:
        raise ValueError(f'{name} must be >= {minimum}, got {value!r}')
    return pair


def conv_output_size(
    in_size: Tuple[int, int],
    kernel_size: Tuple[int, int],
    stride: Tuple[int, int],
    padding: Tuple[int, int],
    dilation: Tuple[int, int],
) -> Tuple[int, int]:
    """Spatial output size of a convolution (same formula as ``F.conv2d``).

    Args:
        in_size (tuple[int, int]): Input ``(H, W)``.
        kernel_size, stride, padding, dilation (tuple[int, int]): Conv
            geometry.

    Returns:
        tuple[int, int]: Output ``(Ho, Wo)``.
    """
    out = tuple(
        (in_size[i] + 2 * padding[i] - dilation[i] * (kernel_size[i] - 1) - 1) // stride[i] + 1
        for i in range(2)
    )
    if min(out) <= 0:
        raise ValueError(
            f'input of spatial size {tuple(in_size)} is too small for '
            f'kernel_size={kernel_size}, padding={padding}, '
            f'dilation={dilation}, stride={stride} (output would be {out})'
        )
    return out


def check_input(input: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``input`` is a 4-D floating tensor."""
    if not isinstance(input, torch.Tensor) or input.dim() != 4:
        shape = tuple(getattr(input, 'shape', ())) or input
        raise ValueError(f'input must be a 4-D tensor (B, C, H, W), got {shape}')
    if not input.is_floating_point():
        raise ValueError(f'input must be a floating tensor, got {input.dtype}')


def check_divisible(channels: int, groups: int, channels_name: str, groups_name: str) -> None:
    """Raise ``ValueError`` unless ``groups`` >= 1 divides ``channels``."""
    if groups < 1 or channels % groups != 0:
        raise ValueError(
            f'{channels_name}={channels} must be divisible by {groups_name}={groups} (>= 1)'
        )


def check_grouped_weight(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    groups: int,
    deform_groups: int,
    layout: str,
) -> None:
    """Check a conv weight, its bias and the channel groups against the
    (already checked) input.

    Args:
        input (Tensor): (B, C, H, W).
        weight (Tensor): (O, C/groups, ...), 4-D.
        bias (Tensor | None): (O,).
        groups, deform_groups (int): Must divide the channels.
        layout (str): What the weight is, for the error message, e.g.
            ``'tensor (O, C/groups, kh, kw)'``.
    """
    if not isinstance(weight, torch.Tensor) or weight.dim() != 4:
        raise ValueError(f'weight must be a 4-D {layout}, got {getattr(weight, "shape", weight)}')
    c = input.shape[1]
    o, c_per_group = weight.shape[:2]
    check_divisible(c, groups, 'input channels', 'groups')
    check_divisible(o, groups, 'weight.shape[0] (out channels)', 'groups')
    check_divisible(c, deform_groups, 'input channels', 'deform_groups')
    if c_per_group * groups != c:
        raise ValueError(
            f'weight.shape[1]={c_per_group} must equal input channels / groups = {c} / {groups}'
        )
    if bias is not None and tuple(bias.shape) != (o,):
        raise ValueError(f'bias must have shape ({o},), got {tuple(bias.shape)}')


def check_offset_and_mask(
    input: torch.Tensor,
    offset: Optional[torch.Tensor],
    mask: Optional[torch.Tensor],
    deform_groups: int,
    taps: int,
    out_size: Tuple[int, int],
) -> None:
    """Check the image-space offsets and the modulation mask (either may be
    ``None``) of a deformable conv with ``taps`` kernel taps."""
    b = input.shape[0]
    ho, wo = out_size
    check_map(
        offset,
        'offset',
        (b, 2 * deform_groups * taps, ho, wo),
        '(B, 2*deform_groups*kh*kw, Ho, Wo)',
        input,
    )
    check_map(
        mask, 'mask', (b, deform_groups * taps, ho, wo), '(B, deform_groups*kh*kw, Ho, Wo)', input
    )


def check_map(
    tensor: Optional[torch.Tensor],
    name: str,
    expected: Tuple[int, ...],
    layout: str,
    like: torch.Tensor,
) -> None:
    """Check a per-pixel map (offset / mask / kernel offset).

    Args:
        tensor (Tensor | None): The map; ``None`` is accepted.
        name (str): Argument name used in the error message.
        expected (tuple[int, ...]): Expected shape.
        layout (str): Human-readable layout, e.g.
            ``'(B, 2*deform_groups*kh*kw, Ho, Wo)'``.
        like (Tensor): The input; the map must be a floating tensor on its
            device (dtypes are unified by the caller).
    """
    if tensor is None:
        return
    if tuple(tensor.shape) != tuple(expected):
        raise ValueError(
            f'{name} must have shape {layout} = {tuple(expected)}, got {tuple(tensor.shape)}'
        )
    if not tensor.is_floating_point() or tensor.device != like.device:
        raise ValueError(
            f'{name} must be a floating tensor on the device of input '
            f'({like.device}), got {tensor.dtype} on {tensor.device}'
        )


def compute_dtype(input: torch.Tensor) -> torch.dtype:
    """float32 / float64 inputs compute in their dtype, half types in float32
    (sampling coordinates in half precision would be off by a fraction of a
    pixel)."""
    if input.dtype in (torch.float32, torch.float64):
        return input.dtype
    return torch.float32


def cast(
    dtype: torch.dtype, *tensors: Optional[torch.Tensor]
) -> Tuple[Optional[torch.Tensor], ...]:
    """Cast each tensor (``None`` passes through) to ``dtype``."""
    return tuple(None if t is None else t.to(dtype) for t in tensors)


@contextmanager
def no_autocast(device: torch.device) -> Iterator[None]:
    """Run the body with autocast off (the ops pick their own dtype); a device
    without autocast (``meta``) runs it as it is."""
    available = getattr(torch.amp, 'is_autocast_available', lambda _: True)(device.type)
    if not available:
        yield
        return
    with torch.autocast(device_type=device.type, enabled=False):
        yield


def at_least_float32(*tensors: torch.Tensor) -> torch.dtype:
    """The dtype softmax statistics are computed in: the tensors' promoted
    dtype, float32 for half types (bf16 / fp16 logits of a few tens are off
    by tenths, which the exponential turns into weights off by tens of %)."""
    dtype = torch.float32
    for tensor in tensors:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return dtype


def split_offset_mask(out: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Split a ``3*dg*K``-channel prediction into offsets and a mask, as mmcv.

    ``o1, o2, m = chunk(out, 3)``, ``offset = cat(o1, o2)``,
    ``mask = sigmoid(m)`` (DCNv2, Zhu et al., CVPR 2019; mmcv's
    ``ModulatedDeformConv2dPack`` layout).

    Args:
        out (Tensor): (B, 3*dg*K, Ho, Wo).

    Returns:
        tuple[Tensor, Tensor]: offset (B, 2*dg*K, Ho, Wo) and mask
        (B, dg*K, Ho, Wo) in (0, 1).
    """
    o1, o2, mask = torch.chunk(out, 3, dim=1)
    return torch.cat((o1, o2), dim=1), torch.sigmoid(mask)


class DeformConvBase(nn.Module):
    """Geometry, weight and bias shared by the deformable conv layers.

    :class:`~basicattn.ops.modulated_deform_conv.ModulatedDeformConv2d` and
    :class:`~basicattn.ops.deform_kernel.DeformableKernelConv2d` keep the
    same attributes (``in_channels``, ``out_channels``, ``kernel_size``,
    ``stride``, ``padding``, ``dilation``, ``groups``, ``deform_groups``) and
    parameters (``weight`` (O, C/groups, *spatial), ``bias`` or None); their
    offset predictors are convs of the layer's own geometry.
    """

    def _init_channels(
        self, in_channels: int, out_channels: int, groups: int, deform_groups: int
    ) -> None:
        """Check that the groups divide the channels; store all four."""
        check_divisible(in_channels, groups, 'in_channels', 'groups')
        check_divisible(out_channels, groups, 'out_channels', 'groups')
        check_divisible(in_channels, deform_groups, 'in_channels', 'deform_groups')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.groups = groups
        self.deform_groups = deform_groups

    def _init_geometry(
        self,
        kernel_size: IntPair,
        stride: IntPair,
        padding: Optional[IntPair],
        dilation: IntPair,
    ) -> None:
        """Check and store the conv geometry; ``padding=None``: 'same' padding."""
        self.kernel_size = to_pair(kernel_size, 'kernel_size', 1)
        self.stride = to_pair(stride, 'stride', 1)
        self.dilation = to_pair(dilation, 'dilation', 1)
        if padding is None:
            padding = tuple(d * (k - 1) // 2 for d, k in zip(self.dilation, self.kernel_size))
        self.padding = to_pair(padding, 'padding', 0)

    def _init_params(self, spatial: Tuple[int, int], bias: bool) -> None:
        """Create ``weight`` (O, C/groups, *spatial) and ``bias`` (uninitialised)."""
        self.weight = nn.Parameter(
            torch.empty(self.out_channels, self.in_channels // self.groups, *spatial)
        )
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_channels))
        else:
            self.register_parameter('bias', None)

    def _offset_conv(self, channels: int) -> nn.Conv2d:
        """A conv with the layer's geometry predicting ``channels`` maps from the input."""
        return nn.Conv2d(
            self.in_channels,
            channels,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            bias=True,
        )
