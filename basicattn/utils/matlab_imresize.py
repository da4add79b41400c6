"""A MATLAB-exact bicubic ``imresize`` for numpy arrays and torch tensors.

Super-resolution benchmarks make their LR images (and the "Bicubic" baseline)
with MATLAB's ``imresize``; cv2 / PIL bicubic differ from it by tenths of a dB.
This module reproduces MATLAB's arithmetic:

* cubic convolution kernel with ``a = -0.5`` and support 4;
* when shrinking (scale < 1) with antialiasing, the kernel is stretched by
  ``1 / scale`` (and scaled by ``scale``) so that it also low-pass filters;
* output pixel ``x`` (1-based) samples input position
  ``u = x / scale + 0.5 * (1 - 1 / scale)``; it uses the
  ``ceil(kernel_width) + 2`` input pixels from ``floor(u - kernel_width / 2)``
  on, whose weights are normalised to sum to one;
* out-of-range indices are mirrored (symmetric padding, edge pixel repeated),
  as in current MATLAB releases (and BasicSR / MMagic); ``padding='replicate'``
  clamps them to the edge instead, as older MATLAB releases did (the
  2006-era source has ``indices = min(max(1, indices), in_length)``). The
  Set5 LR files in the shared data reproduce pixel-exactly with
  ``padding='replicate'``; the two modes differ only within a few pixels of
  the border;
* the two axes are resized one after the other, the axis with the smaller
  scale (the larger reduction) first, rows first when the scales are equal;
* uint8 input is computed in float64 and rounded (half away from zero) and
  clipped to uint8 after *each* axis: MATLAB stores the first pass in the
  class of the input (its ``intermediate_class``).

Each axis is resized with a dense ``(out_len, in_len)`` weight matrix, built
once per configuration and cached, and applied with one matrix product.
"""

import math
from functools import lru_cache

import numpy as np

try:  # torch is a hard dependency of the package, but keep numpy usable alone
    import torch
except ImportError:  # pragma: no cover
    torch = None

__all__ = ['imresize', 'cubic_kernel', 'resize_weights']

_KERNEL_WIDTH = 4.0


def cubic_kernel(x):
    """MATLAB's cubic convolution kernel (Keys, ``a = -0.5``).

    Args:
        x (np.ndarray | float): Distances from the sampling position.

    Returns:
        np.ndarray: Kernel values (float64), zero for ``|x| > 2``.
    """
    return cubic_of_distance(np.abs(np.asarray(x, dtype=np.float64)))


def cubic_of_distance(ax):
    """Keys' cubic (``a = -0.5``) of absolute distances ``ax``: a numpy array or a
    torch tensor (the traced resize of ``basicattn/ops/traced_imresize.py`` uses it)."""
    ax2 = ax * ax
    ax3 = ax2 * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


_PADDINGS = ('symmetric', 'replicate')


@lru_cache(maxsize=64)
def _weights_np(in_len, out_len, scale, antialiasing, padding):
    """Cached float64 weight matrix; see :func:`resize_weights`."""
    kernel_width = _KERNEL_WIDTH
    if scale < 1 and antialiasing:

        def kernel(d):
            return scale * cubic_kernel(scale * d)

        kernel_width = kernel_width / scale
    else:
        kernel = cubic_kernel

    # 1-based output coordinates and their positions in the input grid.
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - kernel_width / 2.0)
    taps = int(math.ceil(kernel_width)) + 2
    idx = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    w = kernel(u[:, None] - idx)
    w = w / w.sum(axis=1, keepdims=True)

    idx0 = idx.astype(np.int64) - 1  # 0-based
    if padding == 'symmetric':
        # index sequence 0..n-1, n-1..0 repeated: the edge pixel is repeated.
        mirror = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])
        src = mirror[np.mod(idx0, 2 * in_len)]
    else:  # replicate
        src = np.clip(idx0, 0, in_len - 1)

    mat = np.zeros((out_len, in_len), dtype=np.float64)
    rows = np.broadcast_to(np.arange(out_len)[:, None], src.shape)
    np.add.at(mat, (rows, src), w)
    mat.setflags(write=False)
    return mat


