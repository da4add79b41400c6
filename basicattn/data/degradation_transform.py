"""The BI, BD and DN degradations of SR benchmarks, as registered transforms.

The three models that RDN (Zhang et al., CVPR 2018) made standard and that
DAN, RCAN, SAN ... report on. Each takes an HR image whose sides are a
multiple of ``scale`` (crop it with ``mod_crop`` first, as the MATLAB scripts
do with ``modcrop``) and returns the LR image:

* **BI** (:class:`BIDegradation`): MATLAB ``imresize(HR, 1/s, 'bicubic')``
  with basicattn's exact port (antialiased cubic kernel; ``padding``
  ``'symmetric'`` as current MATLAB, ``'replicate'`` as older releases).
* **BD** (:class:`BDDegradation`): RDN's ``imresize_BD`` as we know it
  from the authors' MATLAB scripts: ``K = fspecial('gaussian', 7, 1.6)``,
  ``B = imfilter(HR, K, 'replicate')`` (correlation, same size, the border
  pixels replicated, the result rounded to uint8), then *no* bicubic
  resize but plain subsampling: for x3 ``imresize(B, 1/3, 'nearest')``,
  i.e. the centre pixel of every 3x3 cell, ``LR[i, j] = B[3i + 1, 3j + 1]``
  (0-based; their GPU branch writes the same as ``B(2:3:end-1, 2:3:end-1)``).
  We take ``B[s*i + (s-1)//2, s*j + (s-1)//2]`` for every scale, which is
  MATLAB's nearest-neighbour subsampling for odd ``s`` and RDN's
  ``B(s/2:s:end-s/2, ...)`` for even ``s``. Only x3 with the 7x7 kernel is
  used in the papers; ``kernel_size`` and ``sigma`` are arguments.
* **BD-DUF** (:class:`BDDUFDegradation`): the blur-down of the video SR
  papers (DUF, TDAN, BasicVSR, MMagic), a different model from RDN's BD:
  13x13 Gaussian of sigma ``0.4 * scale``, mirrored padding, stride-``scale``
  convolution, 2 LR pixels cropped per side (``basicattn/data/bd_duf.py``).
* **DN** (:class:`DNDegradation`): BI, rounded to uint8, plus white Gaussian
  noise of standard deviation ``noise_level = 30`` on the 0-255 scale (the
  papers' "30% noise"), rounded and clipped back to uint8 since LR sets are
  stored as PNG.

uint8 images are computed in float64 and rounded (half away from zero) and
clipped like MATLAB's uint8 arithmetic; float images (values in [0, 1]) are
neither rounded nor clipped and DN's noise is ``noise_level / 255``.

Noise is reproducible. DN draws it from
``numpy.random.default_rng([seed, zlib.crc32(key)])``, where ``key`` is the
image's key (its path relative to the dataset root without extension, as in
``PairedImageDataset`` and LMDBs; ``''`` gives 0) and ``seed`` is
``DNDegradation(seed=...)`` when set, otherwise the per-sample seed the
caller passes (``PairedImageDataset`` passes the seed of item
``(index, seed)``). Without either, fresh OS entropy is used.
``tools/make_lr.py --seed S`` uses the same rule, so an on-the-fly DN set
with ``seed: S`` equals the files that tool writes.

Usage: ``deg.degrade(img, seed=None, key=None)`` on an array, or
``deg(results)`` on a dict with ``gt`` (and optionally ``seed``, ``key``),
which adds ``lq``, as OpenMMLab pipelines do. :func:`build_degradation`
turns a short name (``'BI'``, ``'BD'``, ``'BD-DUF'``, ``'DN'``) or a config
dict into a transform.
"""

import difflib
import inspect
import math
import zlib

import numpy as np

from basicattn.registry import TRANSFORMS
from basicattn.utils.bounds import check_positive_number, is_int, is_positive_int
from basicattn.utils.matlab_imresize import imresize

from .bd_duf import duf_blur_downsample, duf_kernel, duf_sigma, strided_correlate

