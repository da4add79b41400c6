"""Read (and write) YUV4MPEG2 (``.y4m``) videos frame by frame, as RGB.

The format (mjpegtools' YUV4MPEG2, what FFmpeg writes with ``-f yuv4mpegpipe``
and what the Youku-VESR challenge distributes): one text header line
``YUV4MPEG2 W<w> H<h> F<n>:<d> [I<i>] [A<a>:<b>] [C<cs>] [X<...>]``, then per
frame a line ``FRAME[ <params>]`` followed by the raw planes Y, U (Cb), V (Cr)
(8 bits per sample, row by row). Frames are read one at a time
(:meth:`Y4MReader.frames`, :meth:`Y4MReader.read`): a video is never loaded
whole.

Colour spaces (``C`` tag; none means ``420jpeg``, as mjpegtools and FFmpeg):

* ``420jpeg``, ``420``: 4:2:0, chroma centred between the 2x2 luma samples
  it covers (JPEG/MPEG-1 siting);
* ``420mpeg2``: 4:2:0, chroma co-sited with the left luma column, centred
  vertically (MPEG-2 siting);
* ``420paldv``: 4:2:0, chroma co-sited with the top-left luma sample (how
  FFmpeg reads and writes this tag; PAL DV's true siting alternates Cb and Cr
  lines, which no current encoder produces);
* ``422``: 4:2:2, co-sited with the left column; ``444``: full resolution;
  ``mono``: luma only (grey RGB).

Chroma is upsampled to the luma grid by separable linear interpolation at
those positions (edge samples repeated): the same plane data give slightly
different RGB per siting, which is why the tag is honoured. Higher bit
depths (``420p10`` ...) and interlaced frames are refused with a
:class:`~basicattn.errors.DataError` (the Youku videos are 8-bit
progressive).

RGB conversion: ITU-R BT.601, **limited range** by default (Y in [16, 235],
Cb/Cr in [16, 240]), the convention of 8-bit SD/untagged YUV that FFmpeg
applies when it turns these videos into PNG frames, which is how Youku-VESR
frames are usually extracted; ``full_range=True`` reads JPEG-range files
(Y, Cb, Cr in [0, 255]). The y4m header does not record the range, so it is
the reader's choice; RGB is rounded to uint8 after clipping.
"""

import os
from dataclasses import dataclass
from typing import BinaryIO, Iterator, List, Optional, Tuple

import numpy as np

from basicattn.errors import DataError
from basicattn.utils.atomic_file import atomic_open

__all__ = [
    'Y4MHeader',
    'Y4MReader',
    'CHROMA_SITING',
    'rgb_to_yuv',
    'yuv_to_rgb',
    'write_y4m',
]

MAGIC = b'YUV4MPEG2'
FRAME = b'FRAME'

#: Chroma sample position of each colour space, in luma pixels from the
#: first luma sample: ``(subsample_x, subsample_y, offset_x, offset_y)``.
CHROMA_SITING = {
    '420jpeg': (2, 2, 0.5, 0.5),
    '420': (2, 2, 0.5, 0.5),
    '420mpeg2': (2, 2, 0.0, 0.5),
    '420paldv': (2, 2, 0.0, 0.0),
    '422': (2, 1, 0.0, 0.0),
    '444': (1, 1, 0.0, 0.0),
    'mono': (1, 1, 0.0, 0.0),
}

# BT.601 luma weights; chroma scales so that Cb, Cr span [-0.5, 0.5].
_KR, _KB = 0.299, 0.114
_KG = 1.0 - _KR - _KB


