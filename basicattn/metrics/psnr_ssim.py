"""PSNR and SSIM as the SR literature computes them (BasicSR / EDSR).

Both images are brought to float64 ``HWC`` on the [0, 255] scale (tensors in
[0, 1] are first rounded to uint8 with :func:`tensor2img`, like a saved PNG),
``crop_border`` pixels are removed on each side, and with
``test_y_channel=True`` only the MATLAB BT.601 Y channel
(``16 + 65.481 R + 128.553 G + 24.966 B`` on [0, 1] RGB) is compared.

SSIM uses an 11x11 Gaussian window (sigma 1.5) without padding ('valid'),
``C1 = (0.01 * 255) ** 2``, ``C2 = (0.03 * 255) ** 2``, averaged over the
map and then over the channels.

Both functions take the same arguments:

* ``img``: uint8 ``HWC`` RGB, float ``HWC`` on the [0, 255] scale, or a float
  tensor ``(C, H, W)`` / ``(1, C, H, W)`` in [0, 1] (rounded to uint8 first);
* ``img2``: the reference, same conventions and shape as ``img``;
* ``crop_border``: pixels removed on each side before comparing (default 0);
* ``test_y_channel``: compare the MATLAB BT.601 Y channel only (default False).

They raise ``ValueError`` when the shapes differ (both are named) or
``crop_border`` is bad, and ``TypeError`` for an unsupported input type or
dtype.
"""

import math
from typing import Any, Tuple

import numpy as np

from basicattn.utils.color import rgb2ycbcr
from basicattn.utils.img_util import as_hwc, tensor2img

__all__ = ['calculate_psnr', 'calculate_ssim', 'metric_name']

_SSIM_WIN = 11
_SSIM_SIGMA = 1.5


def metric_name(kind: str, test_y_channel: bool, crop_border: int) -> str:
    """The key under which a metric is reported, e.g. ``'psnr_y_crop2'``.

    Args:
        kind (str): ``'psnr'`` or ``'ssim'``.
        test_y_channel (bool): Y channel (``'y'``) or RGB (``'rgb'``).
        crop_border (int): Pixels cropped on each side.

    Returns:
        str: ``f'{kind}_{"y" or "rgb"}_crop{crop_border}'``.
    """
    if kind not in ('psnr', 'ssim'):
        raise ValueError(f"metric_name: kind must be 'psnr' or 'ssim', got {kind!r}")
    space = 'y' if test_y_channel else 'rgb'
    return f'{kind}_{space}_crop{int(crop_border)}'


def _to_float_hwc(img: Any, name: str) -> np.ndarray:
    """Any supported input -> float64 HWC array on the [0, 255] scale."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        torch = None
    if torch is not None and isinstance(img, torch.Tensor):
        img = tensor2img(img)
    if not isinstance(img, np.ndarray):
        raise TypeError(
            f'{name}: expected a numpy array or a torch tensor, got {type(img).__name__}'
        )
    if img.dtype != np.uint8 and not np.issubdtype(img.dtype, np.floating):
        raise TypeError(f'{name}: expected uint8 or float [0, 255] values, got dtype {img.dtype}')
    return as_hwc(img, name).astype(np.float64)


def _prepare(
    img: Any, img2: Any, crop_border: int, test_y_channel: bool, where: str
) -> Tuple[np.ndarray, np.ndarray]:
    """Convert, check shapes, crop and (optionally) take the Y channel."""
    a = _to_float_hwc(img, f'{where}: img')
    b = _to_float_hwc(img2, f'{where}: img2')
    if a.shape != b.shape:
        raise ValueError(f'{where}: image shapes differ: img {a.shape} vs img2 {b.shape}')
    if (
        isinstance(crop_border, bool)
        or not isinstance(crop_border, (int, np.integer))
        or crop_border < 0
    ):
        raise ValueError(f'{where}: crop_border must be an int >= 0, got {crop_border!r}')
    h, w = a.shape[:2]
    if 2 * crop_border >= min(h, w):
        raise ValueError(
            f'{where}: crop_border={crop_border} leaves nothing of an image of shape {a.shape}'
        )
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    if test_y_channel:
        a = _y255(a, where)
        b = _y255(b, where)
    return a, b


def _y255(img, where):
    """Y channel (HW1, [0, 255] scale) of a float64 RGB image on [0, 255]."""
    if img.shape[2] == 1:  # already a single channel (gray / Y): keep it
        return img
    if img.shape[2] != 3:
        raise ValueError(f'{where}: test_y_channel needs 3 (RGB) channels, got shape {img.shape}')
    return (rgb2ycbcr(img / 255.0, y_only=True) * 255.0)[:, :, None]


def calculate_psnr(
    img: Any, img2: Any, crop_border: int = 0, test_y_channel: bool = False
) -> float:
    """Peak signal-to-noise ratio (peak 255), in dB (arguments: see the module docstring).

    Returns:
        PSNR in dB; ``float('inf')`` for identical images.
    """
    a, b = _prepare(img, img2, crop_border, test_y_channel, 'calculate_psnr')
    mse = float(np.mean((a - b) ** 2))
    if mse == 0:
        return float('inf')
    return 10.0 * math.log10(255.0**2 / mse)


def _gaussian_window():
    x = np.arange(_SSIM_WIN, dtype=np.float64) - (_SSIM_WIN - 1) / 2.0
    g = np.exp(-(x**2) / (2.0 * _SSIM_SIGMA**2))
    g /= g.sum()
    return np.outer(g, g)


def _filter_valid(img, window):
    """2-D correlation of an HW float64 array, 'valid' region only."""
    import cv2

    r = _SSIM_WIN // 2
    return cv2.filter2D(np.ascontiguousarray(img), -1, window)[r:-r, r:-r]


def _ssim_channel(a, b, window):
    c1 = (0.01 * 255.0) ** 2
    c2 = (0.03 * 255.0) ** 2
    mu_a = _filter_valid(a, window)
    mu_b = _filter_valid(b, window)
    mu_a2, mu_b2, mu_ab = mu_a * mu_a, mu_b * mu_b, mu_a * mu_b
    var_a = _filter_valid(a * a, window) - mu_a2
    var_b = _filter_valid(b * b, window) - mu_b2
    cov = _filter_valid(a * b, window) - mu_ab
    ssim_map = ((2 * mu_ab + c1) * (2 * cov + c2)) / ((mu_a2 + mu_b2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def calculate_ssim(
    img: Any, img2: Any, crop_border: int = 0, test_y_channel: bool = False
) -> float:
    """Structural similarity (Wang et al., "Image Quality Assessment: From Error
    Visibility to Structural Similarity", TIP 2004) as BasicSR / EDSR compute it
    (arguments: see the module docstring).

    Returns:
        Mean SSIM (mean over channels for RGB); 1.0 for identical images.

    Raises:
        ValueError: Also when the cropped image is smaller than the 11x11 window.
    """
    a, b = _prepare(img, img2, crop_border, test_y_channel, 'calculate_ssim')
    if min(a.shape[:2]) < _SSIM_WIN:
        raise ValueError(
            f'calculate_ssim: images of shape {a.shape} (after '
            f'cropping {crop_border} px) are smaller than the '
            f'{_SSIM_WIN}x{_SSIM_WIN} window'
        )
    window = _gaussian_window()
    vals = [_ssim_channel(a[:, :, c], b[:, :, c], window) for c in range(a.shape[2])]
    return float(np.mean(vals))
