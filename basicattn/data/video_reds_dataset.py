"""REDS-style clips (``<clip>/<frame>.png``) for sliding-window training."""

from typing import List, Optional, Sequence, Union

import numpy as np

from basicattn.registry import DATASETS
from basicattn.utils.bounds import PositiveInt, is_positive_int

from .video_base import ClipWindow, VideoFrameDataset
from .video_clips import resolve_clip_names
from .video_window import frame_window

__all__ = ['REDSClipDataset']


@DATASETS.register_module()
class REDSClipDataset(VideoFrameDataset):
    """Training windows over every frame of REDS-like clips.

    Layout ``<root>/<clip>/<frame>.png`` (REDS: ``train_sharp/000/
    00000000.png``; LQ e.g. ``train_sharp_bicubic/X4/000/00000000.png``,
    same frame names), or the LMDBs built from those roots (keys
    ``000/00000000``). There is one item per frame of every clip: the frame
    is the target and the input is the window of ``num_frame`` frames
    around it, ``interval`` apart, where ``interval`` is drawn from
    ``interval_list`` for each item (EDVR trains with ``[1]``; ``[1, 2,
    3]`` adds faster motion). Positions past the ends of the clip are
    mapped back by ``padding`` (default ``'reflection'``: ``[2, 1, 0, 1,
    2]`` for the first frame; see ``video_window.py``), so every frame,
    including the first and last, is a target.

    Clips come from ``meta_info_file`` (first token per line; BasicSR's
    ``000 100 (720,1280,3)`` lines work and their frame count is checked) or
    a scan of ``dataroot_gt``; ``exclude_clips`` then removes held-out
    clips: a list of names or a preset, ``'REDS4'`` (``000 011 015 020``,
    the usual REDS test clips) or ``'REDSofficial'`` (``240..269``, REDS'
    validation clips merged into ``train_sharp``).

    LQ frames are read from ``dataroot_lq`` or made per frame with
    ``degradation``; items, seeds, crops and flips work as in
    :class:`VimeoSeptupletDataset`; the draws are: interval, crop, flips,
    reversal. Items have the keys of :meth:`VideoFrameDataset.__getitem__`
    (``key`` e.g. ``000/00000042``) and ``interval``, the interval drawn.

    Args:
        dataroot_gt (str): GT root or LMDB.
        dataroot_lq (str, optional): LQ root or LMDB; None makes LQ frames.
        meta_info_file (str, optional): Clip list; None scans the root.
        scale (int): Upscaling factor. Defaults to 4.
        num_frame (int): Window size, odd. Defaults to 5.
        interval_list (Sequence[int]): Frame intervals to draw from.
            Defaults to ``(1,)``.
        padding (str): Border policy, one of ``reflection``, ``replicate``,
            ``reflection_circle``, ``circle``. Defaults to ``'reflection'``.
        exclude_clips (str | Sequence[str], optional): Clips left out (a
            preset name or a list). Defaults to None.
        io_backend (str | dict): ``'disk'`` or ``'lmdb'``. Defaults to
            ``'disk'``.
        gt_size (int, optional): Random GT crop side. Defaults to None.
        use_hflip (bool): Random horizontal flips. Defaults to False.
        use_rot (bool): Random vertical flips and transposes. Defaults to
            False.
        random_reverse (bool): Reverse the window with probability 1/2.
            Defaults to False.
        degradation (str | dict): How LQ frames are made without
            ``dataroot_lq``. Defaults to ``'BI'``.
        return_all_gt (bool): ``gt`` is ``(T, C, H, W)`` of the window.
            Defaults to False.
        name (str, optional): Display name.
        repeat (int): Length is ``repeat`` x the number of frames.
            Defaults to 1.
    """

    def __init__(
        self,
        dataroot_gt: str,
        dataroot_lq: Optional[str] = None,
        meta_info_file: Optional[str] = None,
        scale: PositiveInt = 4,
        num_frame: PositiveInt = 5,
        interval_list: Sequence[int] = (1,),
        padding: str = 'reflection',
        exclude_clips: Union[str, Sequence[str], None] = None,
        io_backend: Union[str, dict] = 'disk',
        gt_size: Optional[PositiveInt] = None,
        use_hflip: bool = False,
        use_rot: bool = False,
        random_reverse: bool = False,
        degradation: Union[str, dict] = 'BI',
        return_all_gt: bool = False,
        name: Optional[str] = None,
        repeat: PositiveInt = 1,
    ):
        super().__init__(
            dataroot_gt, dataroot_lq, scale, io_backend, gt_size, degradation, name, repeat
        )
        self.set_sampling(num_frame, return_all_gt, padding, use_hflip, use_rot, random_reverse)
        if (
            not isinstance(interval_list, (list, tuple))
            or not interval_list
            or not all(is_positive_int(i) for i in interval_list)
        ):
            raise ValueError(
                f'interval_list must be a non-empty list of '
                f'positive integers, got {interval_list!r}'
            )
        if padding in ('reflection_circle', 'circle') and any(i != 1 for i in interval_list):
            raise ValueError(
                f'padding {padding!r} needs interval_list [1], got {list(interval_list)}'
            )
        self.interval_list = [int(i) for i in interval_list]
        self.meta_info_file = meta_info_file
        self.exclude_clips = resolve_clip_names(exclude_clips, 'exclude_clips')
        clips = self.collect_clips(meta_info_file, exclude=self.exclude_clips, num_frame=num_frame)
        self.clip_names: List[str] = list(clips)
        self.clip_frames: List[List[str]] = list(clips.values())
        # Item i (before repeat) is frame _frame_pos[i] of clip _clip_of[i].
        self._clip_of = np.concatenate(
            [np.full(len(f), c, dtype=np.int64) for c, f in enumerate(self.clip_frames)]
        )
        self._frame_pos = np.concatenate(
            [np.arange(len(f), dtype=np.int64) for f in self.clip_frames]
        )
        self.metainfo['clips'] = len(self.clip_names)

    def __len__(self) -> int:
        return len(self._clip_of) * self.repeat

    def pick_window(self, index: int, rng: np.random.Generator) -> ClipWindow:
        """Frame ``index`` of its clip, with a window of a drawn interval."""
        base = index % len(self._clip_of)
        clip_idx = int(self._clip_of[base])
        pos = int(self._frame_pos[base])
        frames = self.clip_frames[clip_idx]
        interval = self.interval_list[int(rng.integers(len(self.interval_list)))]
        indices = frame_window(pos, len(frames), self.num_frame, interval, self.padding)
        return ClipWindow(self.clip_names[clip_idx], frames, pos, indices, dict(interval=interval))

    def _repr_fields(self) -> dict:
        return dict(
            num_clips=len(self.clip_names),
            num_frames=len(self._clip_of),
            num_frame=self.num_frame,
            interval_list=self.interval_list,
            padding=self.padding,
            repeat=self.repeat,
        )
