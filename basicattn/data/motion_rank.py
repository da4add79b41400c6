"""How much a clip moves: mean optical-flow magnitude, ranking and top-percent clip lists.

MANA (Yu et al., "Memory-Augmented Non-Local Attention for Video
Super-Resolution", CVPR 2022, section 4.1) forms "Vimeo90K-Motion" from the
Vimeo-90K test clips: the optical flow of each clip is computed, clips are
ranked by their average flow magnitude and the top 6 % kept. The paper does
not name its flow method; this module uses OpenCV's DIS optical flow
(Kroeger et al., ECCV 2016):

* each frame is read as 8-bit grayscale (OpenCV's BT.601 luma);
* the flow from frame ``t`` to ``t + 1`` is ``cv2.DISOpticalFlow_create(preset)``
  ``.calc(frame_t, frame_t+1)`` with the preset's parameters unchanged
  (default ``medium``: patch 8, stride 3, finest scale 1, 25 gradient-descent
  iterations, variational refinement 5 iterations);
* a pair's magnitude is the mean over pixels of ``sqrt(u^2 + v^2)``, and the
  clip's is the mean over its consecutive pairs, in pixels per frame.

A clip is a folder holding frames (any image format of
:data:`~basicattn.data.lmdb_io.IMG_SUFFIXES`), ordered naturally (``im2``
before ``im10``); a ``sequences`` folder inside the root (Vimeo-90K's layout)
is taken as the root, so clip names are ``00001/0001`` as in
``sep_testlist.txt``. The top ``p`` % of ``n`` clips is the
``max(1, round(n * p / 100))`` clips of largest magnitude (ties: clip name),
written as a clip list in natural order, one line per clip
``<clip> <frames> (<h>,<w>,<c>)`` (BasicSR's meta-info format, which
``VimeoSeptupletDataset`` and ``VideoTestDataset`` read as ``meta_info_file``).
"""

import math
import os.path as osp
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from basicattn.errors import DataError, UserError

from .lmdb_io import check_unique_keys, scan_images
from .video_clips import natural_key, read_clip_list, split_key

__all__ = [
    'PRESETS',
    'ClipFrames',
    'clip_list_text',
    'clips_of_list',
    'clip_motion',
    'find_clips',
    'motion_root',
    'pair_flow_magnitude',
    'rank_motion',
    'top_clips',
    'top_count',
]

#: DIS presets by name (OpenCV's constants).
PRESETS = ('ultrafast', 'fast', 'medium')

ClipFrames = Dict[str, List[str]]  # clip -> frame paths in natural order


def motion_root(root: str) -> str:
    """``root/sequences`` when it exists (Vimeo-90K's layout), else ``root``."""
    sequences = osp.join(root, 'sequences')
    return sequences if osp.isdir(sequences) else root


def find_clips(root: str, only: Optional[Sequence[str]] = None, where: str = '') -> ClipFrames:
    """The clips under ``root`` and their frame paths, clips and frames in natural order.

    Args:
        root (str): The folder of clips (see :func:`motion_root`).
        only (list[str], optional): Clip names to keep (a clip list), in any
            order; each must exist.
        where (str): Names the source of ``only`` in errors (a file).

    Raises:
        UserError: ``root`` is not a folder.
        DataError: No clips, frames directly in ``root``, a clip with fewer
            than 2 frames, or a listed clip that is not there.
    """
    if not osp.isdir(root):
        raise UserError(f'{root}: not a folder; give the folder of the clips')
    items = scan_images(root)
    check_unique_keys(items)
    clips: ClipFrames = {}
    for key, path in items:
        clip, _ = split_key(key)
        if not clip:
            raise DataError(
                f'{root} holds frames directly (e.g. {path}); expected one folder per clip: '
                '<root>/<clip>/<frame>.png'
            )
        clips.setdefault(clip, []).append(path)
    if only is not None:
        missing = [c for c in only if c not in clips]
        if missing:
            raise DataError(
                f'{where or "clip list"}: clip {missing[0]!r} is not in {root}'
                + (f' ({len(missing)} clips missing)' if len(missing) > 1 else '')
            )
        clips = {c: clips[c] for c in only}
    if not clips:
        raise DataError(f'{root}: no clips (folders holding frames) found')
    for clip, frames in clips.items():
        if len(frames) < 2:
            raise DataError(
                f'{osp.join(root, clip)}: {len(frames)} frame; a clip needs at least 2 to move'
            )
    order = sorted(clips, key=natural_key)
    return {
        c: sorted(clips[c], key=lambda p: natural_key(osp.splitext(osp.basename(p))[0]))
        for c in order
    }


def clips_of_list(path: str) -> List[str]:
    """The clip names of a clip list file (``sep_testlist.txt``, a meta-info file)."""
    try:
        return [clip for clip, _, _ in read_clip_list(path)]
    except FileNotFoundError:
        raise UserError(f'{path}: clip list not found') from None


