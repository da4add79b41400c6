"""Reading and writing image sequences for inference (``tools/infer.py``):
image folders, frame folders and video files (OpenCV), streamed so that long
videos need memory for a window of frames only.

Frames are RGB uint8 arrays (H, W, 3), as everywhere in basicattn.
"""

import math
import os
import os.path as osp
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from basicattn.errors import DataError
from basicattn.utils.atomic_file import StagedFolder
from basicattn.utils.img_util import imread, imwrite
from basicattn.utils.path_util import not_found

from .lmdb_io import IMG_SUFFIXES
from .video_clips import natural_key
from .video_window import frame_window

#: File extensions read and written as video (everything else: images).
VIDEO_SUFFIXES = ('.mp4', '.avi', '.mkv', '.mov', '.webm', '.m4v')

_FOURCC = {
    '.mp4': 'mp4v',
    '.m4v': 'mp4v',
    '.mov': 'mp4v',
    '.avi': 'MJPG',
    '.mkv': 'MJPG',
    '.webm': 'VP80',
}


def is_video_file(path: str) -> bool:
    """Whether ``path`` names a video file (by its extension, :data:`VIDEO_SUFFIXES`)."""
    return osp.splitext(path)[1].lower() in VIDEO_SUFFIXES


def list_images(folder: str) -> List[str]:
    """Image files directly inside ``folder``, in natural order (2 < 10)."""
    names = [n for n in os.listdir(folder) if osp.splitext(n)[1].lower() in IMG_SUFFIXES]
    if not names:
        raise DataError(f'no images ({", ".join(IMG_SUFFIXES)}) in {folder}')
    return [osp.join(folder, n) for n in sorted(names, key=natural_key)]


class FrameSource:
    """Frames of an image file, an image folder or a video file, in order.

    Args:
        path (str): The input.

    Attributes:
        names (list[str] | None): Output base names for image inputs (None
            for video files, whose frames are numbered).
        fps (float | None): Frame rate of a video file.
    """

    def __init__(self, path: str):
        if not osp.exists(path):
            raise FileNotFoundError(not_found('input', path))
        self.path, self.fps, self._capture = path, None, None
        if osp.isdir(path):
            self._files = list_images(path)
        elif is_video_file(path):
            import cv2

            self._capture = cv2.VideoCapture(path)
            if not self._capture.isOpened():
                raise DataError(f'OpenCV cannot open the video {path}')
            fps = self._capture.get(cv2.CAP_PROP_FPS)
            self.fps = float(fps) if fps and fps > 0 else None
            self._files = None
        else:
            self._files = [path]
        self.names = (
            None if self._files is None else [osp.splitext(osp.basename(f))[0] for f in self._files]
        )

    @property
    def files(self) -> Optional[List[str]]:
        """The image files, in frame order (None for a video file)."""
        return None if self._files is None else list(self._files)

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._files is not None:
            for f in self._files:
                yield imread(f)
            return
        import cv2

        index = 0
        while True:
            ok, frame = self._capture.read()
            if not ok:
                break
            index += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        self._capture.release()
        if index == 0:
            raise DataError(f'no frame could be decoded from {self.path}')


def sliding_windows(
    frames: Iterator[np.ndarray], num_frame: int, padding: str = 'reflection'
) -> Iterator[Tuple[int, List[np.ndarray]]]:
    """Yield ``(index, window)`` for every frame, reading ahead only
    ``num_frame // 2`` frames and keeping only the frames still needed.

    Windows near the ends follow ``padding`` (see
    :func:`basicattn.data.video_window.frame_window`).
    """
    half = num_frame // 2
    cache: Dict[int, np.ndarray] = {}
    stream = iter(frames)
    total: Optional[int] = None
    read = 0
    index = 0
    while total is None or index < total:
        while total is None and read <= index + half:
            try:
                cache[read] = next(stream)
                read += 1
            except StopIteration:
                total = read
        if total is not None and index >= total:
            break
        known = total if total is not None else index + half + 1
        ids = frame_window(index, known, num_frame, 1, padding)
        yield index, [cache[i] for i in ids]
        for old in [i for i in cache if i < index - half]:
            del cache[old]
        index += 1


class FrameSink:
    """Write frames as PNG files into a folder, or encode a video file.

    Nothing reaches ``path`` before every frame has been written: PNG files
    go to a hidden folder beside it (``.<name>.part-<pid>``) and are moved
    into ``path`` by :meth:`close`; a video is encoded into a hidden file
    beside it and renamed over it. :meth:`abort` removes only these
    temporary files, so whatever was in ``path`` before stays as it was.

    Args:
        path (str): A folder, or a file ending in a video extension.
        fps (float): Frame rate of a video output. Default: 25.
        overwrite (bool): Replace existing files. Default: False.
    """

    def __init__(self, path: str, fps: float = 25.0, overwrite: bool = False):
        self.path, self.fps, self.overwrite = path, float(fps), overwrite
        self.is_video = is_video_file(path)
        if self.is_video and not (math.isfinite(self.fps) and self.fps > 0):
            raise DataError(f'{path}: frame rate {fps} (fps) must be positive, e.g. 25')
        self._writer = None
        self._tmp = None
        self._staged = None if self.is_video else StagedFolder(path)
        self.count = 0
        if osp.exists(path) and self.is_video and not overwrite:
            raise FileExistsError(f'{path} exists; pass --overwrite to replace it')

    def write(self, frame: np.ndarray, name: Optional[str] = None) -> str:
        """Write one RGB uint8 frame; returns where it will be once closed."""
        self.count += 1
        if not self.is_video:
            filename = f'{name if name else f"{self.count - 1:08d}"}.png'
            target = osp.join(self.path, filename)
            if osp.exists(target) and not self.overwrite:
                raise FileExistsError(f'{target} exists; pass --overwrite to replace it')
            with self._staged.writing(filename) as staged:
                if osp.exists(staged):
                    raise DataError(
                        f'two inputs would both be written to {target}; '
                        'give the input images distinct base names'
                    )
                imwrite(staged, frame)
            return target
        import cv2

        if self._writer is None:
            ext = osp.splitext(self.path)[1].lower()
            os.makedirs(osp.dirname(osp.abspath(self.path)), exist_ok=True)
            # encode beside the target, rename at the end: no torn output
            self._tmp = osp.join(
                osp.dirname(osp.abspath(self.path)), f'.{osp.basename(self.path)}.part{ext}'
            )
            h, w = frame.shape[:2]
            self._writer = cv2.VideoWriter(
                self._tmp, cv2.VideoWriter_fourcc(*_FOURCC[ext]), self.fps, (w, h)
            )
            if not self._writer.isOpened():
                raise DataError(f'OpenCV cannot encode {ext} video here ({self.path})')
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        return self.path

    def abort(self) -> None:
        """Drop the temporary outputs; ``path`` is left as it was."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._tmp and osp.exists(self._tmp):
            os.remove(self._tmp)
        if self._staged is not None:
            self._staged.abort()

    def close(self) -> None:
        """Move the finished outputs into place (each move is atomic)."""
        if self._writer is not None:
            self._writer.release()
            os.replace(self._tmp, self.path)
            self._writer = None
        if self._staged is not None:
            self._staged.commit()
