"""Vimeo-90K septuplets for sliding-window video super-resolution."""

from typing import List, Optional, Union

import numpy as np

from basicattn.errors import DataError
from basicattn.registry import DATASETS
from basicattn.utils.bounds import PositiveInt

from .video_base import ClipWindow, VideoFrameDataset
from .video_clips import read_clip_list

__all__ = ['VimeoSeptupletDataset']

SEPTUPLET = 7
#: The frame names of a septuplet, ``im1`` .. ``im7``.
SEPTUPLET_FRAMES = tuple(f'im{i}' for i in range(1, SEPTUPLET + 1))


@DATASETS.register_module()
class VimeoSeptupletDataset(VideoFrameDataset):
    """Vimeo-90K septuplets: ``sequences/<5 digits>/<4 digits>/im1..im7.png``.

    One item per clip (``00001/0001``): the ``num_frame`` middle frames of
    the septuplet as input (7: ``im1..im7``; 5, as DASAA uses:
    ``im2..im6``; 3: ``im3..im5``) and the centre frame ``im4`` as target.
    Clips come from a list file (``sep_trainlist.txt`` /
    ``sep_testlist.txt``, lines ``00001/0001``; BasicSR's meta info files
    ``00001/0001 7 (256,448,3)`` work too), or, without one, from a scan of
    ``dataroot_gt`` (every folder holding frames is a clip and must have
    the needed ``im<k>``). Use ``dataroot_gt: .../vimeo90k/sequences`` and
    the LMDB that ``tools/create_lmdb.py`` builds from that folder (keys
    ``00001/0001/im4``); a list file selects clips from either backend, so
    one LMDB serves both the train and the test list. With ``dataroot_lq``
    and without ``return_all_gt`` only the GT ``im4`` is read, so BasicSR's
    GT LMDBs holding only ``im4`` work too.

    LQ frames are read from ``dataroot_lq`` (same layout, e.g. BasicSR's
    ``vimeo90k/BIx4``) or made from each GT frame with ``degradation`` (BI,
    BD or DN, applied to the whole frame before cropping). DN noise differs
    per frame and is reproducible: frame key ``k`` of item ``(index,
    seed)`` gets ``default_rng([seed, crc32(k)])`` (or the degradation's own
    ``seed``).

    Items are an index or ``(index, seed)`` (see ``PairedImageDataset``):
    every random choice (crop, flips, reversal) comes from
    ``np.random.default_rng(seed)``, and one crop and one flip/rotation are
    applied to every frame of the sample. Items have the keys of
    :meth:`VideoFrameDataset.__getitem__`: ``key`` ``00001/0001/im4``,
    ``frame_idx`` 3, ``num_frames_in_clip`` 7, ``neighbors`` the 0-based
    septuplet positions of the input frames.

    Args:
        dataroot_gt (str): ``sequences`` folder, or its LMDB.
        dataroot_lq (str, optional): LQ folder / LMDB of the same layout.
            None makes LQ frames with ``degradation``.
        meta_info_file (str, optional): Clip list; None scans
            ``dataroot_gt``.
        scale (int): Upscaling factor. Defaults to 4.
        num_frame (int): Input frames, odd, at most 7. Defaults to 7.
        io_backend (str | dict): ``'disk'`` or ``'lmdb'``. Defaults to
            ``'disk'``.
        gt_size (int, optional): Side of the random GT crop (a multiple of
            ``scale``); None keeps whole frames. Defaults to None.
        use_hflip (bool): Random horizontal flips. Defaults to False.
        use_rot (bool): Random vertical flips and transposes. Defaults to
            False.
        random_reverse (bool): Reverse the input order with probability
            1/2. Defaults to False.
        degradation (str | dict): ``'BI'``, ``'BD'``, ``'DN'`` or a config
            dict (see ``build_degradation``). Defaults to ``'BI'``.
        return_all_gt (bool): ``gt`` holds the GT of every input frame,
            ``(T, C, H, W)``, for models that restore the whole sequence.
            Defaults to False.
        name (str, optional): Display name. Defaults to the base name of
            ``dataroot_gt``.
        repeat (int): Length is ``repeat`` x the number of clips.
            Defaults to 1.
    """

    def __init__(
        self,
        dataroot_gt: str,
        dataroot_lq: Optional[str] = None,
        meta_info_file: Optional[str] = None,
        scale: PositiveInt = 4,
        num_frame: PositiveInt = 7,
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
        self.set_sampling(
            num_frame,
            return_all_gt,
            use_hflip=use_hflip,
            use_rot=use_rot,
            random_reverse=random_reverse,
        )
        if num_frame > SEPTUPLET:
            raise ValueError(
                f'num_frame {num_frame} exceeds the {SEPTUPLET} frames of a Vimeo-90K septuplet'
            )
        self.meta_info_file = meta_info_file
        first = (SEPTUPLET - num_frame) // 2  # 0-based index of the 1st
        self.frame_indices = list(range(first, first + num_frame))
        self.frame_names = [SEPTUPLET_FRAMES[i] for i in self.frame_indices]
        self.clips = self._find_clips()
        self.metainfo['clips'] = len(self.clips)

    def _needed(self, store) -> List[str]:
        """Frames a store must hold: the GT of the target only, when the LQ
        frames are given and ``return_all_gt`` is off (so BasicSR's
        GT-only-``im4`` LMDBs work), else every input frame."""
        if store is self.gt_store and self.lq_store is not None and not self.return_all_gt:
            return [self.frame_names[self.num_frame // 2]]
        return self.frame_names

    def _missing(self, store, clip: str) -> List[str]:
        return [f for f in self._needed(store) if not store.has_frame(f'{clip}/{f}')]

    def _find_clips(self) -> List[str]:
        stores = [self.gt_store] + ([self.lq_store] if self.lq_store else [])
        if self.meta_info_file is not None:
            clips = []
            for clip, lineno, _ in read_clip_list(self.meta_info_file):
                where = f'{self.meta_info_file}, line {lineno}'
                for store in stores:
                    if not store.has_clip(clip):
                        raise FileNotFoundError(
                            f'{where}: clip {clip!r} not found in {store.role} {store.root}'
                        )
                    # LMDB keys are in memory: check frames now. On disk the
                    # frames are checked when read (one stat per frame).
                    missing = self._missing(store, clip) if store.backend == 'lmdb' else []
                    if missing:
                        raise FileNotFoundError(
                            f'{where}: clip {clip!r} lacks frame(s) '
                            f'{", ".join(missing)} in {store.role} LMDB '
                            f'{store.root}'
                        )
                clips.append(clip)
            return clips
        found = self.gt_store.scan_clips()
        if not found:
            raise DataError(f'dataset {self.name!r} is empty: no clips in {self.dataroot_gt}')
        for clip, frames in found.items():
            missing = sorted(set(self._needed(self.gt_store)) - set(frames))
            if missing:
                raise FileNotFoundError(
                    f'clip {clip!r} in GT {self.dataroot_gt} lacks frame(s) '
                    f'{", ".join(missing)} (a septuplet has im1..im7; '
                    'give a list file to select clips)'
                )
            if self.lq_store is not None:
                self._check_lq_clip(clip, self.frame_names, f'GT {self.dataroot_gt}')
        return list(found)

    def __len__(self) -> int:
        return len(self.clips) * self.repeat

    def pick_window(self, index: int, rng: np.random.Generator) -> ClipWindow:
        """The middle ``num_frame`` frames of septuplet ``index``; target ``im4``."""
        clip = self.clips[index % len(self.clips)]
        return ClipWindow(clip, SEPTUPLET_FRAMES, SEPTUPLET // 2, self.frame_indices, {})

    def _repr_fields(self) -> dict:
        return dict(num_clips=len(self.clips), num_frame=self.num_frame, repeat=self.repeat)
