"""Frames of video clips on disk or in an LMDB, and the clip lists naming them.

Video datasets name every frame by its *key*: the path relative to the data
root without extension, ``<clip>/<frame>`` (``000/00000000`` for REDS,
``calendar/frame_0001`` for Vid4, ``00001/0001/im4`` for Vimeo-90K, where
the clip itself is ``00001/0001``). These are exactly the keys of an LMDB
built from that root by ``tools/create_lmdb.py``, so a dataset reads the
same frames from the folder and from its LMDB. A clip is a folder that holds
frames directly; its frames are ordered naturally (``im2`` before ``im10``).
"""

import os
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from basicattn.errors import DataError
from basicattn.utils.img_util import imfrombytes, imread
from basicattn.utils.path_util import not_found
from basicattn.utils.text_file import read_text_lines

from .lmdb_io import (
    IMG_SUFFIXES,
    SUPPORTED_BACKENDS,
    LmdbKeyError,
    LmdbReader,
    check_unique_keys,
    is_lmdb,
    require_lmdb,
    scan_images,
)

__all__ = [
    'CLIP_PRESETS',
    'FrameStore',
    'check_frame_numbers',
    'frame_number',
    'natural_key',
    'read_clip_list',
    'resolve_clip_names',
    'split_key',
]

#: Named clip lists usable wherever clip names are expected.
CLIP_PRESETS = {
    # The four REDS clips held out for testing by EDVR and later work.
    'REDS4': ('000', '011', '015', '020'),
    # REDS' official validation clips, renamed 240-269 once merged into
    # train_sharp (the BasicSR convention).
    'REDSofficial': tuple(f'{i:03d}' for i in range(240, 270)),
}


def natural_key(name: str):
    """Sort key comparing digit runs as numbers (``im2`` < ``im10``)."""
    return [
        (0, int(tok), tok) if tok.isdigit() else (1, 0, tok)
        for tok in re.split(r'(\d+)', name)
        if tok
    ]


_LAST_NUMBER = re.compile(r'(\d+)\D*$')


def frame_number(frame: str) -> Optional[int]:
    """The number of a frame name: its last run of digits (``im4`` -> 4,
    ``frame_0012`` -> 12, ``00000099`` -> 99), or None if it has none."""
    match = _LAST_NUMBER.search(frame)
    return None if match is None else int(match.group(1))


def check_frame_numbers(clip: str, frames: Sequence[str], where: str) -> None:
    """Refuse a clip whose frames are not numbered consecutively.

    A clip with frames ``1, 2, 4, ...`` would give windows that jump over
    the missing frame. Clips whose frame names carry no number are not
    checked (their order is all there is).

    Args:
        clip (str): The clip's name.
        frames (Sequence[str]): Its frame names.
        where (str): Where the clip is (root, LMDB or list file line).

    Raises:
        DataError: Names the clip, the missing frame numbers and two repeated
            ones (``f1`` and ``g1``), and how to allow gaps.
    """
    numbers = [frame_number(f) for f in frames]
    if not numbers or any(n is None for n in numbers):
        return
    seen: Dict[int, str] = {}
    for frame, number in zip(frames, numbers):
        if number in seen:
            raise DataError(
                f'clip {clip!r} ({where}): frames {seen[number]!r} and '
                f'{frame!r} both have number {number}; keep one frame per '
                'number'
            )
        seen[number] = frame
    missing = sorted(set(range(min(numbers), max(numbers) + 1)) - set(seen))
    if missing:
        shown = ', '.join(str(n) for n in missing[:10])
        more = f' and {len(missing) - 10} more' if len(missing) > 10 else ''
        raise DataError(
            f'clip {clip!r} ({where}) lacks frame number(s) {shown}{more} '
            f'between {min(numbers)} and {max(numbers)}: windows would jump '
            'over them; restore the frames, or set allow_gaps: true if the '
            'set really has gaps'
        )


def split_key(key: str) -> Tuple[str, str]:
    """``'00001/0001/im4'`` -> ``('00001/0001', 'im4')``; flat: clip ``''``."""
    return tuple(key.rsplit('/', 1)) if '/' in key else ('', key)


