"""EDSR baseline.

Paper: Bee Lim, Sanghyun Son, Heewon Kim, Seungjun Nah, Kyoung Mu Lee,
"Enhanced Deep Residual Networks for Single Image Super-Resolution",
CVPR Workshops (NTIRE) 2017. https://arxiv.org/abs/1707.02921

Differences from the authors' code (EDSR-PyTorch):

* Images are RGB in [0, 1]; ``img_range`` rescales after the mean shift (the
  authors work on [0, 255] with ``rgb_range=255``; ``img_range=255.`` gives
  their arithmetic). The mean shift is a fixed buffer, not a frozen conv, so
  it has no parameters.
* ``global_skip='bicubic'`` is our option, not in EDSR: it adds a
  MATLAB-exact bicubic upsampling of the input to the output, so the network
  only learns the residual over bicubic: the mean is then not added back and
  ``conv_last`` starts at zero, so the untrained network outputs exactly
  bicubic. It makes tiny CPU demos beat bicubic after a few iterations; with
  the default ``'none'`` the arch is the paper's.
"""

from typing import Sequence

import torch
from torch import nn

from basicattn.registry import ARCHS
from basicattn.utils.bounds import PositiveInt

from .arch_util import (
    GlobalSkip,
    MeanShiftMixin,
    add_bicubic_skip,
    check_global_skip,
    conv3x3,
    start_as_bicubic,
)

__all__ = ['EDSR', 'ResBlock', 'PixelShuffleUpsampler', 'conv3x3']


class ResBlock(nn.Module):
    """EDSR residual block, no batch norm.

    ``x + res_scale * conv(relu(conv(x)))``.

    Args:
        num_feat (int): Channels. Default: 64.
        res_scale (float): Multiplier of the residual branch. Default: 1.0.
    """

    def __init__(self, num_feat: int = 64, res_scale: float = 1.0):
        super().__init__()
        self.conv1 = conv3x3(num_feat, num_feat)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(num_feat, num_feat)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x + res_scale * conv2(relu(conv1(x)))``."""
        return x + self.conv2(self.relu(self.conv1(x))) * self.res_scale


class PixelShuffleUpsampler(nn.Sequential):
    """Conv + pixel shuffle: one x2 or x3 stage, or log2(scale) x2 stages.

    Args:
        scale (int): 2, 3 or a power of two.
        num_feat (int): Channels in and out.

    Raises:
        ValueError: For any other scale.
    """

    def __init__(self, scale: int, num_feat: int):
        layers = []
        if scale in (2, 3):
            factors = [scale]
        elif scale >= 2 and (scale & (scale - 1)) == 0:
            factors = [2] * (scale.bit_length() - 1)
        else:
            raise ValueError(
                f'upscale={scale!r} is not supported; use 2, 3 or a power of two (4, 8, ...)'
            )
        for f in factors:
            layers += [conv3x3(num_feat, num_feat * f * f), nn.PixelShuffle(f)]
        super().__init__(*layers)


@ARCHS.register_module()
class EDSR(MeanShiftMixin, nn.Module):
    """EDSR (Lim et al., CVPRW 2017), the baseline configuration by default.

    Mean shift -> conv_first -> ``num_block`` ResBlocks -> conv -> long skip
    -> pixel-shuffle upsampler -> conv_last -> add the mean back. The paper's
    baseline is 64 features, 16 blocks, ``res_scale=1``: 1,369,859 parameters
    at x2, 1,554,499 at x3, 1,517,571 at x4. The large EDSR is 256 features,
    32 blocks, ``res_scale=0.1``.

    Args:
        num_in_ch (int): Input channels. Default: 3.
        num_out_ch (int): Output channels. Default: 3.
        num_feat (int): Feature channels. Default: 64.
        num_block (int): Residual blocks in the body. Default: 16.
        upscale (int): 2, 3 or a power of two. Default: 4.
        res_scale (float): Residual scaling in the blocks. Default: 1.0.
        img_range (float): Images are multiplied by this after the mean
            shift. Default: 1.0.
        rgb_mean (sequence[float]): Per-channel mean (DIV2K RGB mean) of
            length ``num_in_ch``; it is subtracted from the input and added to
            the output. Default: (0.4488, 0.4371, 0.4040).
        global_skip (str): ``'none'`` (the paper) or ``'bicubic'``: add the
            MATLAB-exact bicubic upsampling of the input to the output (not
            in EDSR; needs ``num_in_ch == num_out_ch``). Default: ``'none'``.

    Input: (N, num_in_ch, h, w) in [0, 1]. Output: (N, num_out_ch,
    h * upscale, w * upscale).
    """

    # EDSR baseline (64 features, 16 blocks): x4 1,517,571, x2 1,369,859
    PAPER_PARAMS = (dict(upscale=4), 1_517_571)
    #: The ONNX graph holds for any batch, height and width (``tools/export.py
    #: --dynamic``, checked at a second size; docs/deploy.md).
    ONNX_DYNAMIC_HW = True

    #: Measured faster with channels_last weights and inputs on CPU (docs/ops.md,
    #: "Speed"); the default memory format of inference (``val.channels_last: null``).
    preferred_memory_format = 'channels_last'

    #: bf16 (autocast) output against float32, PSNR in dB, measured on the tiny case by
    #: tests/archs/test_bf16_fidelity.py; at least 40 lets --precision bf16 / auto run it
    #: (basicattn/models/inference_precision.py).
    BF16_PSNR_DB = 60.2

    #: Attention taps (:mod:`basicattn.archs.taps`): none, EDSR has no attention.
    TAPS: dict = {}

    def __init__(
        self,
        num_in_ch: PositiveInt = 3,
        num_out_ch: PositiveInt = 3,
        num_feat: PositiveInt = 64,
        num_block: int = 16,
        upscale: PositiveInt = 4,
        res_scale: float = 1.0,
        img_range: float = 1.0,
        rgb_mean: Sequence[float] = (0.4488, 0.4371, 0.4040),
        global_skip: GlobalSkip = 'none',
    ):
        super().__init__()
        self.global_skip = check_global_skip(global_skip, num_in_ch, num_out_ch)
        self.upscale = upscale
        self.init_mean_shift(
            rgb_mean, img_range, num_in_ch, num_out_ch, residual_output=global_skip == 'bicubic'
        )

        self.conv_first = conv3x3(num_in_ch, num_feat)
        self.body = nn.Sequential(*[ResBlock(num_feat, res_scale) for _ in range(num_block)])
        self.conv_after_body = conv3x3(num_feat, num_feat)
        self.upsample = PixelShuffleUpsampler(upscale, num_feat)
        self.conv_last = conv3x3(num_feat, num_out_ch)
        if global_skip == 'bicubic':
            start_as_bicubic(self.conv_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve ``x``.

        Args:
            x (Tensor): (N, num_in_ch, h, w), values in [0, 1].

        Returns:
            Tensor: (N, num_out_ch, h * upscale, w * upscale).
        """
        feat = self.conv_first(self.shift_in(x))
        feat = self.conv_after_body(self.body(feat)) + feat
        out = self.shift_out(self.conv_last(self.upsample(feat)))
        return add_bicubic_skip(out, x, self.upscale, self.global_skip)
