"""Crops, flips and temporal reversal applied alike to every frame of a sample.

Built on :func:`paired_random_crop` and :func:`augment`, which already apply
one draw to a whole list of images; this module fixes the order of the draws
for video samples and adds the deterministic test-time crop and the stacking
into ``(T, C, H, W)`` tensors.
"""

from typing import List, Optional, Tuple

import numpy as np
import torch

from basicattn.errors import DataError
from basicattn.utils.img_util import img2tensor

from .transforms import augment, paired_random_crop

__all__ = ['center_crop_frames', 'random_crop_augment_frames', 'stack_frames']


def random_crop_augment_frames(
    gts: List[np.ndarray],
    lqs: List[np.ndarray],
    scale: int,
    gt_size: Optional[int],
    use_hflip: bool,
    use_rot: bool,
    random_reverse: bool,
    rng: np.random.Generator,
    where: str = '',
) -> Tuple[list, list, bool]:
    """One random crop, one dihedral transform and maybe a time reversal.

    The draws from ``rng`` come in a fixed order: crop position (2 draws,
    only with ``gt_size``), flips (3 draws, only with ``use_hflip`` or
    ``use_rot``), reversal (1 draw, only with ``random_reverse``).

    Args:
        gts (list[np.ndarray]): GT frames (all of them, or only the centre).
        lqs (list[np.ndarray]): LQ frames of the window, each of size GT /
            ``scale``.
        scale (int): Upscaling factor.
        gt_size (int, optional): GT patch side; None keeps whole frames.
        use_hflip (bool): Random horizontal flip.
        use_rot (bool): Random vertical flip and transpose.
        random_reverse (bool): Reverse the frame order with probability 1/2
            (the centre frame stays the centre).
        rng (np.random.Generator): Source of randomness.
        where (str): Path named in errors.

    Returns:
        tuple[list, list, bool]: GT frames, LQ frames, whether reversed.
    """
    if gt_size is not None:
        gts, lqs = paired_random_crop(gts, lqs, gt_size, scale, rng, where)
    if use_hflip or use_rot:
        out = augment(list(gts) + list(lqs), hflip=use_hflip, rotation=use_rot, rng=rng)
        gts, lqs = out[: len(gts)], out[len(gts) :]
    reversed_ = bool(random_reverse and rng.random() < 0.5)
    if reversed_:
        gts, lqs = gts[::-1], lqs[::-1]
    return list(gts), list(lqs), reversed_


def center_crop_frames(
    gts: List[np.ndarray], lqs: List[np.ndarray], scale: int, gt_size: int, where: str = ''
) -> Tuple[list, list]:
    """Crop the centre ``gt_size`` GT patch and its LQ patch of every frame.

    The LQ patch starts at ``((h - p) // 2, (w - p) // 2)`` with ``p =
    gt_size // scale``; the GT patch at ``scale`` times that.

    Args:
        gts (list[np.ndarray]): GT frames.
        lqs (list[np.ndarray]): LQ frames.
        scale (int): Upscaling factor.
        gt_size (int): GT patch side, a multiple of ``scale``.
        where (str): Path named in errors.

    Returns:
        tuple[list, list]: The cropped GT and LQ frames.
    """
    p = gt_size // scale
    h, w = lqs[0].shape[:2]
    if h < p or w < p:
        raise DataError(
            f'LQ frame {h}x{w} is smaller than the LQ patch '
            f'{p}x{p} (gt_size {gt_size}, scale {scale}) '
            f'({where})'
        )
    top, left = (h - p) // 2, (w - p) // 2
    lqs = [np.ascontiguousarray(x[top : top + p, left : left + p]) for x in lqs]
    t, l_ = top * scale, left * scale
    gts = [np.ascontiguousarray(x[t : t + gt_size, l_ : l_ + gt_size]) for x in gts]
    return gts, lqs


def stack_frames(frames: List[np.ndarray], where: str = '') -> torch.Tensor:
    """Frames ``(H, W, C)`` -> float32 tensor ``(T, C, H, W)`` in [0, 1].

    Raises:
        ValueError: Frames of different shapes (names ``where``).
    """
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise DataError(
            f'frames of different shapes {sorted(shapes)} in '
            f'{where}; all frames of a clip must share a size'
        )
    return torch.stack([img2tensor(f) for f in frames])