def read_clip_list(path: str) -> List[Tuple[str, int, List[str]]]:
    """Read a clip list: the first token of every non-blank line is a clip.

    Accepts Vimeo-90K's ``sep_trainlist.txt`` (``00001/0001``) and BasicSR's
    meta info files (``000 100 (720,1280,3)``, ``00001/0001 7 (256,448,3)``).

    Args:
        path (str): The text file.

    Returns:
        list[tuple[str, int, list[str]]]: ``(clip, line number, other
        tokens)`` per clip line, in file order.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: A clip is listed twice (names both lines).
    """
    path = os.fspath(path)
    if not osp.isfile(path):
        raise FileNotFoundError(not_found('clip list file', path))
    entries, seen = [], {}
    for lineno, line in enumerate(read_text_lines(path, 'clip list file'), start=1):
        tokens = line.split()
        if not tokens:
            continue
        clip = tokens[0].replace('\\', '/').strip('/')
        if clip in seen:
            raise DataError(
                f'{path}, line {lineno}: clip {clip!r} is already listed on line {seen[clip]}'
            )
        seen[clip] = lineno
        entries.append((clip, lineno, tokens[1:]))
    if not entries:
        raise DataError(f'clip list file {path} lists no clips')
    return entries


def resolve_clip_names(value: Union[str, Sequence[str], None], where: str) -> Optional[List[str]]:
    """Turn a preset name or a list of clip names into a list of names.

    Args:
        value (str | Sequence[str] | None): A key of :data:`CLIP_PRESETS`,
            a single clip name, or a list of names (ints are formatted as
            given, so write ``'000'`` rather than ``0``).
        where (str): The option's name, for errors.

    Returns:
        list[str] | None: The names, or None for None.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return list(CLIP_PRESETS.get(value, (value,)))
    if not isinstance(value, (list, tuple)):
        raise TypeError(
            f'{where} must be a preset name '
            f'({", ".join(CLIP_PRESETS)}) or a list of clip '
            f'names, got {type(value).__name__}'
        )
    names = []
    for name in value:
        if not isinstance(name, str):
            raise TypeError(
                f"{where}: clip names must be strings (quote them in YAML: '000'), got {name!r}"
            )
        names.extend(CLIP_PRESETS.get(name, (name,)))
    return names


class FrameStore:
    """The frames under one root folder or in one LMDB, by key.

    On disk, a key ``<clip>/<frame>`` is the file ``root/<clip>/<frame>``
    plus an image suffix (``.png`` first). In an LMDB it is the record key;
    the keys are listed from its ``meta_info.txt`` once, on first use.

    Args:
        root (str): Folder, or LMDB folder with ``backend='lmdb'``.
        backend (str): ``'disk'`` or ``'lmdb'``.
        role (str): ``'GT'`` or ``'LQ'``, used in error messages.
    """

    def __init__(self, root: str, backend: str, role: str = 'GT'):
        self.root = os.fspath(root)
        self.backend = backend
        self.role = role
        self._paths: Dict[str, str] = {}  # disk: key -> file, when scanned
        self._groups: Optional[Dict[str, List[str]]] = None  # lmdb clips
        self._frame_sets: Optional[Dict[str, set]] = None
        self.reader = None
        if backend == 'lmdb':
            require_lmdb(self.root, f'{role} LMDB')
            self.reader = LmdbReader(self.root)
        elif backend == 'disk':
            if is_lmdb(self.root):
                raise DataError(
                    f"{self.root} is an LMDB database; set io_backend='lmdb' to read it"
                )
            if not osp.isdir(self.root):
                raise FileNotFoundError(not_found(f'{role} folder', self.root))
        else:
            raise ValueError(f'io_backend must be one of {SUPPORTED_BACKENDS}, got {backend!r}')

    # -- clips -------------------------------------------------------------
    def _lmdb_groups(self) -> Dict[str, List[str]]:
        if self._groups is None:
            groups: Dict[str, List[str]] = {}
            for key in self.reader.keys():
                clip, frame = split_key(key)
                groups.setdefault(clip, []).append(frame)
            self._groups = groups
        return self._groups

    def scan_clips(self) -> Dict[str, List[str]]:
        """All clips (folders holding frames) and their frames.

        Returns:
            dict[str, list[str]]: clip -> frame names, clips and frames in
            natural order.

        Raises:
            ValueError: Frames lie directly in the root (no clip folder), or
                two files share a key.
        """
        if self.backend == 'lmdb':
            groups = {c: list(f) for c, f in self._lmdb_groups().items()}
        else:
            items = scan_images(self.root)
            check_unique_keys(items)
            groups = {}
            for key, path in items:
                self._paths[key] = path
                clip, frame = split_key(key)
                groups.setdefault(clip, []).append(frame)
        if '' in groups:
            frame = groups[''][0]
            raise DataError(
                f'{self.role} root {self.root} holds frames directly (e.g. '
                f'{frame!r}); expected one folder per clip: '
                '<root>/<clip>/<frame>.png'
            )
        return {
            clip: sorted(groups[clip], key=natural_key) for clip in sorted(groups, key=natural_key)
        }

    def clip_frames(self, clip: str) -> Optional[List[str]]:
        """Frames of one clip in natural order, or None if it does not exist.

        Args:
            clip (str): The clip's name (``000``, ``00001/0001``).

        Returns:
            list[str] | None: Frame names (keys without the clip part).
        """
        if self.backend == 'lmdb':
            frames = self._lmdb_groups().get(clip)
            return None if frames is None else sorted(frames, key=natural_key)
        folder = osp.join(self.root, clip)
        if not osp.isdir(folder):
            return None
        items = []
        for filename in os.listdir(folder):
            stem, ext = osp.splitext(filename)
            path = osp.join(folder, filename)
            if stem and ext.lower() in IMG_SUFFIXES and osp.isfile(path):
                items.append((f'{clip}/{stem}', path))
        check_unique_keys(sorted(items))
        self._paths.update(items)
        return sorted((split_key(k)[1] for k, _ in items), key=natural_key)

    def has_clip(self, clip: str) -> bool:
        """Whether the clip's folder (disk) or any key of it (LMDB) exists."""
        if self.backend == 'lmdb':
            return clip in self._lmdb_groups()
        return osp.isdir(osp.join(self.root, clip))

    def has_frame(self, key: str) -> bool:
        """Whether the frame exists (checks the file system on disk)."""
        if self.backend == 'lmdb':
            clip, frame = split_key(key)
            return frame in self._lmdb_frame_sets().get(clip, ())
        return self._find(key) is not None

    def _lmdb_frame_sets(self):
        if self._frame_sets is None:
            self._frame_sets = {c: set(f) for c, f in self._lmdb_groups().items()}
        return self._frame_sets

    # -- frames ------------------------------------------------------------
    def _find(self, key: str) -> Optional[str]:
        path = self._paths.get(key)
        if path is not None:
            return path
        base = osp.join(self.root, key)
        for suffix in IMG_SUFFIXES + tuple(s.upper() for s in IMG_SUFFIXES):
            if osp.isfile(base + suffix):
                return base + suffix
        return None

    def describe(self, key: str) -> str:
        """Where a frame is read from: its file, or ``<lmdb>/<key>``."""
        if self.backend == 'lmdb':
            return f'{self.root}/{key}'
        return self._paths.get(key) or osp.join(self.root, key + '.png')

    def load(self, key: str) -> np.ndarray:
        """Read one frame as RGB uint8 ``(H, W, 3)``.

        Args:
            key (str): ``<clip>/<frame>``.

        Returns:
            np.ndarray: The frame.

        Raises:
            FileNotFoundError: No file for the key (names the expected
                path); KeyError: no LMDB record (names the key and the
                database).
        """
        if self.backend == 'lmdb':
            try:
                value = self.reader.get(key)
            except KeyError:
                clip, frame = split_key(key)
                raise LmdbKeyError(
                    f'{self.role} frame {frame!r} of clip {clip!r} not found: '
                    f'no key {key!r} in LMDB {self.root}'
                ) from None
            return imfrombytes(value, f'{self.root}:{key}')
        path = self._find(key)
        if path is None:
            clip, frame = split_key(key)
            raise FileNotFoundError(
                f'{self.role} frame {frame!r} of clip {clip!r} not found: '
                f'expected {osp.join(self.root, key)}.png (or another image '
                'suffix)'
            )
        return imread(path)
