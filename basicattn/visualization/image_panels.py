"""Panels of uint8 images: nearest-neighbour enlargement and joining side by side.

Shared by the TensorBoard ``LR | SR | GT`` image
(:mod:`basicattn.visualization.comparison_image`) and the comparison figures of
:mod:`basicattn.visualization.comparison_figure`. Pure numpy, cheap to import.
"""

from typing import Sequence, Tuple

import numpy as np

__all__ = ['GAP', 'FILL', 'as_channels', 'side_by_side', 'upsample_nearest']

#: Pixels between two panels.
GAP = 4
#: Colour of the gap (and of the padding of a shorter panel).
FILL = 255


def upsample_nearest(img: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Resize ``img`` (``HW`` or ``HWC``) to ``size = (H, W)`` by nearest neighbour.

    Output pixel ``(y, x)`` is input pixel ``(y * h // H, x * w // W)``: for an
    integer scale ``s`` every input pixel becomes an ``s x s`` block.
    """
    height, width = size
    rows = np.arange(height) * img.shape[0] // height
    cols = np.arange(width) * img.shape[1] // width
    return img[rows][:, cols]


def as_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """``img`` as ``HWC`` with ``channels`` channels (a grey image is repeated)."""
    img = img[..., None] if img.ndim == 2 else img
    return np.repeat(img, channels, axis=2) if img.shape[2] != channels else img


def side_by_side(images: Sequence[np.ndarray], gap: int = GAP, fill: int = FILL) -> np.ndarray:
    """Join uint8 images left to right, ``gap`` pixels of ``fill`` between them.

    Grey images are repeated to the channels of the others; a shorter image is
    padded at the bottom with ``fill``.
    """
    channels = max(1 if img.ndim == 2 else img.shape[2] for img in images)
    height = max(img.shape[0] for img in images)
    width = sum(img.shape[1] for img in images) + gap * (len(images) - 1)
    canvas = np.full((height, width, channels), fill, dtype=np.uint8)
    x = 0
    for img in images:
        img = as_channels(img, channels)
        canvas[: img.shape[0], x : x + img.shape[1]] = img
        x += img.shape[1] + gap
    return canvas
