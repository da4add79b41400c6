"""Building blocks shared by more than one arch (the role of BasicSR's ``arch_util``).

* :func:`conv3x3`: the 3x3 'same' convolution with bias (EDSR, DKSAN).
* :func:`lrelu`: LeakyReLU with an explicit slope (0.1 in EDVR-style archs:
  DKSAN, MANA; 0.2 in A2N).
* :class:`RCANChannelAttention`: RCAN's channel attention (DKSAN's RCAB, DAN's
  LEA-C). DASAA's CAB is a CBAM-style variant (average *and* max pooling,
  two MLPs) and stays in :mod:`basicattn.archs.dasaa_blocks`.
* :class:`MeanShiftMixin`: the RCAN/EDSR mean shift and ``img_range``
  rescale around an SR network (EDSR, DAN).
* :func:`check_global_skip`, :func:`add_bicubic_skip`: basicattn's
  ``global_skip='bicubic'`` option (EDSR, DAN, DASAA).
* :func:`bicubic_upsample`: MATLAB-exact bicubic upsampling that an ONNX
  export records for any input size (DKSAN's skips, ``add_bicubic_skip``).

Papers: RCAN, Zhang et al., "Image Super-Resolution Using Very Deep Residual
Channel Attention Networks", ECCV 2018 (channel attention, mean shift);
EDSR, Lim et al., "Enhanced Deep Residual Networks for Single Image
Super-Resolution", CVPRW 2017 (mean shift, ``rgb_range``); EDVR, Wang et
al., CVPRW 2019 (LeakyReLU(0.1)).
"""

from typing import ClassVar, Literal, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from basicattn.ops.op_utils import exporting
from basicattn.ops.traced_imresize import traced_bicubic_upsample
from basicattn.utils.bounds import check_choice
from basicattn.utils.matlab_imresize import imresize

__all__ = [
    'GlobalSkip',
    'conv3x3',
    'lrelu',
    'RCANChannelAttention',
    'MeanShiftMixin',
    'check_global_skip',
    'add_bicubic_skip',
    'bicubic_upsample',
    'start_as_bicubic',
]

#: ``global_skip`` values: ``'none'`` (the papers) or ``'bicubic'`` (basicattn).
GlobalSkip = Literal['none', 'bicubic']


def _prefix(owner: Optional[str]) -> str:
    return f'{owner}: ' if owner else ''


def conv3x3(in_ch: int, out_ch: int) -> nn.Conv2d:
    """A 3x3 convolution with 'same' zero padding and a bias (EDSR, RCAN).

    Args:
        in_ch: Input channels.
        out_ch: Output channels.

    Returns:
        nn.Conv2d: ``Conv2d(in_ch, out_ch, 3, 1, 1)``.
    """
    return nn.Conv2d(in_ch, out_ch, 3, 1, 1)


def lrelu(x: torch.Tensor, negative_slope: float = 0.1, inplace: bool = False) -> torch.Tensor:
    """LeakyReLU; the default slope 0.1 is EDVR's (Wang et al., CVPRW 2019).

    Args:
        x: Input tensor.
        negative_slope: Slope for ``x < 0`` (A2N uses 0.2). Default: 0.1.
        inplace: Overwrite ``x`` (only for tensors autograd does not need).
            Default: False.

    Returns:
        Tensor: ``leaky_relu(x, negative_slope)``.
    """
    return F.leaky_relu(x, negative_slope=negative_slope, inplace=inplace)