@dataclass(frozen=True)
class Y4MHeader:
    """The stream header of a y4m file."""

    width: int
    height: int
    fps: Tuple[int, int]
    colorspace: str
    interlace: str = 'p'

    @property
    def plane_shapes(self) -> List[Tuple[int, int]]:
        """``(h, w)`` of each stored plane (one for ``mono``)."""
        sx, sy = CHROMA_SITING[self.colorspace][:2]
        luma = (self.height, self.width)
        if self.colorspace == 'mono':
            return [luma]
        chroma = (-(-self.height // sy), -(-self.width // sx))
        return [luma, chroma, chroma]

    @property
    def frame_bytes(self) -> int:
        """Bytes of the planes of one frame."""
        return sum(h * w for h, w in self.plane_shapes)


def parse_header(line: bytes, path: str = '<y4m>') -> Y4MHeader:
    """Parse the first line of a y4m file (without its newline).

    Raises:
        DataError: Not a y4m header, a missing size, an unsupported colour
            space or interlacing (the message names ``path``).
    """
    tokens = line.split(b' ')
    if tokens[0] != MAGIC:
        raise DataError(f'{path}: not a YUV4MPEG2 file (the first line starts with {line[:12]!r})')
    fields = {}
    for token in tokens[1:]:
        if token:
            fields.setdefault(chr(token[0]), token[1:].decode('ascii', 'replace'))
    try:
        width, height = int(fields['W']), int(fields['H'])
    except (KeyError, ValueError):
        raise DataError(f'{path}: the y4m header has no valid W/H size: {line[:80]!r}') from None
    if width <= 0 or height <= 0:
        raise DataError(f'{path}: y4m frame size {width}x{height} is not positive')
    num, _, den = fields.get('F', '0:0').partition(':')
    fps = (int(num), int(den)) if num.isdigit() and den.isdigit() else (0, 0)
    colorspace = fields.get('C', '420jpeg')
    if colorspace not in CHROMA_SITING:
        raise DataError(
            f'{path}: y4m colour space C{colorspace} is not supported (8-bit '
            f'{", ".join("C" + c for c in CHROMA_SITING)}); convert it with '
            'ffmpeg -i IN -pix_fmt yuv420p OUT.y4m'
        )
    interlace = fields.get('I', 'p')
    if interlace not in ('p', '?'):
        raise DataError(
            f'{path}: interlaced y4m (I{interlace}) is not supported; deinterlace it first'
        )
    return Y4MHeader(width, height, fps, colorspace, interlace)


def upsample_chroma(plane: np.ndarray, shape: Tuple[int, int], colorspace: str) -> np.ndarray:
    """Chroma plane -> the luma grid ``shape`` by linear interpolation at its siting.

    Args:
        plane (np.ndarray): (hc, wc) float chroma.
        shape (tuple[int, int]): Luma ``(h, w)``.
        colorspace (str): A key of :data:`CHROMA_SITING`.

    Returns:
        np.ndarray: (h, w) float.
    """
    sx, sy, ox, oy = CHROMA_SITING[colorspace]
    out = plane
    for axis, (step, offset, size) in enumerate(((sy, oy, shape[0]), (sx, ox, shape[1]))):
        if step == 1:
            continue
        # luma pixel i sits at chroma coordinate (i - offset) / step
        pos = np.clip((np.arange(size) - offset) / step, 0, out.shape[axis] - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, out.shape[axis] - 1)
        frac = (pos - lo).astype(np.float32)
        a, b = np.take(out, lo, axis=axis), np.take(out, hi, axis=axis)
        frac = frac[:, None] if axis == 0 else frac[None, :]
        out = a + (b - a) * frac
    return out


def yuv_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, full_range: bool = False):
    """BT.601 Y'CbCr (uint8 planes of the same size) -> RGB uint8 (H, W, 3).

    Args:
        y, cb, cr (np.ndarray): (H, W) arrays, 0-255 scale.
        full_range (bool): JPEG range; False: limited (16-235 / 16-240).

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB, rounded after clipping.
    """
    y = y.astype(np.float32)
    if full_range:
        yn, cbn, crn = y / 255.0, (cb - 128.0) / 255.0, (cr - 128.0) / 255.0
    else:
        yn, cbn, crn = (y - 16.0) / 219.0, (cb - 128.0) / 224.0, (cr - 128.0) / 224.0
    r = yn + 2 * (1 - _KR) * crn
    b = yn + 2 * (1 - _KB) * cbn
    g = (yn - _KR * r - _KB * b) / _KG
    rgb = np.stack([r, g, b], axis=-1) * 255.0
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def rgb_to_yuv(rgb: np.ndarray, full_range: bool = False):
    """RGB (H, W, 3) uint8 -> BT.601 float ``(Y, Cb, Cr)`` planes, 0-255 scale.

    The inverse of :func:`yuv_to_rgb` before rounding.
    """
    rgb = rgb.astype(np.float32) / 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    yn = _KR * r + _KG * g + _KB * b
    cbn = (b - yn) / (2 * (1 - _KB))
    crn = (r - yn) / (2 * (1 - _KR))
    if full_range:
        return yn * 255.0, cbn * 255.0 + 128.0, crn * 255.0 + 128.0
    return yn * 219.0 + 16.0, cbn * 224.0 + 128.0, crn * 224.0 + 128.0


class Y4MReader:
    """Frames of a y4m file as RGB uint8 arrays, read one at a time.

    The frame offsets are found once by walking the ``FRAME`` lines (skipping
    the planes), so :meth:`read` can seek to any frame; :meth:`frames`
    streams them in order. Use as a context manager, or call :meth:`close`.

    Args:
        path (str | os.PathLike): The ``.y4m`` file.
        full_range (bool): See :func:`yuv_to_rgb`. Default: False (limited).

    Raises:
        DataError: Missing file, bad header, a truncated last frame or a
            malformed frame marker (naming the file and the frame).
    """

    def __init__(self, path, full_range: bool = False):
        self.path = os.fspath(path)
        self.full_range = full_range
        try:
            self._file: BinaryIO = open(self.path, 'rb')
        except OSError as err:
            raise DataError(f'{self.path}: cannot open the y4m file ({err.strerror})') from None
        try:
            line = self._file.readline(4096)
            if not line.endswith(b'\n'):
                raise DataError(f'{self.path}: not a YUV4MPEG2 file (no header line)')
            self.header = parse_header(line.rstrip(b'\n'), self.path)
            self._offsets = self._index()
        except BaseException:
            self._file.close()
            raise

    def _index(self) -> List[int]:
        """The byte offset of the planes of every frame."""
        offsets, size = [], os.fstat(self._file.fileno()).st_size
        step = self.header.frame_bytes
        while True:
            start = self._file.tell()
            line = self._file.readline(1024)
            if not line:
                return offsets
            if not line.startswith(FRAME) or not line.endswith(b'\n'):
                raise DataError(
                    f'{self.path}: frame {len(offsets)}: expected a FRAME line at byte {start}, '
                    f'got {line[:16]!r} (truncated or not 8-bit {self.header.colorspace})'
                )
            planes = self._file.tell()
            if planes + step > size:
                raise DataError(
                    f'{self.path}: frame {len(offsets)} is truncated '
                    f'({size - planes} of {step} bytes); the file is incomplete'
                )
            offsets.append(planes)
            self._file.seek(planes + step)

    def __len__(self) -> int:
        return len(self._offsets)

    @property
    def size(self) -> Tuple[int, int]:
        """``(height, width)`` of the frames."""
        return self.header.height, self.header.width

    def read_planes(self, index: int) -> List[np.ndarray]:
        """The stored uint8 planes of frame ``index`` (Y, or Y, Cb, Cr)."""
        if not 0 <= index < len(self):
            raise IndexError(f'{self.path}: frame {index} out of range (0-{len(self) - 1})')
        self._file.seek(self._offsets[index])
        data = self._file.read(self.header.frame_bytes)
        planes, pos = [], 0
        for h, w in self.header.plane_shapes:
            planes.append(np.frombuffer(data, np.uint8, h * w, pos).reshape(h, w))
            pos += h * w
        return planes

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` as RGB uint8 (H, W, 3)."""
        planes = self.read_planes(index)
        cs = self.header.colorspace
        if cs == 'mono':
            y = planes[0].astype(np.float32)
            neutral = np.full_like(y, 128.0)
            return yuv_to_rgb(y, neutral, neutral, self.full_range)
        y, cb, cr = planes
        shape = y.shape
        cb = upsample_chroma(cb.astype(np.float32), shape, cs)
        cr = upsample_chroma(cr.astype(np.float32), shape, cs)
        return yuv_to_rgb(y, cb, cr, self.full_range)

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame in order, RGB uint8, one in memory at a time."""
        for index in range(len(self)):
            yield self.read(index)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> 'Y4MReader':
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _subsample(plane: np.ndarray, colorspace: str) -> np.ndarray:
    """Box-average chroma to the stored size (centred 2x2 for 420jpeg; test helper quality)."""
    sx, sy = CHROMA_SITING[colorspace][:2]
    h, w = plane.shape
    ph, pw = -(-h // sy) * sy, -(-w // sx) * sx
    padded = np.pad(plane, ((0, ph - h), (0, pw - w)), mode='edge')
    return padded.reshape(ph // sy, sy, pw // sx, sx).mean(axis=(1, 3))


def write_y4m(
    path,
    frames,
    colorspace: str = '420jpeg',
    fps: Tuple[int, int] = (25, 1),
    full_range: bool = False,
    extra: Optional[str] = None,
) -> str:
    """Write RGB uint8 frames (H, W, 3) as an 8-bit y4m file, atomically.

    BT.601 as :func:`rgb_to_yuv`; chroma is box-averaged over each 2x2 (or
    2x1) cell, which is the exact inverse only for chroma that is constant
    over the cells (the tests use such frames). Used to make test videos.

    Args:
        path (str | os.PathLike): Output file.
        frames (Iterable[np.ndarray]): Same-size RGB frames.
        colorspace (str): A key of :data:`CHROMA_SITING`. Default: ``420jpeg``.
        fps (tuple[int, int]): Frame rate. Default: 25:1.
        full_range (bool): See :func:`yuv_to_rgb`. Default: False.
        extra (str, optional): More header tokens (e.g. ``'XYSCSS=420JPEG'``).

    Returns:
        str: ``path``.
    """

    if colorspace not in CHROMA_SITING:
        raise ValueError(f'colorspace must be one of {sorted(CHROMA_SITING)}, got {colorspace!r}')
    path = os.fspath(path)
    with atomic_open(path) as f:
        header = None
        for rgb in frames:
            h, w = rgb.shape[:2]
            if header is None:
                header = f'YUV4MPEG2 W{w} H{h} F{fps[0]}:{fps[1]} Ip A1:1 C{colorspace}'
                f.write((header + (f' {extra}' if extra else '') + '\n').encode('ascii'))
            y, cb, cr = rgb_to_yuv(rgb, full_range)
            planes = (
                [y]
                if colorspace == 'mono'
                else [y, _subsample(cb, colorspace), _subsample(cr, colorspace)]
            )
            f.write(FRAME + b'\n')
            for plane in planes:
                f.write(np.clip(np.rint(plane), 0, 255).astype(np.uint8).tobytes())
    return path
