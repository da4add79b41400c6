"""PSNR / SSIM metrics for mmengine's evaluator.

Each data sample handed to :meth:`process` is a dict with ``'pred'`` and
``'gt'`` (float tensors ``(C, H, W)`` in [0, 1]) and ``'key'`` (the image
name). Values are computed per image on the uint8-rounded images (see
:mod:`basicattn.metrics.psnr_ssim`) and averaged over the dataset. An output
with NaN or inf values scores NaN (it has no 8-bit image), so the mean is NaN
too and never ranks a checkpoint best. The result
key names the space and crop, e.g. ``'psnr_y_crop4'``; a ``prefix`` is
prepended by mmengine as ``'prefix/psnr_y_crop4'``.

Video: when the samples carry a ``'clip'`` name (the video test datasets
set it), the result is the mean over clips of each clip's mean over its
frames, the convention of video SR papers (BasicSR, EDVR), and the per-clip
means are returned too, under ``'<name>/per_clip'``. Without clips, it is
the mean over images. Either way the value of every image (frame) is returned
under ``'<name>/per_image'`` (see :mod:`basicattn.metrics.per_clip`).
"""

from collections.abc import Mapping
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from basicattn.registry import METRICS
from basicattn.utils.finite import is_finite

from .per_clip import per_clip_key, per_image_key, per_image_values
from .psnr_ssim import calculate_psnr, calculate_ssim, metric_name

__all__ = ['PSNR', 'SSIM']


def _finite(image: Any) -> bool:
    """False when a float tensor or array holds NaN or inf."""
    if isinstance(image, np.ndarray):
        return not np.issubdtype(image.dtype, np.floating) or bool(np.isfinite(image).all())

    return is_finite(image) if hasattr(image, 'is_floating_point') else True


class _PerImageMetric(BaseMetric):
    """Shared logic: one value per image, the mean over the dataset.

    Args:
        crop_border (int): Pixels cropped on each side (usually the scale).
            Defaults to 0.
        test_y_channel (bool): Evaluate on the MATLAB BT.601 Y channel.
            Defaults to False.
        collect_device (str): ``'cpu'`` or ``'gpu'``, for collecting results
            across ranks. Defaults to ``'cpu'``.
        prefix (str, optional): Prepended to the key as ``prefix/``.
            Defaults to None (no prefix).
    """

    # '' (not None): no prefix by default, and no "prefix is not set" warning.
    default_prefix = ''
    kind: Optional[str] = None  # 'psnr' or 'ssim'
    #: ``function(pred, gt, crop_border=..., test_y_channel=...) -> float``
    function: Optional[Callable[..., float]] = None

    def __init__(
        self,
        crop_border: int = 0,
        test_y_channel: bool = False,
        collect_device: str = 'cpu',
        prefix: Optional[str] = None,
    ):
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

    @property
    def name(self) -> str:
        """The result key, e.g. ``'psnr_y_crop2'``."""
        return metric_name(self.kind, self.test_y_channel, self.crop_border)

    def _compute_one(self, pred: Any, gt: Any) -> float:
        return type(self).function(
            pred, gt, crop_border=self.crop_border, test_y_channel=self.test_y_channel
        )

    def process(self, data_batch: Any, data_samples: Sequence[Mapping[str, Any]]) -> None:
        """Compute and store the value of every image of a batch.

        Args:
            data_batch: The batch from the dataloader (unused).
            data_samples: One dict per image with ``'pred'`` and ``'gt'``
                (float tensors ``(C, H, W)`` in [0, 1]), ``'key'`` (str) and,
                for video, ``'clip'``.

        Returns:
            None: Appends ``dict(key=..., value=...[, clip=...])`` to ``self.results``.
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
            if not _finite(sample['pred']):
                # NaN/inf have no 8-bit value (they used to round to black and
                # score a finite PSNR); the image's value is NaN, and so the mean
                self.results.append(dict(key=key, value=float('nan')))
                if sample.get('clip') is not None:
                    self.results[-1]['clip'] = str(sample['clip'])
                continue
            try:
                value = self._compute_one(sample['pred'], sample['gt'])
            except (TypeError, ValueError) as err:
                cls = TypeError if isinstance(err, TypeError) else ValueError
                raise cls(f'{type(self).__name__}: image {key!r}: {err}') from err
            result = dict(key=key, value=value)
            if sample.get('clip') is not None:
                result['clip'] = str(sample['clip'])
            self.results.append(result)

    def compute_metrics(self, results: List[Dict[str, Any]]) -> Dict[str, Any]:
        """Average the per-image values (per clip first, for video).

        Args:
            results: ``dict(key, value[, clip])`` of every image, collected
                from all ranks.

        Returns:
            ``{self.name: mean, '<name>/per_image': {key: value}}``; for video
            also ``'<name>/per_clip': {clip: mean}`` (tables in order of first
            appearance, see :mod:`basicattn.metrics.per_clip`).
        """
        if not results:
            return {self.name: float('nan')}
        per_image = per_image_values((r['key'], r['value']) for r in results)
        if not any('clip' in r for r in results):
            mean = float(np.mean([r['value'] for r in results]))
            return {self.name: mean, per_image_key(self.name): per_image}
        values: Dict[str, List[float]] = {}
        for r in results:
            values.setdefault(r.get('clip', ''), []).append(r['value'])
        per_clip = {clip: float(np.mean(v)) for clip, v in values.items()}
        return {
            self.name: float(np.mean(list(per_clip.values()))),
            per_clip_key(self.name): per_clip,
            per_image_key(self.name): per_image,
        }


@METRICS.register_module()
class PSNR(_PerImageMetric):
    """PSNR (dB) on uint8-rounded images, BasicSR / EDSR convention.

    Arguments: those of :class:`_PerImageMetric` (``crop_border``,
    ``test_y_channel``, ``collect_device``, ``prefix``); the value is
    :func:`~basicattn.metrics.psnr_ssim.calculate_psnr`.
    """

    kind = 'psnr'
    function = staticmethod(calculate_psnr)


@METRICS.register_module()
class SSIM(_PerImageMetric):
    """SSIM (Wang et al. 2004) on uint8-rounded images, BasicSR / EDSR convention.

    Arguments: those of :class:`_PerImageMetric`; the value is
    :func:`~basicattn.metrics.psnr_ssim.calculate_ssim`.
    """

    kind = 'ssim'
    function = staticmethod(calculate_ssim)
