"""LAM for video SR: which input frames, and which of their pixels, an output frame uses.

The natural extension of the image procedure (:mod:`basicattn.analysis.lam`,
Gu and Dong, CVPR 2021) to a network that reads several frames: the input is
a whole clip ``(L, 3, h, w)`` of LR frames, the function attributed is "the
clip -> output frame ``t`` (the centre frame by default)", and the blur path
is applied to *every frame at once* (the same kernel at each step), so one
path-integrated gradient gives an attribution ``(L, 3, h, w)``: one map per
input frame. Nothing else changes: same objective (the gradient detector
over the window of output frame ``t``), same path, same mean over steps.

How output frame ``t`` is computed from the clip (:func:`clip_forward`):

* ``'window'`` (sliding-window archs: MANA, DKSAN, DASAA from a zero
  state): the arch sees the ``num_frames`` frames centred on ``t``
  (:func:`~basicattn.data.video_window.frame_window`, mirrored at the clip
  ends), exactly as ``tools/infer.py`` feeds it; frames outside the window
  get no attribution, and a mirrored frame that appears twice in the
  window collects both gradients;
* ``'sequence'`` (recurrent archs, whose ``forward`` takes ``return_state``:
  DASAA's ConvLSTM): the arch runs over output frames ``0 .. t`` in order,
  carrying its state, as ``tools/infer.py --mode sequence`` does, so that
  the earlier frames reach frame ``t`` through the state.

Per-frame numbers (:func:`frame_summary`), from the per-frame maps ``m_f =
|attribution of frame f summed over channels|``:

* share of frame ``f`` = ``sum(m_f) / sum over all frames of sum(m_g)``
  (the shares sum to 1);
* DI of frame ``f`` = the image DI of ``m_f`` (its own maximum, its own
  Gini); undefined (None) for a frame with no attribution at all;
* the clip DI = the DI of all maps together, divided by their common
  maximum; the figure shows the maps on that common scale too, so that
  the frames can be compared.
"""

from typing import Callable, List, Optional

import numpy as np
import torch
from torch import nn

from basicattn.data.video_window import frame_window
from basicattn.errors import UserError

from .lam import diffusion_index, gini

__all__ = ['MODES', 'clip_forward', 'frame_summary', 'frames_used']

#: How the output frame is computed from the clip (see the module docstring).
MODES = ('window', 'sequence')


def _check(net: nn.Module, clip_length: int, frame: int, mode: str, padding: str) -> None:
    if mode not in MODES:
        raise UserError(f'--mode must be one of {", ".join(MODES)}, got {mode!r}')
    if mode == 'sequence' and not accepts_state(net):
        raise UserError(
            f'--mode sequence: {type(net).__name__} has no recurrent state '
            '(its forward takes no return_state); use --mode window'
        )
    if isinstance(frame, bool) or not isinstance(frame, int) or not 0 <= frame < clip_length:
        raise UserError(
            f'--frame {frame!r} is outside the clip of {clip_length} frames '
            f'(give an index in [0, {clip_length - 1}])'
        )
    try:
        frame_window(frame, clip_length, net.num_frames, 1, padding)
    except ValueError as err:
        raise UserError(f'--padding {padding}: {err}') from None


def accepts_state(net: nn.Module) -> bool:
    """True for a recurrent arch (its ``forward`` takes ``return_state``)."""
    import inspect

    return 'return_state' in inspect.signature(net.forward).parameters


def frames_used(
    net: nn.Module, clip_length: int, frame: int, mode: str, padding: str = 'reflection'
) -> List[int]:
    """The clip frames that output frame ``frame`` depends on, sorted."""
    _check(net, clip_length, frame, mode, padding)
    targets = range(frame + 1) if mode == 'sequence' else [frame]
    used = {i for t in targets for i in frame_window(t, clip_length, net.num_frames, 1, padding)}
    return sorted(used)


def clip_forward(
    net: nn.Module, clip_length: int, frame: int, mode: str = 'window', padding: str = 'reflection'
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``clip (B, L, C, h, w) -> output frame `frame` (B, C, H, W)`` for a video arch.

    Args:
        net (nn.Module): A video arch (``num_frames`` attribute).
        clip_length (int): ``L``, the frames of the clip.
        frame (int): The output frame, in ``[0, L)``.
        mode (str): ``'window'`` or ``'sequence'`` (module docstring).
        padding (str): Border policy of the windows (``frame_window``).

    Raises:
        UserError: A frame outside the clip, an unknown mode, or
            ``'sequence'`` for an arch without recurrent state.
    """
    _check(net, clip_length, frame, mode, padding)
    windows = [frame_window(t, clip_length, net.num_frames, 1, padding) for t in range(frame + 1)]

    def forward(clip: torch.Tensor) -> torch.Tensor:
        if mode == 'window':
            return net(clip[:, windows[frame]])
        state = None
        for ids in windows:
            out, state = net(clip[:, ids], state, return_state=True)
        return out

    return forward


def frame_summary(lam_maps: np.ndarray) -> dict:
    """Per-frame shares and DIs, and the clip DI, of the maps ``(L, h, w)`` (not normalised).

    Returns:
        dict: ``shares`` (list, sum 1), ``diffusion_indices`` and ``ginis``
        (lists, None for a frame without attribution), ``diffusion_index``
        and ``gini`` of the whole clip, and ``maps``: the maps divided by
        their common maximum.
    """
    masses = lam_maps.reshape(len(lam_maps), -1).sum(1)
    clip_di, clip_gini = diffusion_index(lam_maps)  # DataError for an all-zero clip
    dis: List[Optional[float]] = []
    ginis: List[Optional[float]] = []
    for frame_map in lam_maps:
        top = float(frame_map.max())
        if top > 0:
            value = gini(frame_map / top)
            dis.append((1.0 - value) * 100.0)
            ginis.append(value)
        else:
            dis.append(None)
            ginis.append(None)
    return dict(
        shares=[float(m) for m in masses / masses.sum()],
        diffusion_indices=dis,
        ginis=ginis,
        diffusion_index=clip_di,
        gini=clip_gini,
        maps=lam_maps / lam_maps.max(),
    )
