"""The Bicubic baseline: MATLAB-exact bicubic upsampling as a network."""

from typing import Optional, Union

import torch
from torch import nn

from basicattn.ops.op_utils import exporting
from basicattn.ops.traced_imresize import traced_bicubic_upsample
from basicattn.registry import ARCHS
from basicattn.utils.bounds import check_positive_number
from basicattn.utils.matlab_imresize import imresize

__all__ = ['Bicubic']


@ARCHS.register_module()
class Bicubic(nn.Module):
    """Bicubic upsampling, the baseline every SR paper reports.

    Upsamples with the MATLAB-exact ``imresize`` (cubic kernel ``a = -0.5``,
    symmetric padding), so evaluating it on Set5 reproduces the "Bicubic" row
    of SR papers. It has no parameters and does not clip its output.

    Given a window of video frames ``(N, T, C, h, w)`` it upsamples the centre
    frame ``T // 2``, so it is the baseline of sliding-window video models
    too (``model_type: VideoSRModel``).

    Args:
        upscale (int | float, optional): Upsampling factor (> 0), named as
            in every other arch. Defaults to 4.
        scale (int | float, optional): The same factor under its earlier
            name, still accepted (option files and ``--arch-args`` that
            say ``scale``); when both are given they must agree.
    """

    PAPER_PARAMS = (dict(upscale=4), 0)
    #: The ONNX graph holds for any batch, height and width (``tools/export.py
    #: --dynamic``, checked at a second size; docs/deploy.md).
    ONNX_DYNAMIC_HW = True

    #: Attention taps (:mod:`basicattn.archs.taps`): none, no attention here.
    TAPS: dict = {}
    #: bf16 output vs float32, PSNR in dB (:mod:`basicattn.models.inference_precision`):
    #: infinite, because under autocast the interpolation still runs in float32.
    BF16_PSNR_DB = float('inf')

    def __init__(
        self,
        upscale: Optional[Union[int, float]] = None,
        scale: Optional[Union[int, float]] = None,
    ):
        super().__init__()
        if upscale is not None:
            upscale = check_positive_number(upscale, 'upscale', 'Bicubic')
        if scale is not None:
            scale = check_positive_number(scale, 'scale', 'Bicubic')
        if upscale is not None and scale is not None and upscale != scale:
            raise ValueError(
                f'Bicubic: upscale={upscale} and scale={scale} disagree; give upscale only'
            )
        self.upscale = self.scale = next((v for v in (upscale, scale) if v is not None), 4)

    def forward(self, x):
        """Upsample a batch.

        Args:
            x (torch.Tensor): Float tensor ``(N, C, h, w)`` in [0, 1], or a
                window of frames ``(N, T, C, h, w)`` (the centre one is used).

        Returns:
            torch.Tensor: ``(N, C, ceil(h * scale), ceil(w * scale))``, same
            dtype and device, differentiable. Under autocast the interpolation
            runs in float32 (it is MATLAB-exact and costs next to nothing) and
            the result is float32.
        """
        if torch.is_autocast_enabled(x.device.type):
            with torch.autocast(x.device.type, enabled=False):
                return self.forward(x.float())
        if x.dim() == 5:
            x = x[:, x.shape[1] // 2]
        if x.dim() != 4:
            raise ValueError(
                f'Bicubic: expected input (N, C, H, W) or (N, T, '
                f'C, H, W), got shape {tuple(x.shape)}'
            )
        if exporting() and self.scale >= 1:  # the same numbers, at any traced size
            return traced_bicubic_upsample(x, self.scale)
        return imresize(x, scale=self.scale)

    def extra_repr(self):
        return f'upscale={self.upscale}'
