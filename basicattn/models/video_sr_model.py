"""Video super-resolution model for sliding-window archs.

A sliding-window arch takes a window of ``T`` low-resolution frames
``(N, T, C, h, w)`` and returns the super-resolved centre frame
``(N, C, H, W)`` (MANA, DASAA, DKSAN; EDVR-style). Training, losses (pixel
losses on the centre frame and the arch's own terms through
:class:`~basicattn.losses.auxiliary_loss.AuxiliaryLoss`), multi-stage
schedules, self-ensemble, tiling and EMA are those of :class:`SRModel`,
whose test-time transforms act on the last two axes and so on every frame of
the window alike. Validation and ``tools/test.py`` use the video datasets'
``clip`` field: metrics are averaged per clip, then over clips.
"""
from basicattn.registry import MODELS
from .sr_model import SRModel, _as_batch


@MODELS.register_module()
class VideoSRModel(SRModel):
    """:class:`SRModel` for ``(N, T, C, h, w)`` windows -> centre frame.

    Args: see :class:`SRModel`. Data: ``lq`` (N, T, C, h, w), ``gt``
    (N, C, H, W) (the centre frame), plus the datasets' metadata
    (``key``, ``clip``, ``frame_idx`` ...).
    """

    def forward(self, lq, gt=None, mode='tensor', **meta):
        lq = _as_batch(lq, 'lq')
        if lq.dim() != 5:
            raise ValueError(f'VideoSRModel: lq must be a window of frames '
                             f'(N, T, C, h, w), got shape {tuple(lq.shape)}; '
                             'use SRModel for single images')
        return super().forward(lq, gt, mode, **meta)
