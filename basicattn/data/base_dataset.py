"""What every SR dataset shares: its arguments, items, LQ naming and repr.

:class:`SRDatasetBase` checks the arguments that :class:`PairedImageDataset`
and the video datasets (through :class:`VideoFrameDataset`) have in common
(``io_backend``, ``scale``, ``gt_size``, ``repeat``, ``degradation``), parses
``index`` / ``(index, seed)`` items and writes the ``__repr__`` from the few
fields a dataset adds. It reads no data itself.
"""

import os
import os.path as osp
from typing import Dict, Optional, Tuple, Union

import numpy as np
from torch.utils.data import Dataset

from basicattn.utils.bounds import is_positive_int

from .degradation_transform import build_degradation
from .lmdb_io import SUPPORTED_BACKENDS

__all__ = ['SRDatasetBase']


class SRDatasetBase(Dataset):
    """Base of the SR datasets (not registered).

    Args:
        dataroot_gt (str): GT root, or its LMDB with ``io_backend='lmdb'``.
        dataroot_lq (str, optional): LQ root; None makes LQ images from the
            GT with ``degradation``.
        scale (int): Upscaling factor, a positive int.
        io_backend (str | dict): ``'disk'`` or ``'lmdb'`` (or BasicSR's
            ``dict(type=...)``).
        gt_size (int, optional): GT patch side, a positive multiple of
            ``scale``; None keeps whole images.
        degradation (str | dict): ``'BI'``, ``'BD'``, ``'DN'`` or a config
            dict (see ``build_degradation``), used without ``dataroot_lq``.
        name (str, optional): Display name; defaults to the GT root's base
            name.
        repeat (int): How many times the samples are repeated in the
            dataset's length (1 for datasets that do not repeat).

    Raises:
        ValueError: An argument above is invalid (the message names it).
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
        repeat: int = 1,
    ):
        super().__init__()
        if isinstance(io_backend, dict):
            io_backend = io_backend.get('type')
        if io_backend not in SUPPORTED_BACKENDS:
            raise ValueError(f'io_backend must be one of {SUPPORTED_BACKENDS}, got {io_backend!r}')
        if not is_positive_int(scale):
            raise ValueError(f'scale must be a positive integer, got {scale!r}')
        if not is_positive_int(repeat):
            raise ValueError(f'repeat must be a positive integer, got {repeat!r}')
        if gt_size is not None and (not is_positive_int(gt_size) or gt_size % scale):
            raise ValueError(
                f'gt_size must be a positive multiple of scale {scale} or None, got {gt_size!r}'
            )
        self.scale = int(scale)
        self.io_backend = io_backend
        self.gt_size = None if gt_size is None else int(gt_size)
        self.repeat = int(repeat)
        self.degradation = degradation
        self._degradation = build_degradation(degradation, self.scale)
        self.dataroot_gt = os.fspath(dataroot_gt)
        self.dataroot_lq = None if dataroot_lq is None else os.fspath(dataroot_lq)
        self.name = name or osp.basename(self.dataroot_gt.rstrip('/\\'))
        self.metainfo = dict(name=self.name, scale=self.scale)

    @property
    def _degradation_name(self) -> str:
        deg = self._degradation
        return getattr(deg, 'short_name', None) or type(deg).__name__

    def _made_lq_path(self, gt_path: str) -> str:
        """The ``lq_path`` of an LQ image made from ``gt_path``: ``... (BI x4)``."""
        return f'{gt_path} ({self._degradation_name} x{self.scale})'

    def _parse_item(self, item, default_seed: Optional[int] = None) -> Tuple[int, int]:
        """``index`` or ``(index, seed)`` -> ``(index in range, seed)``.

        A plain index takes ``default_seed``, or a seed drawn from numpy's
        global RNG when that is None.

        Raises:
            TypeError: A tuple that is not ``(index, seed)``.
            IndexError: The index is out of range (names the dataset).
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

    def _repr_fields(self) -> Dict[str, object]:
        """The fields a dataset shows in its repr between ``name`` and ``scale``."""
        return {}

    def __repr__(self) -> str:
        lq = self.dataroot_lq or f'{self._degradation_name} from GT'
        fields = dict(
            name=self.name,
            **self._repr_fields(),
            scale=self.scale,
            backend=self.io_backend,
            gt=self.dataroot_gt,
            lq=lq,
        )
        shown = ', '.join(f'{key}={value!r}' for key, value in fields.items())
        return f'{type(self).__name__}({shown})'
