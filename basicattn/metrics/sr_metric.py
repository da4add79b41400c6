"""PSNR / SSIM metrics for mmengine's evaluator.

Each data sample handed to :meth:`process` is a dict with ``'pred'`` and
``'gt'`` (float tensors ``(C, H, W)`` in [0, 1]) and ``'key'`` (the image
name). Values are computed per image on the uint8-rounded images (see
:mod:`basicattn.metrics.psnr_ssim`) and averaged over the dataset. The result
key names the space and crop, e.g. ``'psnr_y_crop4'``; a ``prefix`` is
prepended by mmengine as ``'prefix/psnr_y_crop4'``.

Video: when the samples carry a ``'clip'`` name (the video test datasets
set it), the result is the mean over clips of each clip's mean over its
frames, the convention of video SR papers (BasicSR, EDVR), and the per-clip
means are kept in ``last_per_clip``. Without clips, it is the mean over
images.
"""

from collections.abc import Mapping

import numpy as np
from mmengine.evaluator import BaseMetric

from basicattn.registry import METRICS

from .psnr_ssim import calculate_psnr, calculate_ssim, metric_name

__all__ = ['PSNR', 'SSIM']


class _PerImageMetric(BaseMetric):
    """Shared logic: one value per image, the mean over the dataset.

    Args:
        crop_border (int): Pixels cropped on each side. Defaults to 0.
        test_y_channel (bool): Evaluate on the MATLAB BT.601 Y channel.
            Defaults to False.
        collect_device (str): ``'cpu'`` or ``'gpu'``, for collecting results
            across ranks. Defaults to ``'cpu'``.
        prefix (str, optional): Prepended to the key as ``prefix/``.
            Defaults to None (no prefix).
    """

    # '' (not None): no prefix by default, and no "prefix is not set" warning.
    default_prefix = ''
    kind = None  # 'psnr' or 'ssim'

    def __init__(self, crop_border=0, test_y_channel=False, collect_device='cpu', prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if (
            isinstance(crop_border, bool)
            or not isinstance(crop_border, (int, np.integer))
            or crop_border < 0
        ):
            raise ValueError(
                f'{type(self).__name__}: crop_border must be an int >= 0, got {crop_border!r}'
            )
        self.crop_border = int(crop_border)
        self.test_y_channel = bool(test_y_channel)
        self.last_per_image = []
        self.last_per_clip = {}

    @property
    def name(self):
        """str: The result key, e.g. ``'psnr_y_crop2'``."""
        return metric_name(self.kind, self.test_y_channel, self.crop_border)

    def _compute_one(self, pred, gt):
        raise NotImplementedError

    def process(self, data_batch, data_samples):
        """Compute and store the value of every image of a batch.

        Args:
            data_batch (Any): The batch from the dataloader (unused).
            data_samples (Sequence[dict]): One dict per image with ``'pred'``
                and ``'gt'`` (float tensors ``(C, H, W)`` in [0, 1]) and
                ``'key'`` (str).

        Returns:
            None: Appends ``dict(key=..., value=...)`` to ``self.results``.
        """
        for i, sample in enumerate(data_samples):
            if not isinstance(sample, Mapping):
                raise TypeError(
                    f'{type(self).__name__}.process: data sample '
                    f'#{i} must be a dict with pred/gt/key, got '
                    f'{type(sample).__name__}'
                )
            for field in ('pred', 'gt', 'key'):
                if field not in sample:
                    raise KeyError(
                        f'{type(self).__name__}.process: data '
                        f'sample #{i} has no {field!r} (keys: '
                        f'{sorted(sample)})'
                    )
            key = str(sample['key'])
            try:
                value = self._compute_one(sample['pred'], sample['gt'])
            except (TypeError, ValueError) as err:
                cls = TypeError if isinstance(err, TypeError) else ValueError
                raise cls(f'{type(self).__name__}: image {key!r}: {err}') from err
            result = dict(key=key, value=value)
            if sample.get('clip') is not None:
                result['clip'] = str(sample['clip'])
            self.results.append(result)

    def compute_metrics(self, results):
        """Average the per-image values (per clip first, for video).

        Args:
            results (list[dict]): ``dict(key, value[, clip])`` of every image,
                collected from all ranks.

        Returns:
            dict: ``{self.name: mean}``; the per-image values are kept in
            ``self.last_per_image`` as a list of ``(key, value)`` and, for
            video, the per-clip means in ``self.last_per_clip``
            (``{clip: mean}``, in order of first appearance).
        """
        self.last_per_image = [(r['key'], r['value']) for r in results]
        if not results:
            self.last_per_clip = {}
            return {self.name: float('nan')}
        if any('clip' in r for r in results):
            per_clip = {}
            for r in results:
                per_clip.setdefault(r.get('clip', ''), []).append(r['value'])
            self.last_per_clip = {c: float(np.mean(v)) for c, v in per_clip.items()}
            return {self.name: float(np.mean(list(self.last_per_clip.values())))}
        self.last_per_clip = {}
        return {self.name: float(np.mean([r['value'] for r in results]))}


@METRICS.register_module()
class PSNR(_PerImageMetric):
    """PSNR (dB) on uint8-rounded images, BasicSR / EDSR convention.

    Args:
        crop_border (int): Pixels cropped on each side (usually the scale).
            Defaults to 0.
        test_y_channel (bool): Evaluate on the MATLAB BT.601 Y channel.
            Defaults to False.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Key prefix. Defaults to None.
    """

    kind = 'psnr'

    def _compute_one(self, pred, gt):
        return calculate_psnr(
            pred, gt, crop_border=self.crop_border, test_y_channel=self.test_y_channel
        )


@METRICS.register_module()
class SSIM(_PerImageMetric):
    """SSIM on uint8-rounded images, BasicSR / EDSR convention.

    Args:
        crop_border (int): Pixels cropped on each side (usually the scale).
            Defaults to 0.
        test_y_channel (bool): Evaluate on the MATLAB BT.601 Y channel.
            Defaults to False.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Key prefix. Defaults to None.
    """

    kind = 'ssim'

    def _compute_one(self, pred, gt):
        return calculate_ssim(
            pred, gt, crop_border=self.crop_border, test_y_channel=self.test_y_channel
        )
