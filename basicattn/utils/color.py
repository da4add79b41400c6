"""RGB -> YCbCr with MATLAB's ``rgb2ycbcr`` (ITU-R BT.601, studio range).

With RGB in [0, 1] MATLAB computes, on the [0, 255] scale::

    Y  =  16 +  65.481 R + 128.553 G +  24.966 B
    Cb = 128 -  37.797 R -  74.203 G + 112.000 B
    Cr = 128 + 112.000 R -  93.786 G -  18.214 B

SR papers report PSNR / SSIM on this Y channel.
"""

import numpy as np

__all__ = ['rgb2ycbcr', 'rgb2y_torch']

# Rows: Y, Cb, Cr; columns: R, G, B (inputs in [0, 1], outputs in [0, 255]).
_RGB2YCBCR = np.array(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]],
    dtype=np.float64,
)
_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float64)


def rgb2ycbcr(img, y_only=True):
    """Convert an RGB image to MATLAB BT.601 YCbCr (or its Y channel).

    Args:
        img (np.ndarray): ``HWC`` RGB image with 3 channels, either uint8 in
            [0, 255] or float in [0, 1].
        y_only (bool): Return only the Y channel. Defaults to True.

    Returns:
        np.ndarray: ``HW`` (``y_only``) or ``HWC`` YCbCr image. For uint8
        input: float64 on the [0, 255] scale (Y in [16, 235]), not rounded.
        For float input: same float dtype on the [0, 1] scale (value / 255).

    Raises:
        TypeError: ``img`` is not a numpy array, or has another dtype.
        ValueError: ``img`` is not ``HWC`` with 3 channels.
    """
    if not isinstance(img, np.ndarray):
        raise TypeError(f'rgb2ycbcr: expected a numpy array, got {type(img).__name__}')
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(
            f'rgb2ycbcr: expected an HWC RGB image with 3 channels, got shape {img.shape}'
        )
    if img.dtype == np.uint8:
        rgb = img.astype(np.float64) / 255.0
        out_dtype, out_scale = np.float64, 1.0
    elif np.issubdtype(img.dtype, np.floating):
        rgb = img.astype(np.float64)
        out_dtype, out_scale = img.dtype, 1.0 / 255.0
    else:
        raise TypeError(f'rgb2ycbcr: expected uint8 or float input, got dtype {img.dtype}')
    if y_only:
        out = rgb @ _RGB2YCBCR[0] + _OFFSET[0]
    else:
        out = rgb @ _RGB2YCBCR.T + _OFFSET
    return (out * out_scale).astype(out_dtype, copy=False)


def rgb2y_torch(t):
    """MATLAB BT.601 Y channel of an RGB tensor, on the [0, 1] scale.

    Args:
        t (torch.Tensor): Float RGB tensor ``(N, 3, H, W)`` (or ``(3, H, W)``)
            in [0, 1].

    Returns:
        torch.Tensor: ``(N, 1, H, W)`` (or ``(1, H, W)``) tensor holding
        ``Y / 255``, same dtype and device as ``t``; differentiable.

    Raises:
        TypeError: ``t`` is not a floating-point tensor.
        ValueError: ``t`` does not have 3 channels in dim -3.
    """
    import torch

    if not isinstance(t, torch.Tensor) or not t.is_floating_point():
        raise TypeError(
            f'rgb2y_torch: expected a float tensor, got {getattr(t, "dtype", type(t).__name__)}'
        )
    if t.dim() not in (3, 4) or t.shape[-3] != 3:
        raise ValueError(
            f'rgb2y_torch: expected (N, 3, H, W) or (3, H, W), got shape {tuple(t.shape)}'
        )
    coef = [c / 255.0 for c in _RGB2YCBCR[0]]
    r, g, b = t.unbind(dim=-3)
    y = coef[0] * r + coef[1] * g + coef[2] * b + _OFFSET[0] / 255.0
    return y.unsqueeze(-3)
