"""The blur-down (BD) degradation of the video SR community (DUF, TDAN, BasicVSR, MMagic).

DUF (Jo et al., CVPR 2018) released a Python blur-downsampling that later video
papers and toolboxes (BasicSR's ``duf_downsample``, MMagic's BD test sets made on
the fly) kept. On one channel of an HR image ``X`` at scale ``s``:

1. the kernel ``K`` is ``scipy.ndimage.gaussian_filter`` of a centred unit
   impulse in a 13x13 array, with ``sigma = 0.4 * s`` (1.6 at x4). scipy
   truncates its Gaussian at radius ``int(4 * sigma + 0.5)`` (3, 5 and 6
   pixels at x2, x3, x4) and normalises the truncated taps to sum to one, so
   ``K`` is the outer product of the sampled, truncated, normalised 1-D
   Gaussian ``exp(-x^2 / (2 sigma^2))``; at x2 and x3 its outer rows and
   columns are zero. (A radius past 6, from ``s >= 5``, folds the impulse's
   mirror images back in, as scipy's ``'reflect'`` mode does; we do the same.)
2. ``X`` is padded by ``p = 6 + 2 s`` pixels on every side, mirrored without
   repeating the edge pixel (numpy's / torch's ``'reflect'``);
3. correlated with ``K`` at stride ``s`` (``torch.nn.functional.conv2d(...,
   stride=s)``), which gives ``floor((H + 2p - 13) / s) + 1 = H / s + 4``
   rows for ``H`` a multiple of ``s``;
4. 2 LR pixels are cropped on each side, leaving ``H / s`` rows.

So ``LR[i, j] = sum_{a, b} K[a, b] X_pad[(i + 2) s + a, (j + 2) s + b]``:
the kernel is centred on HR pixel ``(s i, s j)``, the first pixel of each
``s x s`` cell, whereas bicubic upsampling (MATLAB ``imresize``) puts LR pixel
``i`` at the cell centre ``s i + (s - 1) / 2``: the bicubic baseline of BD-DUF
input is ``(s - 1) / 2`` HR pixels off (trained models learn the offset).

Unlike BasicSR's torch version, which asks for sides larger than ``p``, any
size works here (numpy repeats the mirroring for tiny images).
"""

import numpy as np

__all__ = [
    'DUF_KERNEL_SIZE',
    'duf_sigma',
    'duf_kernel_1d',
    'duf_kernel',
    'duf_blur_downsample',
    'strided_correlate',
]

#: Side of DUF's kernel.
DUF_KERNEL_SIZE = 13
#: scipy.ndimage.gaussian_filter's default truncation, in standard deviations.
_TRUNCATE = 4.0
#: LR pixels cropped on each side after the strided convolution.
_CROP = 2


def duf_sigma(scale: int) -> float:
    """DUF's Gaussian standard deviation at ``scale``: ``0.4 * scale`` (1.6 at x4)."""
    return 0.4 * scale


def duf_kernel_1d(sigma: float, size: int = DUF_KERNEL_SIZE) -> np.ndarray:
    """One axis of ``gaussian_filter(centred impulse of side size, sigma)``.

    Args:
        sigma (float): Standard deviation in pixels (> 0).
        size (int): Side of the impulse array (odd). Default: 13.

    Returns:
        np.ndarray: float64 ``(size,)``, summing to one.
    """
    radius = int(_TRUNCATE * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 * x * x / (sigma * sigma))
    taps /= taps.sum()
    impulse = np.zeros(size, dtype=np.float64)
    impulse[size // 2] = 1.0
    # scipy's 'reflect' boundary is numpy's 'symmetric' (the edge pixel repeated)
    padded = np.pad(impulse, radius, mode='symmetric')
    return np.correlate(padded, taps, mode='valid')


def duf_kernel(sigma: float, size: int = DUF_KERNEL_SIZE) -> np.ndarray:
    """DUF's 2-D kernel ``K``: the outer product of :func:`duf_kernel_1d` with itself."""
    k = duf_kernel_1d(sigma, size)
    return np.outer(k, k)


def strided_correlate(img: np.ndarray, taps: np.ndarray, axis: int, stride: int, first: int, n):
    """``out[i] = sum_a taps[a] img[(first + i) * stride + a]`` along ``axis``, ``n`` outputs.

    Zero taps are skipped. Also RDN's BD filter (stride 1) in
    :mod:`basicattn.data.degradation_transform`.
    """
    out = None
    for a, w in enumerate(taps):
        if not w:
            continue
        start = first * stride + a
        index = [slice(None)] * img.ndim
        index[axis] = slice(start, start + stride * (n - 1) + 1, stride)
        term = w * img[tuple(index)]
        out = term if out is None else out + term
    return out


def duf_blur_downsample(img: np.ndarray, scale: int, sigma: float = None) -> np.ndarray:
    """DUF's BD of one HR image, in float64 (no rounding).

    Args:
        img (np.ndarray): ``(H, W)`` or ``(H, W, C)``, any real dtype; each
            channel is filtered on its own. ``H`` and ``W`` multiples of
            ``scale``.
        scale (int): Downscaling factor (>= 1).
        sigma (float, optional): Standard deviation; None gives
            :func:`duf_sigma` of ``scale``.

    Returns:
        np.ndarray: float64 ``(H / scale, W / scale[, C])``.
    """
    sigma = duf_sigma(scale) if sigma is None else sigma
    taps = duf_kernel_1d(sigma)
    pad = DUF_KERNEL_SIZE // 2 + 2 * scale
    widths = [(pad, pad), (pad, pad)] + [(0, 0)] * (img.ndim - 2)
    padded = np.pad(img.astype(np.float64), widths, mode='reflect')
    out = padded
    for axis in (0, 1):
        full = (img.shape[axis] + 2 * pad - DUF_KERNEL_SIZE) // scale + 1
        n = full - 2 * _CROP
        if n * scale != img.shape[axis]:  # the size relation the module docstring derives
            raise ValueError(
                f'BD-DUF: side {img.shape[axis]} gives {n} LR pixels, not side / {scale}; '
                f'the side must be a multiple of the scale'
            )
        out = strided_correlate(out, taps, axis, scale, _CROP, n)
    return np.ascontiguousarray(out)
