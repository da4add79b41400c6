"""LR | SR | GT side by side: the image the visualization hook sends to TensorBoard.

The LR input is enlarged to the output's size by nearest neighbour, so its
pixels stay visible as blocks, and the panels are joined left to right with a
small white gap.
"""

from typing import Any, Mapping, Optional

import numpy as np

from basicattn.utils.img_util import tensor2img
from basicattn.visualization.image_panels import FILL, GAP, side_by_side, upsample_nearest

__all__ = ['FILL', 'GAP', 'comparison_image', 'side_by_side', 'upsample_nearest']


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