__all__ = [
    'Degradation',
    'BIDegradation',
    'BDDegradation',
    'BDDUFDegradation',
    'DNDegradation',
    'build_degradation',
    'gaussian_kernel',
    'imfilter_replicate',
    'noise_generator',
    'DEGRADATION_NAMES',
]

#: The short names accepted wherever a degradation is named by a string.
DEGRADATION_NAMES = {
    'BI': 'BIDegradation',
    'BD': 'BDDegradation',
    'DN': 'DNDegradation',
    'BD-DUF': 'BDDUFDegradation',
}
_PADDINGS = ('symmetric', 'replicate')


def _round_uint8(x):
    """Clip to [0, 255] and round half away from zero, like MATLAB's uint8()."""
    return np.floor(np.clip(x, 0.0, 255.0) + 0.5).astype(np.uint8)


def gaussian_kernel(size=7, sigma=1.6):
    """MATLAB ``fspecial('gaussian', size, sigma)``.

    ``exp(-(x^2 + y^2) / (2 sigma^2))`` on the grid ``-(size-1)/2 ..
    (size-1)/2``, values below ``eps * max`` set to zero, normalised to sum
    to one.

    Args:
        size (int): Side of the square kernel (>= 1).
        sigma (float): Standard deviation in pixels (> 0).

    Returns:
        np.ndarray: float64 ``(size, size)``.
    """
    if not is_positive_int(size):
        raise ValueError(f'gaussian_kernel: size must be an int >= 1, got {size!r}')
    check_positive_number(sigma, 'sigma', 'gaussian_kernel')
    half = (size - 1) / 2.0
    x = np.arange(size, dtype=np.float64) - half
    h = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2.0 * sigma * sigma))
    h[h < np.finfo(np.float64).eps * h.max()] = 0
    return h / h.sum()


def _correlate_axis(img, weights, axis):
    """1-D correlation along ``axis`` with replicated borders, same size."""
    n = len(weights)
    before, after = (n - 1) // 2, n // 2  # MATLAB's centre floor((n+1)/2)
    pad = [(0, 0)] * img.ndim
    pad[axis] = (before, after)
    padded = np.pad(img, pad, mode='edge')
    return strided_correlate(padded, weights, axis, 1, 0, img.shape[axis])


