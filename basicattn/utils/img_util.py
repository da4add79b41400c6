"""Image io and numpy <-> tensor conversion.

Conventions: numpy images are ``HWC`` RGB uint8 (what :func:`imread`
returns); tensors are float32 ``(C, H, W)`` RGB in [0, 1].
"""

import os
import os.path as osp

import numpy as np

from basicattn.errors import DataError
from basicattn.utils.atomic_file import atomic_write_bytes
from basicattn.utils.bounds import check_positive_int
from basicattn.utils.finite import describe_values
from basicattn.utils.path_util import not_found

__all__ = [
    'imread',
    'imfrombytes',
    'imwrite',
    'imencode_png',
    'img2tensor',
    'tensor2img',
    'mod_crop',
]


_cv2_quieted = False


def _cv2():
    """OpenCV, with its own log lines off unless ``OPENCV_LOG_LEVEL`` is set.

    Every decode or encode failure raises an error naming the file here, so
    OpenCV's ``[ERROR] ... readHeader`` lines would only repeat it.
    """
    global _cv2_quieted
    import cv2

    if not _cv2_quieted:
        _cv2_quieted = True
        if 'OPENCV_LOG_LEVEL' not in os.environ:
            try:
                cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_FATAL)
            except AttributeError:  # pragma: no cover - builds without it
                pass
    return cv2


