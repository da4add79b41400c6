"""Temporal consistency of a super-resolved clip.

Per-frame PSNR cannot see flicker: two outputs with equal PSNR may differ in
how much they change from one frame to the next where the ground truth does
not. :class:`TemporalConsistency` compares the frame-to-frame changes of the
output with those of the ground truth::

    tdiff = mean over consecutive pairs (t-1, t) of
            mean |(SR_t - SR_{t-1}) - (GT_t - GT_{t-1})|

on uint8-rounded images (0-255 scale), the Y channel (MATLAB BT.601) or
RGB, after cropping ``crop_border`` pixels; averaged per clip, then over
clips. 0 means the output changes exactly as the ground truth does; lower is
better. (It is the L1 form of the temporal-gradient error used by TecoGAN's
tOF/tLP family, without optical flow.) Samples need ``clip`` and
``frame_idx`` (the video test datasets provide them); frames may arrive in
any order and from any rank. The same report also gives ``tmad_sr`` /
``tmad_gt``, the mean absolute frame-to-frame change of the output and of the
ground truth, so that a smoothed output is visible too.
"""

from collections.abc import Mapping
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from basicattn.registry import METRICS
from basicattn.utils.color import rgb2ycbcr
from basicattn.utils.img_util import tensor2img

from .per_clip import per_clip_key

__all__ = ['TemporalConsistency']


@METRICS.register_module()
class TemporalConsistency(BaseMetric):
    """Frame-to-frame change of the output vs the ground truth (see module).

    Args:
        crop_border (int): Pixels cropped on each side. Defaults to 0.
        test_y_channel (bool): Y channel instead of RGB. Defaults to True.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Key prefix. Defaults to None.
    """

    default_prefix = ''

    def __init__(
        self,
        crop_border: int = 0,
        test_y_channel: bool = True,
        collect_device: str = 'cpu',
        prefix: Optional[str] = None,
    ):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if isinstance(crop_border, bool) or not isinstance(crop_border, int) or crop_border < 0:
            raise ValueError(
                f'TemporalConsistency: crop_border must be an int >= 0, got {crop_border!r}'
            )
        self.crop_border = crop_border
        self.test_y_channel = bool(test_y_channel)

    @property
    def name(self) -> str:
        """The result key, e.g. ``'tdiff_y_crop0'``."""
        space = 'y' if self.test_y_channel else 'rgb'
        return f'tdiff_{space}_crop{self.crop_border}'

    def _prepare(self, tensor):
        import torch

        finite = bool(torch.isfinite(tensor).all())
        img = tensor2img(tensor if finite else torch.nan_to_num(tensor)).astype(np.float32)
        if not finite:  # NaN/inf have no 8-bit value: every difference with it is NaN
            img[:] = np.nan
        if self.test_y_channel:
            img = rgb2ycbcr(img / 255.0, y_only=True).astype(np.float32) * 255.0
        c = self.crop_border
        return img[c : img.shape[0] - c, c : img.shape[1] - c] if c else img

    def process(self, data_batch: Any, data_samples: Sequence[Mapping[str, Any]]) -> None:
        """Keep each frame (uint8-rounded, cropped) by clip and frame index."""
        for i, sample in enumerate(data_samples):
            if not isinstance(sample, Mapping) or not all(
                k in sample for k in ('pred', 'gt', 'clip', 'frame_idx')
            ):
                keys = sorted(sample) if isinstance(sample, Mapping) else type(sample).__name__
                raise KeyError(
                    f'TemporalConsistency: data sample #{i} needs pred, gt, clip '
                    f'and frame_idx (a video test dataset); it has {keys}'
                )
            self.results.append(
                dict(
                    clip=str(sample['clip']),
                    frame=int(sample['frame_idx']),
                    pred=self._prepare(sample['pred']),
                    gt=self._prepare(sample['gt']),
                )
            )

    def compute_metrics(self, results: List[Dict[str, Any]]) -> Dict[str, Any]:
        """Mean over clips of the per-clip mean over consecutive pairs.

        Returns:
            ``{name: mean, 'tmad_sr': ..., 'tmad_gt': ..., '<name>/per_clip':
            {clip: mean}}``; ``{name: nan}`` when no clip has two consecutive
            frames.
        """
        clips = {}
        for r in results:
            clips.setdefault(r['clip'], {})[r['frame']] = r
        per_clip, mad_sr, mad_gt = {}, [], []
        for clip, frames in clips.items():
            order = sorted(frames)
            pairs = [(a, b) for a, b in zip(order, order[1:]) if b == a + 1]
            if not pairs:
                continue
            diffs, sr_change, gt_change = [], [], []
            for a, b in pairs:
                d_sr = frames[b]['pred'] - frames[a]['pred']
                d_gt = frames[b]['gt'] - frames[a]['gt']
                diffs.append(float(np.abs(d_sr - d_gt).mean()))
                sr_change.append(float(np.abs(d_sr).mean()))
                gt_change.append(float(np.abs(d_gt).mean()))
            per_clip[clip] = float(np.mean(diffs))
            mad_sr.append(float(np.mean(sr_change)))
            mad_gt.append(float(np.mean(gt_change)))
        if not per_clip:
            return {self.name: float('nan')}
        return {
            self.name: float(np.mean(list(per_clip.values()))),
            'tmad_sr': float(np.mean(mad_sr)),
            'tmad_gt': float(np.mean(mad_gt)),
            per_clip_key(self.name): per_clip,
        }