class RCANChannelAttention(nn.Module):
    """RCAN's channel attention (Zhang et al., ECCV 2018, Sec. 3.4).

    ``x * sigmoid(W_u relu(W_d avgpool(x)))`` with 1x1 convs (with bias)
    ``W_d: C -> C // r`` and ``W_u: C // r -> C``.

    The two convs are stored under the names in :attr:`conv_names`
    (``down``, ``up``; DKSAN's checkpoint keys). A subclass that sets other
    names keeps its own checkpoint keys with the same computation (DAN's
    LEA-C uses ``reduce``, ``expand``). Not the same module as DASAA's CAB
    (:class:`basicattn.archs.dasaa_blocks.ChannelAttentionBlock`, CBAM-style:
    average and max pooling through two MLPs).

    Args:
        num_feat (int): Channels ``C``.
        reduction (int): Ratio ``r``; the hidden width is ``C // r``.
            Default: 16.
    """

    #: Attribute names of ``W_d`` and ``W_u`` (the state_dict keys).
    conv_names: ClassVar[Tuple[str, str]] = ('down', 'up')

    def __init__(self, num_feat: int, reduction: int = 16):
        super().__init__()
        down, up = self.conv_names
        setattr(self, down, nn.Conv2d(num_feat, num_feat // reduction, 1))
        setattr(self, up, nn.Conv2d(num_feat // reduction, num_feat, 1))

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """The ``(N, C, 1, 1)`` channel weights of ``x``, in (0, 1)."""
        down, up = (getattr(self, name) for name in self.conv_names)
        z = x.mean(dim=(2, 3), keepdim=True)
        return torch.sigmoid(up(F.relu(down(z))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` scaled per channel by :meth:`attention_map`."""
        return x * self.attention_map(x)


class MeanShiftMixin:
    """The RCAN/EDSR mean shift around an image SR network.

    ``forward`` computes ``net((x - mean) * img_range) / img_range + mean``
    (the mean is added back only when the input and output channels agree).
    The mean is a fixed, non-persistent buffer ``mean`` (no parameters, no
    state_dict key), so it follows the module's device. Mix into an
    ``nn.Module`` and call :meth:`init_mean_shift` in ``__init__``.
    """

    mean: torch.Tensor
    img_range: float
    add_mean_back: bool

    def init_mean_shift(
        self,
        rgb_mean: Sequence[float],
        img_range: float,
        num_in_ch: int,
        num_out_ch: int,
        owner: Optional[str] = None,
        residual_output: bool = False,
    ) -> None:
        """Check ``rgb_mean`` and register the ``mean`` buffer.

        Args:
            rgb_mean: Per-channel mean, ``num_in_ch`` values.
            img_range: Multiplier after the mean shift (255 gives the
                authors' [0, 255] arithmetic).
            num_in_ch: Input channels.
            num_out_ch: Output channels.
            owner: Put first in the error message (e.g. ``'DAN'``).
            residual_output: The output is a residual added to another
                image (``global_skip='bicubic'``): the mean is not added
                back, since the image it is added to already carries it.

        Raises:
            ValueError: ``rgb_mean`` does not have ``num_in_ch`` values.
        """
        if len(rgb_mean) != num_in_ch:
            raise ValueError(
                f'{_prefix(owner)}rgb_mean has {len(rgb_mean)} values but num_in_ch={num_in_ch}'
            )
        self.img_range = img_range
        self.register_buffer(
            'mean',
            torch.tensor(rgb_mean, dtype=torch.float32).view(1, num_in_ch, 1, 1),
            persistent=False,
        )
        # The output mean: the input mean when the channels agree and the
        # output is an image, not a residual over bicubic.
        self.add_mean_back = num_in_ch == num_out_ch and not residual_output

    def shift_in(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) * img_range``: the network's input."""
        return (x - self.mean.to(x.dtype)) * self.img_range

    def shift_out(self, out: torch.Tensor) -> torch.Tensor:
        """``out / img_range + mean`` (mean only when the channels agree)."""
        out = out / self.img_range
        if self.add_mean_back:
            out = out + self.mean.to(out.dtype)
        return out


def check_global_skip(
    global_skip: str, num_in_ch: int, num_out_ch: int, owner: Optional[str] = None
) -> str:
    """Check basicattn's ``global_skip`` option; return it.

    Args:
        global_skip: ``'none'`` or ``'bicubic'``.
        num_in_ch: Input channels.
        num_out_ch: Output channels (must equal ``num_in_ch`` for
            ``'bicubic'``: the skip adds the upsampled input).
        owner: Put first in the error message (e.g. ``'DAN'``).

    Raises:
        ValueError: Unknown value, or ``'bicubic'`` with different channels.
    """
    check_choice(global_skip, 'global_skip', GlobalSkip, owner)
    if global_skip == 'bicubic' and num_in_ch != num_out_ch:
        raise ValueError(
            f"{_prefix(owner)}global_skip='bicubic' needs num_in_ch == "
            f'num_out_ch, got {num_in_ch} and {num_out_ch}'
        )
    return global_skip


def start_as_bicubic(conv: nn.Conv2d) -> None:
    """Zero the last conv of a network with ``global_skip='bicubic'``.

    Its residual is then exactly zero at initialisation, so the untrained
    network's output is bicubic upsampling (the gradient of the zeroed conv's
    weights is not zero, so it learns from the first step).
    """
    nn.init.zeros_(conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def add_bicubic_skip(
    out: torch.Tensor, lr: torch.Tensor, scale: int, global_skip: str
) -> torch.Tensor:
    """``out + bicubic(lr)`` for ``global_skip='bicubic'``, else ``out``.

    The upsampling is MATLAB-exact (:func:`basicattn.utils.matlab_imresize.imresize`),
    so the untrained residual network starts from bicubic SR.

    Args:
        out: Network output ``(N, C, scale*h, scale*w)``.
        lr: LR image ``(N, C, h, w)``.
        scale: The upscale factor.
        global_skip: ``'none'`` or ``'bicubic'``.

    Returns:
        Tensor: Same shape as ``out``.
    """
    if global_skip != 'bicubic':
        return out
    return out + bicubic_upsample(lr, scale)


def bicubic_upsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    """MATLAB-exact bicubic upsampling of ``(N, C, h, w)`` by ``scale`` (>= 1).

    :func:`basicattn.utils.matlab_imresize.imresize`; while an ONNX export
    traces the call, :func:`basicattn.ops.traced_imresize.traced_bicubic_upsample`,
    the same numbers computed from the traced input size, so the exported
    graph holds for any size (``imresize``'s weights would be constants of
    the export size).
    """
    if exporting():
        return traced_bicubic_upsample(x, float(scale))
    return imresize(x, scale=scale)