def _decode(buf, source):
    """Decode image bytes to uint8 HWC RGB; DataError naming ``source``."""
    cv2 = _cv2()
    arr = np.frombuffer(buf, dtype=np.uint8)
    img = None
    if arr.size:
        # IMREAD_COLOR: 8 bit, 3 channels (gray expanded, alpha dropped).
        img = cv2.imdecode(arr, cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(
            f'cannot decode image from {source} '
            f'({arr.size} bytes): not a supported image format '
            'or corrupted'
        )
    return np.ascontiguousarray(img[..., ::-1])


def imread(path):
    """Read an image file as RGB uint8.

    Grayscale images are expanded to 3 channels and an alpha channel is
    dropped; 16-bit images are reduced to 8 bits by OpenCV.

    Args:
        path (str | os.PathLike): Image file.

    Returns:
        np.ndarray: uint8 array ``(H, W, 3)``, RGB.

    Raises:
        FileNotFoundError: ``path`` does not exist or is not a file.
        DataError: The file cannot be decoded (a ValueError; the message
            names ``path``).
    """
    path = os.fspath(path)
    if not osp.isfile(path):
        raise FileNotFoundError(not_found('image file', path))
    with open(path, 'rb') as f:
        buf = f.read()
    return _decode(buf, path)


def imfrombytes(buf, source='<bytes>'):
    """Decode an encoded image (PNG, JPEG ...) held in memory as RGB uint8.

    Args:
        buf (bytes | bytearray | memoryview): Encoded image.
        source (str): Where the bytes came from (e.g. an LMDB key), used in
            error messages. Defaults to ``'<bytes>'``.

    Returns:
        np.ndarray: uint8 array ``(H, W, 3)``, RGB.

    Raises:
        TypeError: ``buf`` is not bytes-like.
        DataError: The bytes cannot be decoded (a ValueError; the message
            names ``source``).
    """
    if not isinstance(buf, (bytes, bytearray, memoryview)):
        raise TypeError(f'imfrombytes: expected bytes for {source}, got {type(buf).__name__}')
    return _decode(buf, source)


def _check_uint8_image(img, where):
    """Check an HW / HWC (C = 1 or 3) uint8 image; return it BGR-ordered."""
    if not isinstance(img, np.ndarray):
        raise TypeError(f'{where}: expected a numpy array, got {type(img).__name__}')
    if img.dtype != np.uint8:
        raise TypeError(
            f'{where}: expected a uint8 image, got dtype '
            f'{img.dtype} (convert with tensor2img or '
            'np.clip(...).round().astype(np.uint8))'
        )
    if img.ndim == 3 and img.shape[2] == 3:
        return np.ascontiguousarray(img[..., ::-1])  # RGB -> BGR for OpenCV
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        return img
    raise ValueError(f'{where}: expected an HW or HWC (C = 1 or 3) image, got shape {img.shape}')


def _encode(img_rgb, ext, compress_level, where):
    cv2 = _cv2()
    ext = ext.lower()
    params = []
    if compress_level is not None:
        if ext != '.png':
            raise ValueError(f'{where}: compress_level applies to PNG only, got extension {ext!r}')
        if isinstance(compress_level, bool) or compress_level not in range(10):
            raise ValueError(
                f'{where}: compress_level must be an int in [0, 9], got {compress_level!r}'
            )
        params = [cv2.IMWRITE_PNG_COMPRESSION, int(compress_level)]
    img = _check_uint8_image(img_rgb, where)
    try:
        ok, buf = cv2.imencode(ext, img, params)
    except cv2.error as err:
        raise DataError(f'{where}: cannot encode as {ext!r}: {err}') from None
    if not ok:
        raise DataError(f'{where}: cannot encode as {ext!r}')
    return buf.tobytes()


def imencode_png(img_rgb_uint8, compress_level=1):
    """Encode an RGB uint8 image as PNG bytes (e.g. for an LMDB value).

    Args:
        img_rgb_uint8 (np.ndarray): uint8 ``HWC`` RGB (or ``HW`` gray) image.
        compress_level (int): zlib level 0-9. Defaults to 1 (BasicSR's LMDB
            default: fast, files slightly larger).

    Returns:
        bytes: The PNG file content.

    Raises:
        TypeError | ValueError: Bad dtype, shape or compress level.
    """
    return _encode(img_rgb_uint8, '.png', compress_level, 'imencode_png')


def imwrite(path, img_rgb_uint8, compress_level=None):
    """Write an RGB uint8 image atomically.

    The image is encoded in memory, written to a temporary file in the
    destination folder and moved over ``path`` with :func:`os.replace`, so an
    interrupted write never leaves a truncated image behind. Parent folders
    are created.

    Args:
        path (str | os.PathLike): Destination; its extension (``.png``,
            ``.jpg`` ...) selects the format.
        img_rgb_uint8 (np.ndarray): uint8 ``HWC`` RGB (or ``HW`` gray) image.
        compress_level (int, optional): PNG zlib level 0-9; None keeps
            OpenCV's default. Defaults to None.

    Returns:
        str: ``path``.

    Raises:
        TypeError | ValueError: Bad image or compress level; DataError (a
            ValueError) for an unknown or missing extension (the message
            names ``path``).
        OSError: The file cannot be written (full disk ...); names ``path``,
            and the previous file is left intact.
    """
    path = os.fspath(path)
    ext = osp.splitext(path)[1]
    if not ext:
        raise DataError(f'imwrite: {path} has no file extension to choose the image format')
    data = _encode(img_rgb_uint8, ext, compress_level, f'imwrite({path})')
    atomic_write_bytes(data, path)
    return path


def as_hwc(img: np.ndarray, where: str) -> np.ndarray:
    """``img`` as a 3-D ``HWC`` array (an ``HW`` image gets one channel).

    Raises:
        ValueError: Not 2-D or 3-D; the message starts with ``where``.
    """
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3:
        raise ValueError(f'{where}: expected an HW or HWC image, got shape {img.shape}')
    return img


def img2tensor(img):
    """Convert an ``HWC`` (or ``HW``) image to a float32 ``(C, H, W)`` tensor.

    Args:
        img (np.ndarray): uint8 image (divided by 255) or float image assumed
            to be in [0, 1] already (not rescaled).

    Returns:
        torch.Tensor: float32 ``(C, H, W)`` tensor (``C = 1`` for ``HW``).

    Raises:
        TypeError: Not a numpy array, or neither uint8 nor float.
        ValueError: Not 2-D or 3-D.
    """
    import torch

    if not isinstance(img, np.ndarray):
        raise TypeError(f'img2tensor: expected a numpy array, got {type(img).__name__}')
    img = as_hwc(img, 'img2tensor')
    if img.dtype == np.uint8:
        arr = img.astype(np.float32) / 255.0
    elif np.issubdtype(img.dtype, np.floating):
        arr = img.astype(np.float32)
    else:
        raise TypeError(f'img2tensor: expected uint8 or float input, got dtype {img.dtype}')
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def tensor2img(t):
    """Convert a [0, 1] tensor to an ``HWC`` uint8 image.

    The tensor is detached, moved to the CPU, clamped to [0, 1], multiplied
    by 255 and rounded with :func:`torch.round` (half to even), as
    BasicSR / EDSR do before computing metrics.

    Args:
        t (torch.Tensor): Float tensor ``(C, H, W)`` or ``(1, C, H, W)``.

    Returns:
        np.ndarray: uint8 array ``(H, W, C)``.

    Raises:
        TypeError: ``t`` is not a floating-point tensor.
        ValueError: Wrong number of dimensions or a batch larger than one, or
            values that are NaN or inf (they have no 8-bit value: NaN would
            silently become black).
    """
    import torch

    if not isinstance(t, torch.Tensor) or not t.is_floating_point():
        raise TypeError(
            f'tensor2img: expected a float tensor, got {getattr(t, "dtype", type(t).__name__)}'
        )
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(
                f'tensor2img: expected (C, H, W) or '
                f'(1, C, H, W), got shape {tuple(t.shape)} '
                '(batch > 1)'
            )
        t = t[0]
    if t.dim() != 3:
        raise ValueError(
            f'tensor2img: expected (C, H, W) or (1, C, H, W), got shape {tuple(t.shape)}'
        )
    t = t.detach().to('cpu', torch.float32)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(
            f'tensor2img: the image holds {describe_values(t)}, which has no 8-bit value'
        )
    t = t.clamp(0, 1)
    img = torch.round(t * 255.0).to(torch.uint8)
    return np.ascontiguousarray(img.permute(1, 2, 0).numpy())


def mod_crop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom / right so that H and W are multiples of ``scale``.

    Args:
        img (np.ndarray): ``HW`` or ``HWC`` image.
        scale (int): The SR scale factor (>= 1).

    Returns:
        np.ndarray: A view ``img[:H - H % scale, :W - W % scale]``.

    Raises:
        ValueError: ``scale`` is not a positive int, ``img`` is not 2-D / 3-D,
            or is smaller than ``scale``.
    """
    check_positive_int(scale, 'scale', 'mod_crop')
    if not isinstance(img, np.ndarray) or img.ndim not in (2, 3):
        raise ValueError(
            f'mod_crop: expected an HW or HWC numpy image, got '
            f'{getattr(img, "shape", type(img).__name__)}'
        )
    h, w = img.shape[:2]
    if h < scale or w < scale:
        raise DataError(f'mod_crop: image of shape {img.shape} is smaller than scale {scale}')
    return img[: h - h % scale, : w - w % scale, ...]
