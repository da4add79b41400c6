"""The ``--out`` folder of an analysis: every file written atomically inside it.

Nothing is written outside the folder (each file goes to a temporary name
beside its destination, then is renamed); a file that exists is replaced
only once its new content is complete.
"""

import os
import os.path as osp
from typing import Any

import numpy as np

from basicattn.utils.atomic_file import atomic_write_bytes
from basicattn.utils.img_util import imencode_png
from basicattn.utils.strict_json import dumps

__all__ = ['OutputFolder']


class OutputFolder:
    """Writes JSON, Markdown and PNG files under ``root``."""

    def __init__(self, root: str):
        self.root = root
        self.written = []

    def path(self, rel: str) -> str:
        return osp.join(self.root, rel)

    def _write(self, rel: str, data: bytes) -> str:
        path = atomic_write_bytes(data, self.path(rel))
        self.written.append(rel)
        return path

    def json(self, rel: str, content: Any) -> str:
        """``content`` as JSON (non-finite numbers as ``"nan"`` ..., :mod:`strict_json`)."""
        return self._write(rel, (dumps(content) + '\n').encode())

    def text(self, rel: str, text: str) -> str:
        return self._write(rel, text.encode())

    def png(self, rel: str, img: np.ndarray) -> str:
        """An RGB uint8 image, compressed at zlib level 9 (figures stay small)."""

        return self._write(rel, imencode_png(img, compress_level=9))

    def make(self) -> None:
        os.makedirs(self.root, exist_ok=True)