def imfilter_replicate(img, kernel):
    """MATLAB ``imfilter(img, kernel, 'replicate')`` (correlation, 'same').

    Each channel is filtered separately. A rank-one kernel (a Gaussian
    without truncated entries) is applied as two 1-D passes; otherwise
    every tap is summed. uint8 input gives uint8 output, rounded and
    clipped once at the end as MATLAB does; float input gives float64.

    Args:
        img (np.ndarray): HW or HWC image, uint8 or float.
        kernel (np.ndarray): 2-D ``(kh, kw)`` float kernel.

    Returns:
        np.ndarray: The filtered image, same shape.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2:
        raise ValueError(f'imfilter_replicate: kernel must be 2-D, got shape {kernel.shape}')
    res = img.astype(np.float64)
    col, row = kernel.sum(axis=1), kernel.sum(axis=0)
    total = kernel.sum()
    if total != 0 and np.allclose(kernel, np.outer(col, row) / total, rtol=1e-12, atol=0):
        res = _correlate_axis(res, col / total, 0)
        res = _correlate_axis(res, row, 1)
    else:
        kh, kw = kernel.shape
        pad = [((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2)]
        pad += [(0, 0)] * (img.ndim - 2)
        padded = np.pad(res, pad, mode='edge')
        h, w = img.shape[:2]
        res = np.zeros(img.shape, dtype=np.float64)
        for i in range(kh):
            for j in range(kw):
                if kernel[i, j]:
                    res += kernel[i, j] * padded[i : i + h, j : j + w]
    return _round_uint8(res) if img.dtype == np.uint8 else res


def noise_generator(seed=None, key=None):
    """The generator DN draws its noise from (see the module docstring).

    Args:
        seed (int, optional): A non-negative seed; None gives fresh entropy.
        key (str, optional): The image key; None or '' counts as 0.

    Returns:
        numpy.random.Generator: ``default_rng([seed, crc32(key)])``.
    """
    if seed is None:
        return np.random.default_rng()
    if not is_int(seed) or seed < 0:
        raise ValueError(f'seed must be a non-negative int or None, got {seed!r}')
    tag = zlib.crc32(key.encode('utf-8')) if key else 0
    return np.random.default_rng([int(seed), tag])


class Degradation:
    """Base class: HR image -> LR image by a fixed integer ``scale``.

    Subclasses implement :meth:`_degrade`. ``degrade(img, seed, key)`` checks
    the image; calling the transform on a dict reads ``results['gt']`` (and
    ``seed`` / ``key`` when present) and sets ``results['lq']``.

    Args:
        scale (int): Downscaling factor (>= 1). Default: 3.
    """

    short_name = None

    def __init__(self, scale=3):
        if not is_positive_int(scale):
            raise ValueError(f'{type(self).__name__}: scale must be an int >= 1, got {scale!r}')
        self.scale = int(scale)

    def degrade(self, img, seed=None, key=None):
        """Degrade one HR image.

        Args:
            img (np.ndarray): HW or HWC, uint8 or float in [0, 1]; both
                sides multiples of ``scale``.
            seed (int, optional): Per-sample seed (used by random
                degradations only).
            key (str, optional): Image key (used by random degradations
                only).

        Returns:
            np.ndarray: The LR image, ``(h / scale, w / scale[, C])``, uint8
            for uint8 input, float64 for float input.
        """
        name = type(self).__name__
        if not isinstance(img, np.ndarray) or img.ndim not in (2, 3):
            got = getattr(img, 'shape', type(img).__name__)
            raise ValueError(f'{name}: expected an HW or HWC numpy image, got {got}')
        if img.dtype != np.uint8 and not np.issubdtype(img.dtype, np.floating):
            raise TypeError(f'{name}: expected a uint8 or float image, got dtype {img.dtype}')
        h, w = img.shape[:2]
        if h % self.scale or w % self.scale or h == 0 or w == 0:
            raise ValueError(
                f'{name}: image size {h}x{w} is not a positive multiple of '
                f'scale {self.scale}; crop it first (basicattn.utils.img_util.'
                'mod_crop)'
            )
        return self._degrade(img, seed, key)

    def _degrade(self, img, seed, key):
        raise NotImplementedError

    def __call__(self, results):
        """Dict interface: ``results['lq'] = degrade(results['gt'], ...)``."""
        if not isinstance(results, dict) or 'gt' not in results:
            raise TypeError(
                f'{type(self).__name__} expects a dict with a '
                f"'gt' image; use .degrade(img) for an array"
            )
        results['lq'] = self.degrade(results['gt'], results.get('seed'), results.get('key'))
        return results

    def _args(self):
        return dict(scale=self.scale)

    def __repr__(self):
        args = ', '.join(f'{k}={v!r}' for k, v in self._args().items())
        return f'{type(self).__name__}({args})'


def _check_padding(owner, padding):
    if padding not in _PADDINGS:
        raise ValueError(f'{owner}: padding must be one of {_PADDINGS}, got {padding!r}')
    return padding


@TRANSFORMS.register_module()
class BIDegradation(Degradation):
    """BI: MATLAB-exact bicubic downscaling by ``1 / scale``.

    Args:
        scale (int): Downscaling factor. Default: 3.
        padding (str): ``'symmetric'`` (current MATLAB, BasicSR) or
            ``'replicate'`` (older MATLAB; reproduces the shared Set5 LR
            files). Default: ``'symmetric'``.
    """

    short_name = 'BI'

    def __init__(self, scale=3, padding='symmetric'):
        super().__init__(scale)
        self.padding = _check_padding('BIDegradation', padding)

    def _degrade(self, img, seed, key):
        return imresize(img, scale=1.0 / self.scale, padding=self.padding)

    def _args(self):
        return dict(scale=self.scale, padding=self.padding)


@TRANSFORMS.register_module()
class BDDegradation(Degradation):
    """BD: Gaussian blur (``imfilter`` 'replicate'), then keep every
    ``scale``-th pixel, starting at offset ``(scale - 1) // 2``.

    Args:
        scale (int): Downscaling factor. Default: 3.
        kernel_size (int): Side of the Gaussian kernel. Default: 7.
        sigma (float): Its standard deviation. Default: 1.6.
    """

    short_name = 'BD'

    def __init__(self, scale=3, kernel_size=7, sigma=1.6):
        super().__init__(scale)
        self.kernel = gaussian_kernel(kernel_size, sigma)
        self.kernel_size = int(kernel_size)
        self.sigma = float(sigma)

    @property
    def offset(self):
        """0-based index of the first kept row/column."""
        return (self.scale - 1) // 2

    def _degrade(self, img, seed, key):
        blurred = imfilter_replicate(img, self.kernel)
        off, s = self.offset, self.scale
        return np.ascontiguousarray(blurred[off::s, off::s])

    def _args(self):
        return dict(scale=self.scale, kernel_size=self.kernel_size, sigma=self.sigma)


@TRANSFORMS.register_module()
class BDDUFDegradation(Degradation):
    """BD-DUF: the video community's blur-down (``basicattn/data/bd_duf.py``).

    A 13x13 Gaussian (scipy ``gaussian_filter`` of an impulse, sigma
    ``0.4 * scale`` unless given), the image mirrored by ``6 + 2 * scale``
    pixels, correlated at stride ``scale``, 2 LR pixels cropped per side:
    an ``H x W`` image gives ``H / scale x W / scale``. Computed in float64
    per channel; uint8 input is rounded to uint8 once at the end.

    Args:
        scale (int): Downscaling factor. Default: 3.
        sigma (float, optional): Standard deviation; None: ``0.4 * scale``.
            Default: None.
    """

    short_name = 'BD-DUF'

    def __init__(self, scale=3, sigma=None):
        super().__init__(scale)
        if sigma is not None:
            check_positive_number(sigma, 'sigma', 'BDDUFDegradation')
        self.sigma = duf_sigma(self.scale) if sigma is None else float(sigma)

    @property
    def kernel(self):
        """The 13x13 kernel (float64, sums to one)."""
        return duf_kernel(self.sigma)

    def _degrade(self, img, seed, key):
        lr = duf_blur_downsample(img, self.scale, self.sigma)
        return _round_uint8(lr) if img.dtype == np.uint8 else lr

    def _args(self):
        return dict(scale=self.scale, sigma=self.sigma)


@TRANSFORMS.register_module()
class DNDegradation(Degradation):
    """DN: BI, then additive white Gaussian noise.

    Args:
        scale (int): Downscaling factor. Default: 3.
        noise_level (float): Noise standard deviation on the 0-255 scale.
            Default: 30.
        seed (int, optional): Fixed seed: the noise of an image then depends
            only on ``(seed, key)`` (reproducible test sets, equal to
            ``tools/make_lr.py --seed``). None: the per-sample seed given
            to :meth:`degrade`. Default: None.
        padding (str): Bicubic padding, as in :class:`BIDegradation`.
            Default: ``'symmetric'``.
    """

    short_name = 'DN'

    def __init__(self, scale=3, noise_level=30.0, seed=None, padding='symmetric'):
        super().__init__(scale)
        if (
            isinstance(noise_level, bool)
            or not isinstance(noise_level, (int, float))
            or not (noise_level >= 0 and math.isfinite(noise_level))
        ):
            raise ValueError(
                f'DNDegradation: noise_level must be a number >= 0, got {noise_level!r}'
            )
        if seed is not None and (not is_int(seed) or seed < 0):
            raise ValueError(
                f'DNDegradation: seed must be a non-negative int or None, got {seed!r}'
            )
        self.noise_level = float(noise_level)
        self.seed = seed
        self.bicubic = BIDegradation(scale, padding)

    def _degrade(self, img, seed, key):
        lr = self.bicubic.degrade(img)
        rng = noise_generator(self.seed if self.seed is not None else seed, key)
        noise = rng.standard_normal(lr.shape)
        if lr.dtype == np.uint8:
            return _round_uint8(lr + self.noise_level * noise)
        return lr + (self.noise_level / 255.0) * noise

    def _args(self):
        return dict(
            scale=self.scale,
            noise_level=self.noise_level,
            seed=self.seed,
            padding=self.bicubic.padding,
        )


def _registered_names():
    TRANSFORMS.import_from_location()
    return sorted(TRANSFORMS.module_dict)


def build_degradation(cfg, scale=None, where='degradation'):
    """Make a degradation from a short name, a config dict or an instance.

    Args:
        cfg (str | dict | Degradation): ``'BI'``, ``'BD'``, ``'DN'``,
            ``'BD-DUF'``; a dict
            ``{type: BDDegradation, sigma: 1.6, ...}`` whose ``type`` is a
            registered transform (or a short name); or a transform object
            with a ``degrade`` method.
        scale (int, optional): The scale of the caller (a dataset); filled in
            when the config has none, and checked against it otherwise.
        where (str): How the caller names this option in errors.

    Returns:
        Degradation: The transform.

    Raises:
        ValueError: An unknown name, type or argument (named, with the valid
            ones), or a scale that differs from ``scale``.
    """
    supported = ', '.join(DEGRADATION_NAMES)
    if isinstance(cfg, str):
        if cfg not in DEGRADATION_NAMES:
            close = difflib.get_close_matches(cfg.upper(), DEGRADATION_NAMES, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ''
            raise ValueError(
                f'{where} {cfg!r} is not supported; supported: {supported} '
                f'(or a dict {{type: <registered transform>, ...}}).{hint}'
            )
        cfg = dict(type=DEGRADATION_NAMES[cfg])
    if isinstance(cfg, dict):
        cfg = dict(cfg)
        if 'type' not in cfg:
            raise ValueError(
                f"{where}: a dict needs a 'type' key naming a "
                f'degradation (e.g. BDDegradation), got {cfg}'
            )
        type_name = cfg.pop('type')
        type_name = DEGRADATION_NAMES.get(type_name, type_name)
        cls = TRANSFORMS.get(type_name) if isinstance(type_name, str) else None
        if cls is None or not hasattr(cls, 'degrade'):
            names = [n for n in _registered_names() if hasattr(TRANSFORMS.get(n), 'degrade')]
            close = difflib.get_close_matches(str(type_name), names, n=2)
            hint = (' Did you mean ' + ' or '.join(f"'{c}'" for c in close) + '?') if close else ''
            raise ValueError(
                f'{where}.type: {type_name!r} is not a registered '
                f'degradation; registered: {", ".join(names)}.'
                f'{hint}'
            )
        params = inspect.signature(cls.__init__).parameters
        allowed = [p for p in params if p != 'self']
        for key in cfg:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ''
                raise ValueError(
                    f'{where}.{key}: unknown argument of '
                    f'{type_name}; allowed: '
                    f'{", ".join(allowed)}.{hint}'
                )
        if scale is not None:
            if cfg.get('scale', scale) != scale:
                raise ValueError(
                    f'{where}.scale={cfg["scale"]!r} differs from the dataset scale {scale}'
                )
            cfg['scale'] = scale
        return cls(**cfg)
    if hasattr(cfg, 'degrade'):
        own = getattr(cfg, 'scale', None)
        if scale is not None and own is not None and own != scale:
            raise ValueError(
                f'{where}: the transform has scale {own} but the dataset scale is {scale}'
            )
        return cfg
    raise TypeError(
        f'{where} must be one of {supported}, a config dict or a '
        f'degradation transform, got {type(cfg).__name__}'
    )
