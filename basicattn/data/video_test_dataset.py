"""Whole test clips (Vid4, REDS4, Vimeo-90K test), one item per frame."""

from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from basicattn.registry import DATASETS
from basicattn.utils.bounds import PositiveInt

from .video_base import ClipWindow, VideoFrameDataset
from .video_clips import check_frame_numbers, resolve_clip_names
from .video_window import frame_window

__all__ = ['VideoTestDataset']


@DATASETS.register_module()
class VideoTestDataset(VideoFrameDataset):
    """Every frame of every clip, in order, with its input window.

    Layout ``<root>/<clip>/<frame>.png`` (Vid4 ``GT/calendar/...``, REDS
    ``train_sharp/000/00000000.png``, Vimeo-90K ``sequences/00001/0001/
    im1.png`` with ``sep_testlist.txt`` as ``meta_info_file``: 7-frame
    clips) or the LMDBs of such roots. Item ``i`` is frame ``frame_idx`` of
    clip ``clip``, in the order (clip, frame): the clips of the list file /
    ``clips`` option in their order, or sorted naturally after a scan, and
    the frames of a clip in natural order. Its input is the ``num_frame``
    window around the frame, completed at the ends of the clip by
    ``padding`` (default ``'reflection'``; ``'reflection_circle'`` is what
    BasicSR's EDVR test options use).

    Every item carries ``clip``, ``frame_idx`` and ``num_frames_in_clip``,
    and :meth:`list_clips` / :meth:`clip_indices` give the clips and their
    items, so that metrics can be averaged per clip and then over clips.
    Samples are deterministic: no random crop or flip; ``gt_size`` takes
    the centre patch (for quick validation on large frames); a random
    degradation (DN) without a ``seed`` of its own uses seed 0 for a plain
    index, so every frame has the same LQ in every window and every run.
    Items have the keys of :meth:`VideoFrameDataset.__getitem__` and
    ``border``: True when the window reaches past an end of the clip.

    The frames of a clip must be numbered consecutively (the last run of
    digits in their names: ``00000000``, ``frame_0001``, ``im4``): a clip
    with frames 1, 2, 4, ... is refused with a
    :class:`~basicattn.errors.DataError` naming the clip and the missing
    numbers, since its windows would silently jump over the gap. Set
    ``allow_gaps=True`` for a set that really has gaps; the frames present
    are then used in order.

    Args:
        dataroot_gt (str): GT root or LMDB.
        dataroot_lq (str, optional): LQ root or LMDB of the same layout;
            None makes LQ frames with ``degradation``.
        meta_info_file (str, optional): Clip list (first token per line).
        clips (str | Sequence[str], optional): Clip names, or a preset
            (``'REDS4'``), instead of ``meta_info_file``.
        scale (int): Upscaling factor. Defaults to 4.
        num_frame (int): Window size, odd. Defaults to 5.
        padding (str): Border policy (``reflection``, ``replicate``,
            ``reflection_circle``, ``circle``). Defaults to
            ``'reflection'``.
        io_backend (str | dict): ``'disk'`` or ``'lmdb'``. Defaults to
            ``'disk'``.
        gt_size (int, optional): Centre crop side in GT pixels; None (the
            default) keeps whole frames.
        degradation (str | dict): How LQ frames are made without
            ``dataroot_lq``. Defaults to ``'BI'``.
        return_all_gt (bool): ``gt`` is ``(T, C, H, W)`` of the window.
            Defaults to False.
        name (str, optional): Display name.
        allow_gaps (bool): Accept clips whose frame numbers skip values.
            Defaults to False (such a clip is an error).
    """

    deterministic = True

    def __init__(
        self,
        dataroot_gt: str,
        dataroot_lq: Optional[str] = None,
        meta_info_file: Optional[str] = None,
        clips: Union[str, Sequence[str], None] = None,
        scale: PositiveInt = 4,
        num_frame: PositiveInt = 5,
        padding: str = 'reflection',
        io_backend: Union[str, dict] = 'disk',
        gt_size: Optional[PositiveInt] = None,
        degradation: Union[str, dict] = 'BI',
        return_all_gt: bool = False,
        name: Optional[str] = None,
        allow_gaps: bool = False,
    ):
        super().__init__(dataroot_gt, dataroot_lq, scale, io_backend, gt_size, degradation, name)
        self.set_sampling(num_frame, return_all_gt, padding)
        self.meta_info_file = meta_info_file
        found = self.collect_clips(
            meta_info_file, include=resolve_clip_names(clips, 'clips'), num_frame=num_frame
        )
        self.allow_gaps = bool(allow_gaps)
        if not self.allow_gaps:
            for clip, frames in found.items():
                check_frame_numbers(clip, frames, f'{self.gt_store.role} {self.dataroot_gt}')
        self.clip_names: List[str] = list(found)
        self.clip_frames: List[List[str]] = list(found.values())
        self._starts = np.cumsum([0] + [len(f) for f in self.clip_frames])
        self.metainfo['clips'] = len(self.clip_names)

    # -- clips -----------------------------------------------------------
    def list_clips(self) -> List[Tuple[str, int]]:
        """The clips in dataset order.

        Returns:
            list[tuple[str, int]]: ``(clip, number of frames)``.
        """
        return [(c, len(f)) for c, f in zip(self.clip_names, self.clip_frames)]

    def clip_indices(self, clip: str) -> range:
        """The dataset indices of one clip's frames, in frame order.

        Args:
            clip (str): A clip name from :meth:`list_clips`.

        Returns:
            range: Consecutive indices.
        """
        try:
            c = self.clip_names.index(clip)
        except ValueError:
            raise KeyError(f'clip {clip!r} is not in dataset {self.name!r}') from None
        return range(int(self._starts[c]), int(self._starts[c + 1]))

    def locate(self, index: int) -> Tuple[str, int]:
        """``(clip, frame_idx)`` of a dataset index."""
        index = self._parse_item(index, default_seed=0)[0]
        c = int(np.searchsorted(self._starts, index, side='right')) - 1
        return self.clip_names[c], index - int(self._starts[c])

    def __len__(self) -> int:
        return int(self._starts[-1])

    # -- items -----------------------------------------------------------
    def pick_window(self, index: int, rng: Optional[np.random.Generator] = None) -> ClipWindow:
        """Frame ``index`` in (clip, frame) order, with its padded window."""
        c = int(np.searchsorted(self._starts, index, side='right')) - 1
        frames = self.clip_frames[c]
        pos = index - int(self._starts[c])
        indices = frame_window(pos, len(frames), self.num_frame, 1, self.padding)
        half = self.num_frame // 2
        border = bool(pos < half or pos >= len(frames) - half)
        return ClipWindow(self.clip_names[c], frames, pos, indices, dict(border=border))

    def _repr_fields(self) -> dict:
        return dict(
            num_clips=len(self.clip_names),
            num_frames=len(self),
            num_frame=self.num_frame,
            padding=self.padding,
        )
