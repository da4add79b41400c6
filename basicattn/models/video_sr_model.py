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

Sequence mode (``test_cfg.sequence``, option ``val.sequence``) is for archs
with a recurrent state (DASAA's ConvLSTM: ``forward(x, state,
return_state=True)``): the state of frame ``t`` of a clip is carried into
frame ``t + 1`` when the frames arrive in order (``VideoTestDataset`` gives
them so, with ``clip`` and ``frame_idx``), and starts from zeros at a clip's
first frame or after any gap. It needs a single process: with several ranks
each sees every other frame and the state would restart every frame.
"""

from typing import Any, Dict, List, Optional, Union

import torch
from torch import Tensor

from basicattn.archs.facts import is_recurrent
from basicattn.config.test_settings import VideoTestConfig
from basicattn.errors import OptionError
from basicattn.models.sr_model import SRModel, _as_batch
from basicattn.models.tiled_inference import clamp_output
from basicattn.registry import MODELS


@MODELS.register_module()
class VideoSRModel(SRModel):
    """:class:`SRModel` for ``(N, T, C, h, w)`` windows -> centre frame.

    Args: see :class:`SRModel`; ``test_cfg`` is a
    :class:`~basicattn.config.test_settings.VideoTestConfig` (``sequence`` too).
    Data: ``lq`` (N, T, C, h, w), ``gt`` (N, C, H, W) (the centre frame), plus
    the datasets' metadata (``key``, ``clip``, ``frame_idx`` ...).
    """

    test_config_class = VideoTestConfig

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._sequence_key = None  # (clip, frame index) the state belongs to
        self._sequence_state = None
        if self.test_cfg.sequence and not is_recurrent(self.generator):
            raise OptionError(
                f'test_cfg.sequence: {type(self.generator).__name__} has no '
                'recurrent state (its forward takes no return_state)'
            )

    def forward(
        self, lq: Tensor, gt: Optional[Tensor] = None, mode: str = 'tensor', **meta: Any
    ) -> Union[Dict[str, Tensor], List[dict], Tensor]:
        """:meth:`SRModel.forward` for a window ``lq`` of shape (N, T, C, h, w)."""
        lq = _as_batch(lq, 'lq')
        if lq.dim() != 5:
            raise ValueError(
                f'VideoSRModel: lq must be a window of frames '
                f'(N, T, C, h, w), got shape {tuple(lq.shape)}; '
                'use SRModel for single images'
            )
        return super().forward(lq, gt, mode, **meta)

    def predict(self, lq: Tensor, gt: Optional[Tensor] = None, **meta: Any) -> List[dict]:
        """Per-frame results; in sequence mode the state flows frame to frame."""
        if not self.test_cfg.sequence:
            return super().predict(lq, gt, **meta)
        clips, frames = meta.get('clip'), meta.get('frame_idx')
        if clips is None or frames is None:
            raise ValueError(
                "test_cfg.sequence needs the batch's 'clip' and 'frame_idx' (use VideoTestDataset)"
            )
        outputs = []
        with torch.no_grad(), self.autocast(lq):
            for i in range(lq.shape[0]):
                clip, index = str(clips[i]), int(frames[i])
                state = self._sequence_state if self._sequence_key == (clip, index - 1) else None
                out, state = self._step(lq[i : i + 1], state)
                self._sequence_key, self._sequence_state = (clip, index), state
                out = out.float() if self.test_cfg.amp else out
                outputs.append(clamp_output(out) if self.test_cfg.clamp else out)
        return self.split_results(torch.cat(outputs), gt, meta)

    def _step(self, window: Tensor, state: Any) -> Any:
        """One recurrent step ``(out, state)``; timed (from a zero state the first time)."""
        if self.forward_timer is None:
            return self.generator(window, state, return_state=True)
        return self.forward_timer.measure(
            lambda x: self.generator(x, state, return_state=True),
            window,
            warmup=lambda x: self.generator(x, None, return_state=True),
        )