def resize_weights(in_len, out_len, scale, antialiasing=True, padding='symmetric'):
    """The MATLAB ``imresize`` weight matrix of one axis.

    Args:
        in_len (int): Input length along the axis.
        out_len (int): Output length along the axis.
        scale (float): Scale factor of the axis (``out / in`` when MATLAB is
            given an output size, else the requested scale).
        antialiasing (bool): Stretch the kernel when ``scale < 1``.
            Defaults to True.
        padding (str): ``'symmetric'`` (current MATLAB) or ``'replicate'``
            (older MATLAB). Defaults to ``'symmetric'``.

    Returns:
        np.ndarray: Read-only float64 array ``(out_len, in_len)``; row ``i``
        holds the weights of output pixel ``i`` (rows sum to one).
    """
    if int(in_len) < 1 or int(out_len) < 1:
        raise ValueError(f'imresize: lengths must be >= 1, got in_len={in_len}, out_len={out_len}')
    if not scale > 0 or not math.isfinite(scale):
        raise ValueError(f'imresize: scale must be a positive finite number, got {scale!r}')
    if padding not in _PADDINGS:
        raise ValueError(f'imresize: padding must be one of {_PADDINGS}, got {padding!r}')
    return _weights_np(int(in_len), int(out_len), float(scale), bool(antialiasing), padding)


@torch.compiler.disable
def _axis_matrix(in_len, out_len, scale, antialiasing, padding, dtype, device):
    """The checked, cached weight matrix of one axis as a tensor.

    Built with numpy, outside ``torch.compile``'s tracing (dynamo cannot trace
    the numpy code; a compiled network calling ``imresize`` gets a graph break
    here and the matrix as a constant input).
    """
    resize_weights(in_len, out_len, scale, antialiasing, padding)  # validates; cached
    return _weights_torch(in_len, out_len, scale, bool(antialiasing), padding, dtype, device)


@lru_cache(maxsize=32)
def _weights_torch(in_len, out_len, scale, antialiasing, padding, dtype, device):
    """Cached weight matrix as a tensor of ``dtype`` on ``device``."""
    mat = resize_weights(in_len, out_len, scale, antialiasing, padding)
    return torch.from_numpy(np.array(mat)).to(device=device, dtype=dtype)


def _plan(in_hw, scale, output_shape, where):
    """Per-axis (out_len, scale) pairs and the axis order, MATLAB style."""
    if (scale is None) == (output_shape is None):
        raise ValueError(
            f'{where}: give exactly one of scale / output_shape, got '
            f'scale={scale!r}, output_shape={output_shape!r}'
        )
    if scale is not None:
        if isinstance(scale, (tuple, list)) or isinstance(scale, bool):
            raise ValueError(
                f'{where}: scale must be one number (same for both axes), got {scale!r}'
            )
        try:
            scale = float(scale)
        except (TypeError, ValueError):
            raise ValueError(f'{where}: scale must be a number, got {scale!r}') from None
        if not (scale > 0 and math.isfinite(scale)):
            raise ValueError(f'{where}: scale must be a positive finite number, got {scale!r}')
        # MATLAB: output size = ceil(scale * input size). The tiny epsilon
        # keeps e.g. 0.1 * 30 = 3.0000000000000004 from becoming 4.
        out = [max(1, int(math.ceil(scale * n - 1e-9))) for n in in_hw]
        scales = [scale, scale]
    else:
        if not isinstance(output_shape, (tuple, list)) or len(output_shape) != 2:
            raise ValueError(f'{where}: output_shape must be (h, w), got {output_shape!r}')
        out = []
        for v in output_shape:
            try:
                bad = isinstance(v, bool) or int(v) != v or int(v) < 1
            except (TypeError, ValueError):
                bad = True
            if bad:
                raise ValueError(
                    f'{where}: output_shape must hold positive integers, got {output_shape!r}'
                )
            out.append(int(v))
        scales = [out[0] / in_hw[0], out[1] / in_hw[1]]
    # MATLAB sorts the dims by scale (stable): largest reduction first.
    order = [0, 1] if scales[0] <= scales[1] else [1, 0]
    return out, scales, order


def _round_uint8(x):
    """Clip to [0, 255] and round half away from zero, like MATLAB."""
    return np.floor(np.clip(x, 0.0, 255.0) + 0.5).astype(np.uint8)


