"""One LAM run of a network on an image or a clip, and its numbers.

Glue between the maths (:mod:`basicattn.analysis.lam`,
:mod:`basicattn.analysis.lam_video`) and the commands: the SR output of the
unblurred input (one forward, which also checks the window), the
path-integrated attribution (``fold`` forward and ``fold`` backward passes,
in batches), the map and its Diffusion Index.
"""

from dataclasses import dataclass, field
from typing import Callable, List, Optional

import numpy as np
import torch
from torch import nn

from basicattn.errors import DataError

from .lam import (
    BlurPath,
    attribution_map,
    check_window,
    diffusion_index,
    gradient_detector,
    path_attribution,
)
from .lam_video import clip_forward, frame_summary, frames_used

__all__ = ['LamResult', 'Window', 'check_sr_window', 'run_clip_lam', 'run_image_lam']


@dataclass(frozen=True)
class Window:
    """The attributed ``size x size`` window of the SR output, top-left at ``(row, col)``."""

    row: int
    col: int
    size: int = 16

    def as_dict(self) -> dict:
        return dict(row=self.row, col=self.col, size=self.size)


@dataclass
class LamResult:
    """What one LAM run found.

    Attributes:
        sr: The SR output of the unblurred input, float32 ``(C, H, W)``, not clamped.
        attribution: float64 ``(C, h, w)`` (image) or ``(L, C, h, w)`` (clip).
        lam_map: The map divided by its maximum, ``(h, w)`` or ``(L, h, w)``.
        diffusion_index, gini: Of ``lam_map`` (the whole clip for a clip).
        frames: Per clip frame (clips only): ``index``, ``share``,
            ``diffusion_index``, ``gini`` (None without attribution) and
            ``used`` (whether output frame ``t`` depends on it at all).
    """

    sr: torch.Tensor
    attribution: torch.Tensor
    lam_map: np.ndarray
    diffusion_index: float
    gini: float
    frames: List[dict] = field(default_factory=list)


def check_sr_window(sr: torch.Tensor, window: Window) -> None:
    """The window fits the SR output ``(C, H, W)`` and is not flat there.

    Raises:
        UserError: The window leaves the gradient detector.
        DataError: The detector is 0 over the whole window (no edge to attribute).
    """
    check_window(window.row, window.col, window.size, sr.shape)
    if not gradient_detector(sr[None], window.row, window.col, window.size).item() > 0:
        raise DataError(
            f'the {window.size}x{window.size} window at row {window.row} col {window.col} is '
            'flat in the SR output (its gradient detector is 0): choose a window with edges '
            'or texture'
        )


def _sr_and_check(forward, inputs: torch.Tensor, window: Window) -> torch.Tensor:
    with torch.no_grad():
        sr = forward(inputs[None].to(torch.float32))[0]
    check_sr_window(sr, window)
    return sr


def _objective(window: Window) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda y: gradient_detector(y, window.row, window.col, window.size)


def run_image_lam(
    net: nn.Module,
    lr: torch.Tensor,
    window: Window,
    path: Optional[BlurPath] = None,
    batch_size: int = 10,
    progress: Optional[Callable[[int], None]] = None,
) -> LamResult:
    """LAM of an image arch for one window.

    Args:
        net (nn.Module): ``(N, 3, h, w) -> (N, 3, H, W)``, in eval mode.
        lr (Tensor): ``(3, h, w)`` RGB in [0, 1] on the network's device.
        window (Window): In SR pixels.
        path (BlurPath, optional): The blur path (None: the LAM authors' defaults).
        batch_size (int): Path steps per pass.
        progress (callable, optional): Receives the steps done per batch.

    Raises:
        UserError: A window outside the output, bad path settings.
        DataError: An input too small for the kernel, or a flat window.
    """
    path = (path or BlurPath()).check()
    path.check_size(lr.shape, 'the LR image')
    sr = _sr_and_check(net, lr, window)
    attribution = path_attribution(net, lr, _objective(window), path, batch_size, progress)
    raw = attribution_map(attribution)
    di, gini_value = diffusion_index(raw)
    return LamResult(sr.cpu(), attribution.cpu(), raw / raw.max(), di, gini_value)


def run_clip_lam(
    net: nn.Module,
    clip: torch.Tensor,
    window: Window,
    frame: Optional[int] = None,
    mode: str = 'window',
    padding: str = 'reflection',
    path: Optional[BlurPath] = None,
    batch_size: int = 10,
    progress: Optional[Callable[[int], None]] = None,
) -> LamResult:
    """LAM of a video arch: output frame ``frame``'s window, attributed to every clip frame.

    Args:
        net (nn.Module): A video arch (``num_frames``), in eval mode.
        clip (Tensor): ``(L, 3, h, w)`` RGB in [0, 1], ``L >= 2``.
        window (Window): In SR pixels of the output frame.
        frame (int, optional): The output frame; None: the centre ``L // 2``.
        mode, padding: See :func:`~basicattn.analysis.lam_video.clip_forward`.
        path, batch_size, progress: As :func:`run_image_lam`.

    Returns:
        LamResult: ``lam_map`` ``(L, h, w)`` on the common scale, ``frames`` filled.
    """
    path = (path or BlurPath()).check()
    length = clip.shape[0]
    if clip.dim() != 4 or length < 2:
        raise DataError(
            f'{type(net).__name__} is a video arch ({net.num_frames} frames per window): '
            f'give a clip of at least 2 frames (a folder of frames or a video), got '
            f'{length if clip.dim() == 4 else "an image"}'
        )
    path.check_size(clip.shape, 'every LR frame')
    frame = length // 2 if frame is None else frame
    forward = clip_forward(net, length, frame, mode, padding)
    used = set(frames_used(net, length, frame, mode, padding))
    sr = _sr_and_check(forward, clip, window)
    attribution = path_attribution(forward, clip, _objective(window), path, batch_size, progress)
    summary = frame_summary(attribution_map(attribution))
    frames = [
        dict(
            index=i,
            used=i in used,
            share=summary['shares'][i],
            diffusion_index=summary['diffusion_indices'][i],
            gini=summary['ginis'][i],
        )
        for i in range(length)
    ]
    return LamResult(
        sr.cpu(),
        attribution.cpu(),
        summary['maps'],
        summary['diffusion_index'],
        summary['gini'],
        frames,
    )
