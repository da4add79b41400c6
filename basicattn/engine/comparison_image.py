"""LR | SR | GT side by side: the image the visualization hook sends to TensorBoard.

The LR input is enlarged to the output's size by nearest neighbour, so its
pixels stay visible as blocks, and the panels are joined left to right with a
small white gap.
"""

from typing import Any, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = ['GAP', 'comparison_image', 'side_by_side', 'upsample_nearest']

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


def _as_hwc(img: np.ndarray, channels: int) -> np.ndarray:
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
        img = _as_hwc(img, channels)
        canvas[: img.shape[0], x : x + img.shape[1]] = img
        x += img.shape[1] + gap
    return canvas


def comparison_image(
    sample: Mapping[str, Any], sr: Optional[np.ndarray] = None, gap: int = GAP
) -> np.ndarray:
    """``LR | SR | GT`` of one result dict of ``val_step`` (uint8 ``HWC``).

    Args:
        sample: ``'pred'`` (C, H, W) and, when present, ``'lq'`` (C, h, w), or
            (T, C, h, w) for a video window, whose centre frame ``T // 2`` (the
            frame the output is) is shown, and ``'gt'`` (C, H, W). A missing
            panel is left out.
        sr: ``tensor2img(sample['pred'])`` when the caller has it already.
        gap: Pixels between panels.
    """
    from basicattn.utils.img_util import tensor2img

    sr = tensor2img(sample['pred']) if sr is None else sr
    panels = [sr]
    lq = sample.get('lq')
    if lq is not None:
        if lq.dim() == 4:
            lq = lq[lq.shape[0] // 2]
        panels.insert(0, upsample_nearest(tensor2img(lq), sr.shape[:2]))
    if sample.get('gt') is not None:
        panels.append(tensor2img(sample['gt']))
    return side_by_side(panels, gap)
