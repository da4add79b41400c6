"""The comparison figures of SR papers, as uint8 RGB images (numpy + OpenCV).

Three figures, all built by one layout (:func:`compose`): a *frame panel* on
the left (a whole GT frame with a mark on it and a label strip below it) and,
on its right, a grid of equally sized *tiles* (an image with a label strip
below it), ``GAP`` white pixels between everything:

* :func:`crop_comparison` (one image): the GT frame with the box drawn, and
  the box zoomed from GT, LR and every method. The LR tile is the LR image
  enlarged to the GT size by **nearest neighbour** (its pixels stay visible
  as ``scale x scale`` blocks), then cut like the others. A method's label
  is ``"<method>"`` over ``"<PSNR>/<SSIM>"`` (dB, 2 and 4 decimals), measured on the
  *whole* image (not the crop) with :mod:`basicattn.metrics.psnr_ssim`: by
  default the Y channel with ``crop_border = scale``, as the option files
  measure; ``test_y_channel=False`` measures RGB. The frame's label says
  which (``"PSNR / SSIM: Y, crop 2"``).
* :func:`clip_strip` (one video clip): the centre GT frame with the box,
  and one row of tiles per source (GT, LR, each method) with one column per
  frame; every method tile is labelled with that frame's PSNR / SSIM.
* :func:`profile_figure` (one video clip): the temporal profile of
  :func:`temporal_profile` (one pixel row of every frame stacked over time,
  the standard picture of flicker) of GT, LR and every method, one above
  the other, each time step ``row_height`` pixels tall, beside the centre
  GT frame with that row marked.

Sizes (``L = LABEL_HEIGHT``, ``g = GAP``): a crop tile is ``w * zoom`` wide
and ``h * zoom + L`` tall; a profile tile ``W`` wide and ``T * row_height +
L`` tall; the frame panel ``W`` wide and ``H + L`` tall. With ``c``
columns and ``r = ceil(n / c)`` rows of ``n`` tiles, the figure is
``W + g + c * tile_w + (c - 1) * g`` wide and ``max(H + L, r * tile_h +
(r - 1) * g)`` tall. :func:`crop_comparison` uses two rows unless
``columns`` is given. The default ``zoom`` is the largest integer for which
the rows of tiles are no taller than the frame panel, but at least 2.

Automatic box (``box=None``): a ``size x size`` window, ``size`` =
:func:`default_box_size` (a fifth of the shorter side, a multiple of the
scale), placed on multiples of the scale (so it covers whole LR pixels) and
inside the metric's crop border, where :func:`difference_map` is largest on
average: the per-pixel range (max - min) over the methods of their absolute
Y-channel error to GT, i.e. where the methods disagree most; with a single
method, its absolute error. Ties go to the top-left-most window. For a clip
the maps of all frames are averaged.

Every function returns a :class:`Figure`: the image and what was drawn
where (box, zoom, each tile's rectangle, text and metrics), so callers and
tests need no OCR.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from basicattn.errors import DataError, UserError
from basicattn.metrics.psnr_ssim import calculate_psnr, calculate_ssim
from basicattn.utils.color import rgb2ycbcr
from basicattn.visualization.image_panels import FILL, GAP, as_channels, upsample_nearest

__all__ = [
    'BOX_COLOUR',
    'LABEL_HEIGHT',
    'Figure',
    'Tile',
    'auto_box',
    'check_box',
    'clip_strip',
    'compose',
    'crop_comparison',
    'default_box_size',
    'difference_map',
    'draw_box',
    'label_strip',
    'measure',
    'metric_text',
    'profile_figure',
    'temporal_profile',
]

Box = Tuple[int, int, int, int]

#: RGB colour of the box and of the profile's row mark.
BOX_COLOUR = (255, 0, 0)
#: Height of one text line of a label strip, in pixels.
LINE_HEIGHT = 16
#: Height of a label strip (two lines).
LABEL_HEIGHT = 2 * LINE_HEIGHT
#: Largest OpenCV font scale of a label (smaller when the text is too wide).
FONT_SCALE = 0.45
_MIN_FONT_SCALE = 0.2
_MARGIN = 3


@dataclass
class Tile:
    """One labelled panel of a figure.

    Attributes:
        label: The source (``'GT'``, ``'LR'`` or a method's label).
        lines: The two lines of text written under it.
        rect: ``(x, y, w, h)`` of the image part (label excluded) in the figure.
        psnr: The PSNR (dB) in the label, or None when it has none.
        ssim: The SSIM in the label, or None.
        frame: The frame name (clip figures), or None.
    """

    label: str
    lines: Tuple[str, str]
    rect: Box
    psnr: Optional[float] = None
    ssim: Optional[float] = None
    frame: Optional[str] = None


@dataclass
class Figure:
    """A figure and what it shows.

    Attributes:
        image: uint8 ``(H, W, 3)`` RGB.
        frame_rect: ``(x, y, w, h)`` of the whole frame in the figure.
        tiles: The tiles, row by row.
        box: The zoomed box ``(x, y, w, h)`` in frame pixels (None for a profile).
        zoom: The tiles' enlargement (1 for a profile).
        row: The profile's pixel row (None otherwise).
        metric: What the numbers are, e.g. ``'PSNR / SSIM: Y, crop 2'``.
    """

    image: np.ndarray
    frame_rect: Box
    tiles: List[Tile] = field(default_factory=list)
    box: Optional[Box] = None
    zoom: int = 1
    row: Optional[int] = None
    metric: str = ''

    def tile(self, label: str, frame: Optional[str] = None) -> Tile:
        """The tile of ``label`` (and ``frame``); KeyError when there is none."""
        for tile in self.tiles:
            if tile.label == label and (frame is None or tile.frame == frame):
                return tile
        raise KeyError(f'no tile {label!r}' + (f' of frame {frame!r}' if frame else ''))


def metric_text(crop_border: int, test_y_channel: bool) -> str:
    """What the labels' numbers are, e.g. ``'PSNR / SSIM: Y, crop 2'``."""
    return f'PSNR / SSIM: {"Y" if test_y_channel else "RGB"}, crop {crop_border}'


def measure(
    sr: np.ndarray, gt: np.ndarray, crop_border: int, test_y_channel: bool = True
) -> Tuple[float, float]:
    """``(PSNR, SSIM)`` of ``sr`` against ``gt`` with :mod:`basicattn.metrics.psnr_ssim`."""

    return (
        calculate_psnr(sr, gt, crop_border=crop_border, test_y_channel=test_y_channel),
        calculate_ssim(sr, gt, crop_border=crop_border, test_y_channel=test_y_channel),
    )


def _score_text(psnr: float, ssim: float) -> str:
    return f'{psnr:.2f}/{ssim:.4f}'


def label_strip(lines: Sequence[str], width: int, height: int = LABEL_HEIGHT) -> np.ndarray:
    """A white ``(height, width, 3)`` strip with up to two lines of black text.

    Each line is written with OpenCV's Hershey simplex font at
    :data:`FONT_SCALE`, made smaller (down to 0.2) when it is wider than the
    strip; what still does not fit is cut at the right edge.
    """
    import cv2

    strip = np.full((height, width, 3), FILL, dtype=np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for i, text in enumerate(lines):
        if not text:
            continue
        (text_w, _), _ = cv2.getTextSize(text, font, FONT_SCALE, 1)
        scale = FONT_SCALE * min(1.0, (width - 2 * _MARGIN) / max(text_w, 1))
        scale = max(scale, _MIN_FONT_SCALE)
        baseline_y = (i + 1) * LINE_HEIGHT - 4
        cv2.putText(strip, text, (_MARGIN, baseline_y), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def check_box(box: Sequence[int], shape: Sequence[int], where: str = 'box') -> Box:
    """``box = (x, y, w, h)`` as ints, checked to lie inside an image of ``shape``.

    Raises:
        UserError: Not four ints, ``w`` or ``h`` below 1, or the box leaves the
            image; the message starts with ``where``.
    """
    values = tuple(box)
    if len(values) != 4 or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values
    ):
        raise UserError(f'{where}: a box is four ints x y w h, got {box!r}')
    x, y, w, h = (int(v) for v in values)
    height, width = shape[:2]
    if w < 1 or h < 1 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise UserError(
            f'{where}: box x={x} y={y} w={w} h={h} does not fit in the {width}x{height} '
            f'(WxH) image; need x, y >= 0, w, h >= 1, x + w <= {width}, y + h <= {height}'
        )
    return x, y, w, h


def default_box_size(shape: Sequence[int], scale: int = 1) -> int:
    """A fifth of the shorter side, rounded down to a multiple of ``scale`` (at least ``scale``)."""
    side = min(shape[:2]) // 5
    return max(scale, side - side % scale)


def _y(img: np.ndarray) -> np.ndarray:

    if img.ndim == 2 or img.shape[2] == 1:
        return img.reshape(img.shape[:2]).astype(np.float64)
    return rgb2ycbcr(img.astype(np.float64) / 255.0, y_only=True) * 255.0


def difference_map(gt: np.ndarray, srs: Sequence[np.ndarray]) -> np.ndarray:
    """Per-pixel range over the methods of ``|Y(sr) - Y(gt)|`` (float64 ``HW``).

    With one method it is that method's absolute Y error.
    """
    gt_y = _y(gt)
    errors = np.stack([np.abs(_y(sr) - gt_y) for sr in srs])
    if len(srs) == 1:
        return errors[0]
    return errors.max(axis=0) - errors.min(axis=0)


def auto_box(score: np.ndarray, size: int, scale: int = 1, border: int = 0) -> Box:
    """The ``size x size`` window of ``score`` with the largest mean.

    Windows start on multiples of ``scale`` and stay ``border`` pixels away
    from the edges when the image is large enough (else the border is
    ignored); ties go to the top-left-most window (row first).
    """
    height, width = score.shape
    size = min(size, height, width)
    # summed-area table: the sum of any window in O(1)
    table = np.zeros((height + 1, width + 1), dtype=np.float64)
    table[1:, 1:] = score.cumsum(0).cumsum(1)
    for margin in (border, 0):  # without room inside the border, ignore it
        first = -(-margin // scale) * scale  # the first multiple of scale >= margin
        ys = np.arange(first, height - margin - size + 1, scale)
        xs = np.arange(first, width - margin - size + 1, scale)
        if ys.size and xs.size:
            break
    y0, x0, y1, x1 = ys[:, None], xs[None, :], ys[:, None] + size, xs[None, :] + size
    sums = table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]
    i, j = np.unravel_index(int(np.argmax(sums)), sums.shape)  # first maximum: top-left
    return int(xs[j]), int(ys[i]), size, size


def draw_box(img: np.ndarray, box: Box, colour=BOX_COLOUR, thickness: int = 2) -> np.ndarray:
    """A copy of ``img`` with the outline of ``box`` drawn *inside* it.

    The outline covers the ``thickness`` outermost rows and columns of the box
    (all of it when the box is thinner than twice that).
    """
    out = as_channels(img, 3).copy()
    x, y, w, h = box
    t = max(1, min(thickness, w, h))
    out[y : y + t, x : x + w] = colour
    out[y + h - t : y + h, x : x + w] = colour
    out[y : y + h, x : x + t] = colour
    out[y : y + h, x + w - t : x + w] = colour
    return out


def _zoom(img: np.ndarray, zoom: int) -> np.ndarray:
    return as_channels(img, 3).repeat(zoom, axis=0).repeat(zoom, axis=1)


def _crop(img: np.ndarray, box: Box) -> np.ndarray:
    x, y, w, h = box
    return img[y : y + h, x : x + w]


def compose(
    frame: np.ndarray,
    frame_lines: Sequence[str],
    tiles: Sequence[Tuple[np.ndarray, Tile]],
    columns: int,
    gap: int = GAP,
) -> Figure:
    """Lay out a frame panel and a grid of tiles (see the module docstring).

    Args:
        frame: uint8 ``HWC`` frame, already marked.
        frame_lines: The two lines under the frame.
        tiles: ``(image, tile)`` pairs, all images of one size; each tile's
            ``rect`` is filled in.
        columns: Tiles per grid row.
        gap: White pixels between panels.

    Returns:
        Figure: ``image``, ``frame_rect`` and ``tiles`` set.
    """
    fh, fw = frame.shape[:2]
    th, tw = tiles[0][0].shape[:2]
    if any(img.shape[:2] != (th, tw) for img, _ in tiles):
        raise ValueError('compose: every tile image must have the same size')
    columns = max(1, min(columns, len(tiles)))
    rows = -(-len(tiles) // columns)
    cell_h = th + LABEL_HEIGHT
    grid_w = columns * tw + (columns - 1) * gap
    grid_h = rows * cell_h + (rows - 1) * gap
    canvas = np.full((max(fh + LABEL_HEIGHT, grid_h), fw + gap + grid_w, 3), FILL, np.uint8)
    canvas[:fh, :fw] = as_channels(frame, 3)
    canvas[fh : fh + LABEL_HEIGHT, :fw] = label_strip(frame_lines, fw)
    placed = []
    for i, (img, tile) in enumerate(tiles):
        x = fw + gap + (i % columns) * (tw + gap)
        y = (i // columns) * (cell_h + gap)
        canvas[y : y + th, x : x + tw] = as_channels(img, 3)
        canvas[y + th : y + cell_h, x : x + tw] = label_strip(tile.lines, tw)
        tile.rect = (x, y, tw, th)
        placed.append(tile)
    return Figure(image=canvas, frame_rect=(0, 0, fw, fh), tiles=placed)


def _check_pair(img: np.ndarray, gt: np.ndarray, what: str) -> None:
    if img.shape != gt.shape:
        raise DataError(f'{what}: shape {img.shape} differs from the GT shape {gt.shape}')


def _lr_scale(gt: np.ndarray, lr: Optional[np.ndarray], scale: Optional[int], where: str) -> int:
    """The scale: given, or GT size / LR size (checked to be one integer)."""
    if lr is None:
        if scale is None:
            raise UserError(f'{where}: give the scale when there is no LR image')
        return int(scale)
    (gh, gw), (lh, lw) = gt.shape[:2], lr.shape[:2]
    found = gh // lh if lh and gh % lh == 0 and gw % lw == 0 and gh // lh == gw // lw else None
    if found is None or (scale is not None and found != scale):
        wanted = f'scale {scale}' if scale is not None else 'one integer scale'
        raise DataError(
            f'{where}: LR size {lw}x{lh} and GT size {gw}x{gh} (WxH) do not match {wanted}'
        )
    return found


def _lr_label(scale: int) -> str:
    return f'LR x{scale} (nearest)'


def _zoom_default(frame_h: int, box_h: int, rows: int, gap: int = GAP) -> int:
    """The largest zoom for which ``rows`` rows of tiles fit beside the frame panel, at least 2."""
    room = frame_h + LABEL_HEIGHT - (rows - 1) * gap - rows * LABEL_HEIGHT
    return max(2, room // (rows * box_h))


def crop_comparison(
    gt: np.ndarray,
    lr: Optional[np.ndarray],
    srs: Mapping[str, np.ndarray],
    box: Optional[Sequence[int]] = None,
    zoom: Optional[int] = None,
    scale: Optional[int] = None,
    crop_border: Optional[int] = None,
    test_y_channel: bool = True,
    columns: Optional[int] = None,
    title: str = '',
    where: str = 'crop_comparison',
) -> Figure:
    """The GT frame with a box, and that box zoomed from GT, LR and each method.

    Args:
        gt: uint8 ``HWC`` RGB ground truth.
        lr: uint8 LR input (``H / scale x W / scale``), or None to leave it out.
        srs: ``{label: image}`` of the methods, each the shape of ``gt``.
        box: ``(x, y, w, h)`` in GT pixels; None chooses it (module docstring).
        zoom: Enlargement of the crops (nearest neighbour); None: the largest
            that keeps the rows of tiles within the frame's height, at least 2.
        scale: The SR scale; None: GT size / LR size.
        crop_border: Pixels left out of the metrics on each side; None: ``scale``.
        test_y_channel: Measure on the Y channel (else RGB).
        columns: Tiles per row; None: ``ceil(n / 2)`` (two rows).
        title: First line under the frame (e.g. the image name).
        where: Start of error messages (e.g. the image's name).

    Returns:
        Figure: tiles ``'GT'``, ``'LR'`` (when given), then the methods in order.

    Raises:
        DataError: An image's shape does not match GT (or LR the scale).
        UserError: A bad box, or no LR and no scale.
    """
    if not srs:
        raise UserError(f'{where}: give at least one method to compare')
    for label, sr in srs.items():
        _check_pair(sr, gt, f'{where}: {label}')
    scale = _lr_scale(gt, lr, scale, where)
    border = scale if crop_border is None else int(crop_border)
    if box is None:
        size = default_box_size(gt.shape, scale)
        box = auto_box(difference_map(gt, list(srs.values())), size, scale, border)
    box = check_box(box, gt.shape, f'{where}: box')
    n = len(srs) + (2 if lr is not None else 1)
    columns = columns or -(-n // 2)
    if zoom is None:
        zoom = _zoom_default(gt.shape[0], box[3], -(-n // columns))
    if isinstance(zoom, bool) or not isinstance(zoom, (int, np.integer)) or zoom < 1:
        raise UserError(f'{where}: zoom must be a positive int, got {zoom!r}')
    tiles = [(_zoom(_crop(gt, box), zoom), Tile('GT', ('GT', ''), box))]
    if lr is not None:
        lr_big = upsample_nearest(lr, gt.shape[:2])
        tiles.append((_zoom(_crop(lr_big, box), zoom), Tile('LR', (_lr_label(scale), ''), box)))
    for label, sr in srs.items():
        psnr, ssim = measure(sr, gt, border, test_y_channel)
        lines = (label, _score_text(psnr, ssim))
        tiles.append((_zoom(_crop(sr, box), zoom), Tile(label, lines, box, psnr, ssim)))
    metric = metric_text(border, test_y_channel)
    figure = compose(draw_box(gt, box), (title, metric), tiles, columns)
    figure.box, figure.zoom, figure.metric = box, int(zoom), metric
    return figure


def temporal_profile(frames: Sequence[np.ndarray], row: int) -> np.ndarray:
    """Pixel row ``row`` of every frame, stacked over time: ``(T, W[, C])``.

    Raises:
        UserError: ``row`` is outside the frames, or no frames.
        DataError: The frames differ in size.
    """
    if not len(frames):
        raise UserError('temporal_profile: no frames')
    shape = frames[0].shape
    if any(f.shape != shape for f in frames):
        raise DataError('temporal_profile: the frames differ in size')
    if isinstance(row, bool) or not isinstance(row, (int, np.integer)) or not 0 <= row < shape[0]:
        raise UserError(f'row must be an int in [0, {shape[0] - 1}] (the frame height), got {row}')
    return np.stack([f[row] for f in frames])


def _clip_inputs(
    gt_frames: Sequence[np.ndarray],
    lr_frames: Optional[Sequence[np.ndarray]],
    srs: Mapping[str, Sequence[np.ndarray]],
    names: Sequence[str],
    scale: Optional[int],
    where: str,
) -> int:
    """Check the frame counts and shapes of a clip; return the scale."""
    if not srs:
        raise UserError(f'{where}: give at least one method to compare')
    count = len(gt_frames)
    if not count or len(names) != count:
        raise UserError(f'{where}: need one name per GT frame and at least one frame')
    sources = dict(srs, **({'LR': lr_frames} if lr_frames is not None else {}))
    for label, frames in sources.items():
        if len(frames) != count:
            raise DataError(f'{where}: {label} has {len(frames)} frames, GT has {count}')
    found = scale
    for i, gt in enumerate(gt_frames):
        for label, frames in srs.items():
            _check_pair(frames[i], gt, f'{where}/{names[i]}: {label}')
        lr = lr_frames[i] if lr_frames is not None else None
        found = _lr_scale(gt, lr, found, f'{where}/{names[i]}')
    return found


def clip_strip(
    gt_frames: Sequence[np.ndarray],
    lr_frames: Optional[Sequence[np.ndarray]],
    srs: Mapping[str, Sequence[np.ndarray]],
    names: Sequence[str],
    box: Optional[Sequence[int]] = None,
    zoom: Optional[int] = None,
    scale: Optional[int] = None,
    crop_border: Optional[int] = None,
    test_y_channel: bool = True,
    title: str = '',
    where: str = 'clip_strip',
) -> Figure:
    """Per-frame strips of a clip: one row of box crops per source, one column per frame.

    The frame panel is the centre frame ``T // 2`` with the box. Rows: GT,
    LR (when given), then each method; a method's tile says the frame's name
    and that frame's PSNR / SSIM. Arguments as :func:`crop_comparison`, with
    lists of frames (``names[t]`` naming frame ``t``); the automatic box
    averages :func:`difference_map` over the frames and the default zoom
    fits all rows beside the frame.

    Returns:
        Figure: tiles row by row, each with ``frame`` set.
    """
    scale = _clip_inputs(gt_frames, lr_frames, srs, names, scale, where)
    border = scale if crop_border is None else int(crop_border)
    centre = len(gt_frames) // 2
    if box is None:
        maps = [difference_map(gt, [f[t] for f in srs.values()]) for t, gt in enumerate(gt_frames)]
        size = default_box_size(gt_frames[0].shape, scale)
        box = auto_box(np.mean(maps, axis=0), size, scale, border)
    box = check_box(box, gt_frames[0].shape, f'{where}: box')
    rows = len(srs) + (2 if lr_frames is not None else 1)
    if zoom is None:
        zoom = _zoom_default(gt_frames[0].shape[0], box[3], rows)
    if isinstance(zoom, bool) or not isinstance(zoom, (int, np.integer)) or zoom < 1:
        raise UserError(f'{where}: zoom must be a positive int, got {zoom!r}')
    tiles = []
    for t, name in enumerate(names):
        tiles.append((_zoom(_crop(gt_frames[t], box), zoom), Tile('GT', (f'GT {name}', ''), box)))
    if lr_frames is not None:
        for t, name in enumerate(names):
            big = upsample_nearest(lr_frames[t], gt_frames[t].shape[:2])
            tiles.append((_zoom(_crop(big, box), zoom), Tile('LR', (f'LR {name}', ''), box)))
    for label, frames in srs.items():
        for t, name in enumerate(names):
            psnr, ssim = measure(frames[t], gt_frames[t], border, test_y_channel)
            lines = (f'{label} {name}', _score_text(psnr, ssim))
            tiles.append((_zoom(_crop(frames[t], box), zoom), Tile(label, lines, box, psnr, ssim)))
    for i, (_, tile) in enumerate(tiles):
        tile.frame = names[i % len(names)]
    metric = metric_text(border, test_y_channel)
    lines = (f'{title} {names[centre]} (x{scale})'.strip(), metric)
    figure = compose(draw_box(gt_frames[centre], box), lines, tiles, len(names))
    figure.box, figure.zoom, figure.metric = box, int(zoom), metric
    return figure


def profile_figure(
    gt_frames: Sequence[np.ndarray],
    lr_frames: Optional[Sequence[np.ndarray]],
    srs: Mapping[str, Sequence[np.ndarray]],
    row: int,
    row_height: int = 8,
    scale: Optional[int] = None,
    title: str = '',
    where: str = 'profile_figure',
) -> Figure:
    """Temporal profiles of GT, LR and each method at pixel row ``row``, one above the other.

    Each profile (:func:`temporal_profile`; LR enlarged by nearest neighbour
    first) has every time step repeated ``row_height`` times vertically.
    The frame panel is the centre GT frame with row ``row`` drawn over it
    (one pixel, :data:`BOX_COLOUR`).

    Returns:
        Figure: tiles ``'GT'``, ``'LR'``, then the methods; ``row`` set.
    """
    names = [str(t) for t in range(len(gt_frames))]
    scale = _clip_inputs(gt_frames, lr_frames, srs, names, scale, where)
    if isinstance(row_height, bool) or not isinstance(row_height, int) or row_height < 1:
        raise UserError(f'{where}: row_height must be a positive int, got {row_height!r}')
    height, width = gt_frames[0].shape[:2]
    if isinstance(row, bool) or not isinstance(row, (int, np.integer)) or not 0 <= row < height:
        raise UserError(f'{where}: row must be an int in [0, {height - 1}], got {row!r}')
    sources: Dict[str, Sequence[np.ndarray]] = {'GT': gt_frames}
    labels = {'GT': f'GT, row {row}'}
    if lr_frames is not None:
        sources['LR'] = [upsample_nearest(f, (height, width)) for f in lr_frames]
        labels['LR'] = _lr_label(scale)
    sources.update(srs)
    tiles = []
    for label, frames in sources.items():
        profile = temporal_profile(frames, int(row)).repeat(row_height, axis=0)
        lines = (labels.get(label, label), '')
        tiles.append((profile, Tile(label, lines, (0, 0, 0, 0))))
    centre = gt_frames[len(gt_frames) // 2]
    marked = as_channels(centre, 3).copy()
    marked[row] = BOX_COLOUR
    frame_lines = (title, f'time runs down: {len(gt_frames)} frames')
    figure = compose(marked, frame_lines, tiles, columns=1)
    figure.row = int(row)
    return figure