def _imresize_numpy(img, scale, output_shape, antialiasing, padding):
    if img.ndim not in (2, 3):
        raise ValueError(f'imresize: numpy input must be HW or HWC, got shape {img.shape}')
    is_uint8 = img.dtype == np.uint8
    if not is_uint8 and not np.issubdtype(img.dtype, np.floating):
        raise TypeError(f'imresize: numpy input must be uint8 or float, got dtype {img.dtype}')
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f'imresize: empty image of shape {img.shape}')
    out, scales, order = _plan(img.shape[:2], scale, output_shape, 'imresize')
    res = img.astype(np.float64)
    for axis in order:
        mat = resize_weights(img.shape[axis], out[axis], scales[axis], antialiasing, padding)
        # tensordot puts the new axis first; move it back into place.
        res = np.moveaxis(np.tensordot(mat, res, axes=([1], [axis])), 0, axis)
        if is_uint8:
            res = _round_uint8(res).astype(np.float64)
    return res.astype(np.uint8) if is_uint8 else res


def _imresize_torch(t, scale, output_shape, antialiasing, padding):
    if t.dim() not in (3, 4):
        raise ValueError(
            f'imresize: tensor input must be (C, H, W) or (N, C, H, W), got shape {tuple(t.shape)}'
        )
    if not t.is_floating_point():
        raise TypeError(f'imresize: tensor input must be floating point, got dtype {t.dtype}')
    in_hw = (t.shape[-2], t.shape[-1])
    if in_hw[0] < 1 or in_hw[1] < 1:
        raise ValueError(f'imresize: empty tensor of shape {tuple(t.shape)}')
    out, scales, order = _plan(in_hw, scale, output_shape, 'imresize')
    res = t
    for axis in order:
        mat = _axis_matrix(
            in_hw[axis], out[axis], scales[axis], antialiasing, padding, t.dtype, t.device
        )
        if axis == 0:  # rows: (out_h, H) @ (..., H, W)
            res = torch.matmul(mat, res)
        else:  # columns: (..., H, W) @ (W, out_w)
            res = torch.matmul(res, mat.t())
    return res


def imresize(img, scale=None, output_shape=None, antialiasing=True, *, padding='symmetric'):
    """Resize an image exactly like MATLAB's ``imresize(img, s, 'bicubic')``.

    Args:
        img (np.ndarray | torch.Tensor): A numpy ``HW`` / ``HWC`` array of
            dtype uint8 or float, or a float tensor ``(C, H, W)`` /
            ``(N, C, H, W)``.
        scale (float, optional): One scale factor for both axes; the output
            size is ``ceil(scale * size)`` as in MATLAB.
        output_shape (tuple[int, int], optional): Output ``(h, w)``; each
            axis then uses the scale ``out / in``. Give exactly one of
            ``scale`` / ``output_shape``.
        antialiasing (bool): Widen the kernel by ``1 / scale`` when shrinking
            (MATLAB's default). Defaults to True.
        padding (str): Boundary handling, keyword only: ``'symmetric'``
            (current MATLAB, BasicSR, MMagic) or ``'replicate'`` (older
            MATLAB releases; reproduces the shared Set5 LR files exactly).
            Defaults to ``'symmetric'``.

    Returns:
        np.ndarray | torch.Tensor: The resized image. uint8 numpy input gives
        uint8 (rounded and clipped after each axis, as MATLAB does); float
        numpy input gives float64, neither rounded nor clipped. A tensor gives
        a tensor of the same dtype and device, differentiable and not clipped.

    Raises:
        ValueError: Neither or both of ``scale`` / ``output_shape`` given, a
            non-positive scale or size, or a wrongly shaped input.
        TypeError: An input that is neither a numpy array nor a tensor, or an
            unsupported dtype.
    """
    if torch is not None and isinstance(img, torch.Tensor):
        return _imresize_torch(img, scale, output_shape, antialiasing, padding)
    if isinstance(img, np.ndarray):
        return _imresize_numpy(img, scale, output_shape, antialiasing, padding)
    raise TypeError(f'imresize: expected a numpy array or a torch tensor, got {type(img).__name__}')
