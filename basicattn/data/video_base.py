"""What the video datasets share: backends, LQ frames given or made, seeds.

:class:`VideoFrameDataset` holds the GT (and optional LQ) :class:`FrameStore`
and the degradation, parses ``index`` / ``(index, seed)`` items as
``PairedImageDataset`` does, and loads the frames of one window: LQ frames
read from ``dataroot_lq`` (same ``<clip>/<frame>`` layout as the GT) or made
from the GT frames with the degradation. Each distinct frame is read and
degraded once per sample, so a frame repeated by the border padding is
identical wherever it appears.
"""

import os
import os.path as osp
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from basicattn.errors import DataError
from basicattn.utils.img_util import mod_crop

from .degradation_transform import build_degradation
from .video_clips import SUPPORTED_BACKENDS, FrameStore, read_clip_list

__all__ = ['VideoFrameDataset', 'is_positive_int']


def is_positive_int(value) -> bool:
    """True for an int (not bool) >= 1."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


class VideoFrameDataset(Dataset):
    """Base of the video datasets (not registered).

    Args:
        dataroot_gt (str): GT root, or its LMDB with ``io_backend='lmdb'``.
        dataroot_lq (str, optional): LQ root with the same layout; None
            makes LQ frames from the GT with ``degradation``.
        scale (int): Upscaling factor.
        io_backend (str | dict): ``'disk'`` or ``'lmdb'`` (or
            ``dict(type=...)``); both roots use it.
        gt_size (int, optional): GT patch side, a multiple of ``scale``.
        degradation (str | dict): ``'BI'``, ``'BD'``, ``'DN'`` or a config
            dict, used when ``dataroot_lq`` is None.
        name (str, optional): Display name; defaults to the GT root's base
            name.
    """

    def __init__(
        self,
        dataroot_gt: str,
        dataroot_lq: Optional[str],
        scale: int,
        io_backend: Union[str, dict],
        gt_size: Optional[int],
        degradation: Union[str, dict],
        name: Optional[str],
    ):
        super().__init__()
        if isinstance(io_backend, dict):
            io_backend = io_backend.get('type')
        if io_backend not in SUPPORTED_BACKENDS:
            raise ValueError(f'io_backend must be one of {SUPPORTED_BACKENDS}, got {io_backend!r}')
        if not is_positive_int(scale):
            raise ValueError(f'scale must be a positive integer, got {scale!r}')
        if gt_size is not None and (not is_positive_int(gt_size) or gt_size % scale):
            raise ValueError(
                f'gt_size must be a positive multiple of scale {scale} or None, got {gt_size!r}'
            )
        self.scale = int(scale)
        self.io_backend = io_backend
        self.gt_size = None if gt_size is None else int(gt_size)
        self.degradation = degradation
        self._degradation = build_degradation(degradation, self.scale)
        self.dataroot_gt = os.fspath(dataroot_gt)
        self.dataroot_lq = None if dataroot_lq is None else os.fspath(dataroot_lq)
        self.gt_store = FrameStore(self.dataroot_gt, io_backend, 'GT')
        self.lq_store = (
            None if self.dataroot_lq is None else FrameStore(self.dataroot_lq, io_backend, 'LQ')
        )
        self.name = name or osp.basename(self.dataroot_gt.rstrip('/\\'))
        self.metainfo = dict(name=self.name, scale=self.scale)

    @property
    def _degradation_name(self) -> str:
        deg = self._degradation
        return getattr(deg, 'short_name', None) or type(deg).__name__

    # -- items -----------------------------------------------------------
    def _parse_item(self, item, default_seed=None) -> Tuple[int, int]:
        """``index`` or ``(index, seed)`` -> ``(index in range, seed)``.

        A plain index takes ``default_seed``, or a seed drawn from numpy's
        global RNG when that is None.
        """
        if isinstance(item, (tuple, list)):
            if len(item) != 2:
                raise TypeError(f'item must be an index or (index, seed), got {item!r}')
            index, seed = int(item[0]), int(item[1])
        else:
            index = int(item)
            seed = np.random.randint(2**31) if default_seed is None else int(default_seed)
        length = len(self)
        if not -length <= index < length:
            raise IndexError(
                f'index {index} out of range for dataset {self.name!r} of length {length}'
            )
        return index % length, seed

    # -- clips -----------------------------------------------------------
    def collect_clips(
        self,
        meta_info_file: Optional[str] = None,
        include: Optional[List[str]] = None,
        exclude: Optional[List[str]] = None,
        num_frame: int = 1,
    ) -> Dict[str, List[str]]:
        """Find the clips of ``<root>/<clip>/<frame>`` layouts and check them.

        Args:
            meta_info_file (str, optional): Clip list (first token of each
                line; an integer second token is checked against the number
                of frames found, as in BasicSR's ``000 100 (720,1280,3)``).
            include (list[str], optional): Clip names to use, in this order
                (instead of the list file or a scan).
            exclude (list[str], optional): Clip names to leave out; each
                must exist.
            num_frame (int): Window size; every clip needs this many frames.

        Returns:
            dict[str, list[str]]: clip -> frame names (natural order).

        Raises:
            FileNotFoundError: A listed clip or an LQ frame is missing.
            ValueError: No clips, a clip shorter than ``num_frame``, an
                excluded clip that does not exist, or a frame count that
                differs from the list file.
        """
        root = self.dataroot_gt
        if meta_info_file is not None and include is not None:
            raise ValueError('give either meta_info_file or clips, not both')
        if meta_info_file is not None:
            listed = [
                (c, f'{meta_info_file}, line {n}', rest)
                for c, n, rest in read_clip_list(meta_info_file)
            ]
        elif include is not None:
            listed = [(c, 'clips', []) for c in include]
        else:
            listed = None
        if listed is None:
            clips = self.gt_store.scan_clips()
            where_of = {c: root for c in clips}
        else:
            clips, where_of = {}, {}
            for clip, where, rest in listed:
                if clip in clips:
                    raise DataError(f'{where}: clip {clip!r} is given twice')
                frames = self.gt_store.clip_frames(clip)
                if not frames:
                    raise FileNotFoundError(
                        f'{where}: clip {clip!r} not found (or holds no frames) in GT {root}'
                    )
                if rest and rest[0].isdigit() and int(rest[0]) != len(frames):
                    raise DataError(
                        f'{where}: clip {clip!r} is listed with {rest[0]} '
                        f'frames but GT {root} holds {len(frames)}'
                    )
                clips[clip] = frames
                where_of[clip] = where
        for clip in exclude or ():
            if clip not in clips:
                shown = ', '.join(list(clips)[:8])
                raise DataError(
                    f'exclude_clips: clip {clip!r} is not among the clips of '
                    f'{root} ({shown}{" ..." if len(clips) > 8 else ""})'
                )
            del clips[clip]
        if not clips:
            raise DataError(f'dataset {self.name!r} is empty: no clips in {root}')
        for clip, frames in clips.items():
            if len(frames) < num_frame:
                raise DataError(
                    f'num_frame {num_frame} is larger than clip {clip!r} '
                    f'({where_of[clip]}), which has {len(frames)} frames'
                )
            if self.lq_store is not None:
                self._check_lq_clip(clip, frames, where_of[clip])
        return clips

    # -- frames ----------------------------------------------------------
    def _check_lq_clip(self, clip: str, frames: List[str], where: str) -> None:
        """Raise unless the LQ root has every listed frame of ``clip``."""
        lq_frames = self.lq_store.clip_frames(clip)
        if lq_frames is None:
            raise FileNotFoundError(
                f'{where}: clip {clip!r} has no LQ folder / keys in {self.dataroot_lq}'
            )
        missing = sorted(set(frames) - set(lq_frames))
        if missing:
            shown = ', '.join(missing[:5]) + (' ...' if len(missing) > 5 else '')
            raise FileNotFoundError(
                f'{where}: clip {clip!r} lacks {len(missing)} LQ frame(s) '
                f'in {self.dataroot_lq}: {shown}'
            )

    def load_window(
        self, clip: str, frames: List[str], center: int, all_gt: bool, seed: int
    ) -> Dict[str, object]:
        """Read (or make) the frames of one window.

        Args:
            clip (str): The clip's name.
            frames (list[str]): Frame names of the window, in order
                (repeats allowed).
            center (int): Position of the target frame in ``frames``.
            all_gt (bool): Return the GT of every window frame, not just
                the target.
            seed (int): Seed of random degradations (DN: the noise of frame
                ``k`` comes from ``default_rng([seed, crc32(k)])``).

        Returns:
            dict: ``gts`` and ``lqs`` (lists of uint8 HWC arrays; ``gts``
            has one frame unless ``all_gt``), ``gt_path`` and ``lq_path``
            (of the target frame).
        """
        keys = [f'{clip}/{frame}' for frame in frames]
        gt_keys = keys if all_gt else [keys[center]]
        target = keys[center]
        gt_path = self.gt_store.describe(target)
        if self.lq_store is None:
            hr = {k: mod_crop(self.gt_store.load(k), self.scale) for k in dict.fromkeys(keys)}
            lq = {k: self._degradation.degrade(img, seed=seed, key=k) for k, img in hr.items()}
            lq_path = f'{gt_path} ({self._degradation_name} x{self.scale})'
        else:
            lq = {k: self.lq_store.load(k) for k in dict.fromkeys(keys)}
            hr = {k: self.gt_store.load(k) for k in dict.fromkeys(gt_keys)}
            lq_path = self.lq_store.describe(target)
            for k, img in hr.items():
                expected = (lq[k].shape[0] * self.scale, lq[k].shape[1] * self.scale)
                if img.shape[:2] != expected:
                    raise DataError(
                        f'GT frame {self.gt_store.describe(k)} has shape '
                        f'{img.shape} but LQ frame '
                        f'{self.lq_store.describe(k)} has shape '
                        f'{lq[k].shape}; GT must be scale {self.scale} x LQ'
                    )
        return dict(
            gts=[hr[k] for k in gt_keys],
            lqs=[lq[k] for k in keys],
            gt_path=gt_path,
            lq_path=lq_path,
        )

    @staticmethod
    def _neighbors(indices: List[int]) -> torch.Tensor:
        return torch.tensor(indices, dtype=torch.long)
