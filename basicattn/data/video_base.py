"""What the video datasets share: arguments, LQ frames given or made, items.

:class:`VideoFrameDataset` checks the arguments the video datasets have in
common, holds the GT (and optional LQ) :class:`FrameStore` and the
degradation, and builds every item: a subclass only lists its clips
(:meth:`collect_clips` helps) and, in :meth:`pick_window`, says which frames
of which clip feed one item. :meth:`load_window` then reads the LQ frames
from ``dataroot_lq`` (same ``<clip>/<frame>`` layout as the GT) or makes them
from the GT frames with the degradation; each distinct frame is read and
degraded once per sample, so a frame repeated by the border padding is
identical wherever it appears. The frames are cropped (a random crop with
flips and time reversal for training, the centre crop for deterministic
test sets), stacked and returned with the same keys for every dataset.
"""

from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from basicattn.errors import DataError
from basicattn.utils.bounds import is_positive_int
from basicattn.utils.img_util import img2tensor, mod_crop

from .base_dataset import SRDatasetBase
from .video_clips import FrameStore, read_clip_list
from .video_transforms import center_crop_frames, random_crop_augment_frames, stack_frames
from .video_window import PADDING_MODES, check_num_frame

__all__ = ['ClipWindow', 'VideoFrameDataset', 'is_positive_int']


class ClipWindow(NamedTuple):
    """The frames of one item, as :meth:`VideoFrameDataset.pick_window` chose them.

    Attributes:
        clip (str): The clip's name.
        frames (Sequence[str]): Every frame name of the clip, in order.
        pos (int): Position of the target frame in ``frames``.
        indices (List[int]): Positions in ``frames`` of the window's frames,
            in input order (the middle one is ``pos``).
        extra (dict): Keys the dataset adds to the item after
            ``num_frames_in_clip`` (``interval``, ``border``).
    """

    clip: str
    frames: Sequence[str]
    pos: int
    indices: List[int]
    extra: Dict[str, object]


class VideoFrameDataset(SRDatasetBase):
    """Base of the video datasets (not registered).

    Built with the arguments of :class:`SRDatasetBase` (``dataroot_gt``,
    ``dataroot_lq``, ``scale``, ``io_backend``, ``gt_size``,
    ``degradation``, ``name``, ``repeat``), which it checks there; both
    roots are then opened as :class:`FrameStore` with ``io_backend``. A
    subclass then calls :meth:`set_sampling` with its window and
    augmentation settings, lists its clips and implements
    :meth:`pick_window` and ``__len__``.

    A subclass with ``deterministic = True`` (a test set) gives a plain
    index the seed 0, draws nothing and takes the centre ``gt_size`` crop;
    otherwise every random choice comes from ``np.random.default_rng(seed)``
    of the item's seed.
    """

    #: Test sets: no random draws, centre crop, seed 0 for a plain index.
    deterministic: bool = False

    def __init__(self, *args: Any, **kwargs: Any):
        """Check the arguments of :class:`SRDatasetBase`; open the GT / LQ frame stores."""
        super().__init__(*args, **kwargs)
        self.gt_store = FrameStore(self.dataroot_gt, self.io_backend, 'GT')
        self.lq_store = (
            None
            if self.dataroot_lq is None
            else FrameStore(self.dataroot_lq, self.io_backend, 'LQ')
        )

    def set_sampling(
        self,
        num_frame: int,
        return_all_gt: bool,
        padding: Optional[str] = None,
        use_hflip: bool = False,
        use_rot: bool = False,
        random_reverse: bool = False,
    ) -> None:
        """Check and keep the window and augmentation settings.

        Args:
            num_frame (int): Window size, odd.
            return_all_gt (bool): ``gt`` holds the GT of every window frame.
            padding (str, optional): Border policy, one of
                :data:`~basicattn.data.video_window.PADDING_MODES`, for the
                datasets that pad windows.
            use_hflip (bool): Random horizontal flips (training sets).
            use_rot (bool): Random vertical flips and transposes.
            random_reverse (bool): Reverse the window with probability 1/2.

        Raises:
            ValueError: ``num_frame`` is not an odd positive int, or an
                unknown ``padding``.
        """
        check_num_frame(num_frame)
        if padding is not None and padding not in PADDING_MODES:
            raise ValueError(
                f'padding {padding!r} is not supported; choose one of {", ".join(PADDING_MODES)}'
            )
        self.num_frame = num_frame
        self.return_all_gt = bool(return_all_gt)
        self.padding = padding
        self.use_hflip = bool(use_hflip)
        self.use_rot = bool(use_rot)
        self.random_reverse = bool(random_reverse)

    # -- items -----------------------------------------------------------
    def pick_window(self, index: int, rng: Optional[np.random.Generator]) -> ClipWindow:
        """The clip, target and window frames of item ``index``.

        Args:
            index (int): An index in ``[0, len(self))``.
            rng (np.random.Generator, optional): The item's generator, for
                a window drawn at random (REDS' interval); None for a
                deterministic dataset.

        Returns:
            ClipWindow: What :meth:`__getitem__` loads.
        """
        raise NotImplementedError

    def __getitem__(self, item: Union[int, Tuple[int, int]]) -> dict:
        """Load the window of one target frame.

        Args:
            item (int | tuple[int, int]): Index, or ``(index, seed)``: every
                random choice (window, crop, flips, reversal, in that order)
                and a random degradation's noise come from the seed.

        Returns:
            dict: ``lq`` float32 ``(T, 3, h, w)``; ``gt`` float32
            ``(3, H, W)`` of the target (``(T, 3, H, W)`` with
            ``return_all_gt``); ``key`` (``<clip>/<frame>``), ``clip``,
            ``frame_idx`` (0-based position of the target in its clip),
            ``num_frames_in_clip``, the dataset's extra keys
            (``interval``, ``border``), ``neighbors`` (long ``(T,)``,
            positions of the window frames in input order), ``gt_path`` and
            ``lq_path`` (of the target frame).
        """
        index, seed = self._parse_item(item, default_seed=0 if self.deterministic else None)
        rng = None if self.deterministic else np.random.default_rng(seed)
        clip, frames, pos, indices, extra = self.pick_window(index, rng)
        center = self.num_frame // 2
        window = self.load_window(
            clip, [frames[i] for i in indices], center, self.return_all_gt, seed
        )
        gts, lqs, where = window['gts'], window['lqs'], window['gt_path']
        if rng is None:
            if self.gt_size is not None:
                gts, lqs = center_crop_frames(gts, lqs, self.scale, self.gt_size, where)
        else:
            gts, lqs, reversed_ = random_crop_augment_frames(
                gts,
                lqs,
                self.scale,
                self.gt_size,
                self.use_hflip,
                self.use_rot,
                self.random_reverse,
                rng,
                where,
            )
            if reversed_:
                indices = indices[::-1]
        return dict(
            lq=stack_frames(lqs, clip),
            gt=stack_frames(gts, clip) if self.return_all_gt else img2tensor(gts[0]),
            key=f'{clip}/{frames[pos]}',
            clip=clip,
            frame_idx=pos,
            num_frames_in_clip=len(frames),
            **extra,
            neighbors=torch.tensor(indices, dtype=torch.long),
            gt_path=window['gt_path'],
            lq_path=window['lq_path'],
        )

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
            lq_path = self._made_lq_path(gt_path)
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