def _dis(preset: str):
    import cv2

    if preset not in PRESETS:
        raise UserError(f'DIS preset must be one of {", ".join(PRESETS)}, got {preset!r}')
    code = getattr(cv2, f'DISOPTICAL_FLOW_PRESET_{preset.upper()}')
    return cv2.DISOpticalFlow_create(code)


def _gray(path: str) -> np.ndarray:
    import cv2

    img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise DataError(f'{path}: cannot be read as an image')
    return img


def pair_flow_magnitude(prev: np.ndarray, nxt: np.ndarray, flow=None) -> float:
    """Mean flow magnitude (pixels) from ``prev`` to ``nxt``, uint8 grayscale ``(H, W)``.

    Args:
        prev, nxt: The two frames.
        flow: A DIS instance (``cv2.DISOpticalFlow``); None: a ``medium`` one.
    """
    if prev.shape != nxt.shape:
        raise ValueError(f'frame sizes differ: {prev.shape} vs {nxt.shape}')
    flow = flow if flow is not None else _dis('medium')
    field = flow.calc(np.ascontiguousarray(prev), np.ascontiguousarray(nxt), None)
    return float(np.hypot(field[..., 0], field[..., 1]).mean(dtype=np.float64))


def clip_motion(frames: Sequence[str], flow=None) -> Tuple[float, Tuple[int, int, int]]:
    """``(mean magnitude over consecutive pairs, (h, w, c) of the frames)`` of a clip.

    Raises:
        DataError: A frame that cannot be read, or frames of different sizes.
    """
    import cv2

    flow = flow if flow is not None else _dis('medium')
    first = cv2.imread(frames[0], cv2.IMREAD_UNCHANGED)
    if first is None:
        raise DataError(f'{frames[0]}: cannot be read as an image')
    shape = (first.shape[0], first.shape[1], 1 if first.ndim == 2 else first.shape[2])
    values, prev = [], _gray(frames[0])
    for path in frames[1:]:
        nxt = _gray(path)
        if nxt.shape != prev.shape:
            raise DataError(
                f'{path} is {nxt.shape[1]}x{nxt.shape[0]} (WxH) but {frames[0]} is '
                f'{prev.shape[1]}x{prev.shape[0]}: the frames of a clip must have one size'
            )
        values.append(pair_flow_magnitude(prev, nxt, flow))
        prev = nxt
    return float(np.mean(values)), shape


def rank_motion(
    clips: Mapping[str, Sequence[str]],
    preset: str = 'medium',
    progress: Optional[Callable[[int, int], None]] = None,
) -> Tuple[Dict[str, float], Dict[str, Tuple[int, Tuple[int, int, int]]]]:
    """Motion of every clip, largest first.

    Args:
        clips: ``{clip: frame paths}`` (:func:`find_clips`).
        preset (str): DIS preset, one of :data:`PRESETS`.
        progress: Called as ``progress(done, total)`` after each clip.

    Returns:
        ``(motion, info)``: ``{clip: magnitude}`` ordered by magnitude,
        descending (ties by clip name), and ``{clip: (frames, (h, w, c))}``.
    """
    flow = _dis(preset)
    motion, info = {}, {}
    for done, (clip, frames) in enumerate(clips.items(), start=1):
        motion[clip], shape = clip_motion(frames, flow)
        info[clip] = (len(frames), shape)
        if progress is not None:
            progress(done, len(clips))
    order = sorted(motion, key=lambda c: (-motion[c], natural_key(c)))
    return {c: motion[c] for c in order}, info


def top_count(total: int, percent: float) -> int:
    """How many clips the top ``percent`` % of ``total`` is: ``max(1, round half up)``."""
    if not 0 < percent <= 100:
        raise UserError(f'--top must be a percentage in (0, 100], got {percent:g}')
    return max(1, min(total, math.floor(total * percent / 100.0 + 0.5)))


def top_clips(motion: Mapping[str, float], percent: float) -> List[str]:
    """The top ``percent`` % of ``motion`` (ordered largest first), in natural order."""
    ranked = sorted(motion, key=lambda c: (-motion[c], natural_key(c)))
    chosen = ranked[: top_count(len(ranked), percent)]
    return sorted(chosen, key=natural_key)


def clip_list_text(
    clips: Iterable[str], info: Mapping[str, Tuple[int, Tuple[int, int, int]]]
) -> str:
    """A clip list, one ``<clip> <frames> (<h>,<w>,<c>)`` line per clip."""
    lines = []
    for clip in clips:
        count, (h, w, c) = info[clip]
        lines.append(f'{clip} {count} ({h},{w},{c})\n')
    return ''.join(lines)
