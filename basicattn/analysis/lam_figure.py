"""The LAM figures, drawn with numpy and OpenCV (no matplotlib).

* :func:`image_figure`, in the layout of A2N's Fig. 8 (Chen et al.,
  "Attention in Attention Network for Image Super-Resolution", 2021): the
  SR output with the attributed window boxed (red), the attribution map
  over the LR image (enlarged to the SR size by nearest neighbour), and the
  two blended half and half.
* :func:`clip_figure`: the SR output frame with its window, and one column
  per input frame: the LR frame, its map and the blend, labelled with the
  frame's share of the attribution and its DI.

The maps are coloured with OpenCV's ``COLORMAP_JET`` (0 blue, 1 red) on the
scale of the map as given (divided by its maximum; for a clip, the common
maximum of all frames, so the columns compare).
"""

from typing import Optional, Sequence

import numpy as np

from basicattn.visualization.comparison_figure import Figure, Tile, compose, draw_box
from basicattn.visualization.image_panels import upsample_nearest

__all__ = ['blend', 'colour_map', 'clip_figure', 'image_figure']

#: Weight of the coloured map in the blend (the LAM authors' alpha).
BLEND_ALPHA = 0.5
#: Largest side of a clip figure's tiles is about this many pixels.
CLIP_TILE_SIDE = 256


def colour_map(lam_map: np.ndarray) -> np.ndarray:
    """A map in [0, 1] ``(h, w)`` as an RGB uint8 image (``COLORMAP_JET``)."""
    import cv2

    grey = np.clip(np.round(lam_map * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(cv2.applyColorMap(grey, cv2.COLORMAP_JET)[..., ::-1])


def blend(image: np.ndarray, coloured: np.ndarray, alpha: float = BLEND_ALPHA) -> np.ndarray:
    """``alpha * coloured + (1 - alpha) * image``, both uint8 RGB of one size."""
    mixed = alpha * coloured.astype(np.float64) + (1.0 - alpha) * image.astype(np.float64)
    return np.clip(np.round(mixed), 0, 255).astype(np.uint8)


def _box(window) -> tuple:
    return (window.col, window.row, window.size, window.size)


def image_figure(
    lr: np.ndarray, sr: np.ndarray, lam_map: np.ndarray, window, di: float, title: str = ''
) -> Figure:
    """SR output with the window, the map over the LR image, and the blend.

    Args:
        lr: uint8 RGB LR image ``(h, w, 3)``.
        sr: uint8 RGB SR output ``(H, W, 3)``.
        lam_map: The map ``(h, w)`` in [0, 1].
        window: :class:`~basicattn.analysis.lam_run.Window` in SR pixels.
        di: Its Diffusion Index (shown).
        title: First line under the SR output (the image's name).

    Returns:
        Figure: tiles ``'LAM'`` and ``'blend'``.
    """
    size = sr.shape[:2]
    coloured = upsample_nearest(colour_map(lam_map), size)
    mixed = blend(upsample_nearest(lr, size), coloured)
    tiles = [
        (coloured, Tile('LAM', ('LAM map (on LR pixels)', f'DI {di:.2f}'), (0, 0, 0, 0))),
        (mixed, Tile('blend', ('LAM over the LR image', f'alpha {BLEND_ALPHA}'), (0, 0, 0, 0))),
    ]
    lines = (title, f'window {window.size}x{window.size} at row {window.row} col {window.col}')
    figure = compose(draw_box(sr, _box(window)), lines, tiles, columns=2)
    figure.box = _box(window)
    return figure


def clip_figure(
    frames: Sequence[np.ndarray],
    sr: np.ndarray,
    lam_maps: np.ndarray,
    summary: Sequence[dict],
    window,
    output_frame: int,
    names: Optional[Sequence[str]] = None,
    title: str = '',
) -> Figure:
    """The SR frame with its window, and per input frame: LR, map, blend (three rows).

    Args:
        frames: uint8 RGB LR frames ``(h, w, 3)``.
        sr: uint8 RGB SR output of frame ``output_frame``.
        lam_maps: ``(L, h, w)`` on their common scale.
        summary: Per frame ``share`` and ``diffusion_index`` (None allowed).
        window: The window, in SR pixels.
        output_frame: Index of the attributed output frame.
        names: Frame names (default: their indices).
        title: First line under the SR frame.

    Returns:
        Figure: tiles ``'LR'``, ``'LAM'``, ``'blend'`` for each frame (``frame`` = its name).
    """
    names = [str(i) for i in range(len(frames))] if names is None else list(names)
    h, w = frames[0].shape[:2]
    zoom = max(1, CLIP_TILE_SIDE // max(h, w))
    size = (h * zoom, w * zoom)
    rows = {'LR': [], 'LAM': [], 'blend': []}
    for i, (frame, lam_map, info) in enumerate(zip(frames, lam_maps, summary)):
        big = upsample_nearest(frame, size)
        coloured = upsample_nearest(colour_map(lam_map), size)
        di = info['diffusion_index']
        stats = f'share {100 * info["share"]:.1f}%  DI ' + ('-' if di is None else f'{di:.2f}')
        marker = ' (output)' if i == output_frame else ''
        tiles = {
            'LR': (big, (f'frame {names[i]}{marker}', '')),
            'LAM': (coloured, ('LAM', stats)),
            'blend': (blend(big, coloured), ('LAM over the frame', '')),
        }
        for row, (image, lines) in tiles.items():
            rows[row].append((image, Tile(row, lines, (0, 0, 0, 0), frame=names[i])))
    lines = (
        title or f'output frame {names[output_frame]}',
        f'window {window.size}x{window.size} at row {window.row} col {window.col}',
    )
    tiles = rows['LR'] + rows['LAM'] + rows['blend']
    figure = compose(draw_box(sr, _box(window)), lines, tiles, columns=len(frames))
    figure.box, figure.zoom = _box(window), zoom
    return figure
