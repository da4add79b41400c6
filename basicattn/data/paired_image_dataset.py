"""Paired GT / LQ image dataset for single-image super-resolution."""

import os
import os.path as osp
from typing import Optional, Tuple, Union

import numpy as np

from basicattn.errors import DataError
from basicattn.registry import DATASETS
from basicattn.utils.bounds import PositiveInt
from basicattn.utils.img_util import imfrombytes, img2tensor, imread, mod_crop
from basicattn.utils.path_util import not_found
from basicattn.utils.text_file import read_text_lines

from .base_dataset import SRDatasetBase
from .lmdb_io import (
    IMG_SUFFIXES,
    LmdbKeyError,
    LmdbReader,
    check_unique_keys,
    is_lmdb,
    require_lmdb,
    scan_images,
)
from .transforms import augment, paired_random_crop

__all__ = ['PairedImageDataset']


def _read_meta_info_list(meta_info_file):
    """First token of every non-blank line of a BasicSR meta info file."""
    if not osp.isfile(meta_info_file):
        raise FileNotFoundError(not_found('meta_info_file', meta_info_file))
    names = []
    for lineno, line in enumerate(read_text_lines(meta_info_file, 'meta_info_file'), start=1):
        fields = line.split()
        if fields:
            names.append((fields[0], lineno))
    return names


def _lq_key(gt_key, filename_tmpl):
    """LQ key for a GT key: the template applied to the file's base name."""
    head, base = gt_key.rsplit('/', 1) if '/' in gt_key else ('', gt_key)
    name = filename_tmpl.format(base)
    return f'{head}/{name}' if head else name


@DATASETS.register_module()
class PairedImageDataset(SRDatasetBase):
    """GT images with their low-quality (LQ) counterparts.

    Samples are named by *keys*: the GT image's path relative to
    ``dataroot_gt`` without extension (``0801``, ``sub/0001``), the same as
    the keys of an LMDB built from that folder, so the disk and LMDB backends
    yield identical samples. The LQ image of a key is found by applying
    ``filename_tmpl`` to its base name (``'{}x4'`` maps ``0801`` to
    ``0801x4``). Without ``dataroot_lq`` the LQ image is made on the fly:
    the GT is cropped to a multiple of ``scale`` and degraded with
    ``degradation`` (default BI, the MATLAB-exact bicubic ``imresize``;
    see ``basicattn/data/degradation_transform.py`` for BI, BD and DN).

    An item is either an index or a tuple ``(index, seed)``. With a seed,
    every random choice (crop position, flips) is drawn from
    ``np.random.default_rng(seed)``, so the sample is a pure function of
    ``(index, seed)``; a plain index draws the seed from numpy's global RNG.
    A random degradation (DN) draws its noise from that seed and the key
    (``default_rng([seed, crc32(key)])``), unless it has a fixed ``seed`` of
    its own.

    Args:
        dataroot_gt (str): GT image folder, or LMDB folder with
            ``io_backend='lmdb'``.
        dataroot_lq (str, optional): LQ image folder or LMDB. None makes
            the LQ images from the GT with ``degradation``.
        scale (int): Upscaling factor. Defaults to 4.
        io_backend (str | dict): ``'disk'`` or ``'lmdb'`` (a BasicSR-style
            ``dict(type='lmdb')`` is accepted too). Defaults to ``'disk'``.
        meta_info_file (str, optional): Disk backend only: a text file whose
            lines start with GT paths relative to ``dataroot_gt``; only
            those images are used, in that order.
        filename_tmpl (str): Template giving the LQ name from the GT base
            name. Defaults to ``'{}'``.
        gt_size (int, optional): Side of the random training crop, in GT
            pixels (a multiple of ``scale``). None uses whole images.
        use_hflip (bool): Random horizontal flips. Defaults to False.
        use_rot (bool): Random vertical flips and transposes (rotations by
            multiples of 90 degrees). Defaults to False.
        degradation (str | dict): How LQ images are made when
            ``dataroot_lq`` is None: ``'BI'``, ``'BD'``, ``'DN'`` (defaults
            of :class:`BIDegradation` ...) or a config dict such as
            ``{type: BDDegradation, sigma: 1.6}`` / ``{type: DN, seed: 0}``
            naming a registered transform (``scale`` is filled in).
            Defaults to ``'BI'``.
        name (str, optional): Display name; defaults to the base name of
            ``dataroot_gt``.
        repeat (int): The dataset's length is ``repeat`` times the number of
            images (for tiny training sets). Defaults to 1.
    """

    def __init__(
        self,
        dataroot_gt: str,
        dataroot_lq: Optional[str] = None,
        scale: PositiveInt = 4,
        io_backend: Union[str, dict] = 'disk',
        meta_info_file: Optional[str] = None,
        filename_tmpl: str = '{}',
        gt_size: Optional[PositiveInt] = None,
        use_hflip: bool = False,
        use_rot: bool = False,
        degradation: Union[str, dict] = 'BI',
        name: Optional[str] = None,
        repeat: PositiveInt = 1,
    ):
        super().__init__(
            dataroot_gt, dataroot_lq, scale, io_backend, gt_size, degradation, name, repeat
        )
        if not isinstance(filename_tmpl, str) or '{}' not in filename_tmpl:
            raise ValueError(
                f"filename_tmpl must be a string holding '{{}}', got {filename_tmpl!r}"
            )
        self.meta_info_file = meta_info_file
        self.filename_tmpl = filename_tmpl
        self.use_hflip = bool(use_hflip)
        self.use_rot = bool(use_rot)

        self._gt_reader = None
        self._lq_reader = None
        if io_backend == 'lmdb':
            self.samples = self._init_lmdb()
        else:
            self.samples = self._init_disk()
        if not self.samples:
            raise DataError(
                f'dataset {self.name!r} is empty: no images found in {self.dataroot_gt}'
            )

    # -- indexing --------------------------------------------------------
    def _init_disk(self):
        for root in (self.dataroot_gt, self.dataroot_lq):
            if root is not None and is_lmdb(root):
                raise DataError(f"{root} is an LMDB database; set io_backend='lmdb' to read it")
        if not osp.isdir(self.dataroot_gt):
            raise FileNotFoundError(not_found('GT folder', self.dataroot_gt))
        if self.meta_info_file is not None:
            gt_items = []
            for rel, lineno in _read_meta_info_list(self.meta_info_file):
                path = self._find_image(self.dataroot_gt, rel)
                if path is None:
                    raise FileNotFoundError(
                        f'{self.meta_info_file}, line {lineno}: GT image '
                        f'{osp.join(self.dataroot_gt, rel)} not found'
                    )
                stem, ext = osp.splitext(rel)
                key = stem if ext.lower() in IMG_SUFFIXES else rel
                gt_items.append((key.replace(os.sep, '/'), path))
        else:
            gt_items = scan_images(self.dataroot_gt)
        check_unique_keys(gt_items)

        if self.dataroot_lq is None:
            return [(key, path, None) for key, path in gt_items]
        if not osp.isdir(self.dataroot_lq):
            raise FileNotFoundError(not_found('LQ folder', self.dataroot_lq))
        samples = []
        for key, gt_path in gt_items:
            lq_key = _lq_key(key, self.filename_tmpl)
            gt_ext = osp.splitext(gt_path)[1]
            lq_path = self._find_image(self.dataroot_lq, lq_key, prefer=gt_ext)
            if lq_path is None:
                expected = osp.join(self.dataroot_lq, lq_key + gt_ext)
                raise FileNotFoundError(
                    f'LQ image for GT {gt_path} not found: expected '
                    f'{expected} (or another image suffix; filename_tmpl '
                    f'{self.filename_tmpl!r})'
                )
            samples.append((key, gt_path, lq_path))
        return samples

    @staticmethod
    def _find_image(root, rel, prefer=None):
        """Path of ``rel`` under ``root``, trying image suffixes if needed."""
        path = osp.join(root, rel)
        if osp.splitext(rel)[1].lower() in IMG_SUFFIXES and osp.isfile(path):
            return path
        suffixes = ([prefer] if prefer else []) + list(IMG_SUFFIXES)
        for suffix in suffixes + [s.upper() for s in IMG_SUFFIXES]:
            if osp.isfile(path + suffix):
                return path + suffix
        return None

    def _init_lmdb(self):
        if self.meta_info_file is not None:
            raise ValueError(
                'meta_info_file is for the disk backend; with the LMDB '
                f'backend the keys come from {self.dataroot_gt}/meta_info.txt'
            )
        for root, role in ((self.dataroot_gt, 'GT'), (self.dataroot_lq, 'LQ')):
            if root is not None:
                require_lmdb(root, f'{role} LMDB')
        self._gt_reader = LmdbReader(self.dataroot_gt)
        keys = self._gt_reader.keys()
        if self.dataroot_lq is None:
            return [(key, key, None) for key in keys]
        self._lq_reader = LmdbReader(self.dataroot_lq)
        lq_keys = set(self._lq_reader.keys())
        samples = []
        for key in keys:
            lq_key = _lq_key(key, self.filename_tmpl)
            if lq_key not in lq_keys and key not in self._gt_reader:
                raise LmdbKeyError(  # the GT list is wrong, not the LQ database
                    f'GT key {key!r} is listed in {osp.join(self.dataroot_gt, "meta_info.txt")} '
                    f'but not stored in the GT LMDB {self.dataroot_gt}; rebuild the LMDB '
                    '(tools/create_lmdb.py) or remove that line'
                )
            if lq_key not in lq_keys:
                raise LmdbKeyError(
                    f'LQ key {lq_key!r} for GT key {key!r} not found in LMDB '
                    f'{self.dataroot_lq} (filename_tmpl '
                    f'{self.filename_tmpl!r})'
                )
            samples.append((key, key, lq_key))
        return samples

    def __len__(self) -> int:
        return len(self.samples) * self.repeat

    # -- loading ---------------------------------------------------------
    def _load(self, reader, loc):
        if reader is None:
            return imread(loc)
        return imfrombytes(reader.get(loc), f'{reader.db_path}:{loc}')

    def _display_path(self, reader, loc):
        return loc if reader is None else f'{reader.db_path}/{loc}'

    def __getitem__(self, item: Union[int, Tuple[int, int]]) -> dict:
        """Load one sample.

        Args:
            item (int | tuple[int, int]): An index, or ``(index, seed)`` to
                draw every random choice from ``np.random.default_rng(seed)``.

        Returns:
            dict: ``lq`` (float32 tensor ``(3, h, w)`` in [0, 1]), ``gt``
            (float32 tensor ``(3, H, W)``), ``key``, ``lq_path`` and
            ``gt_path``.
        """
        index, seed = self._parse_item(item)
        rng = np.random.default_rng(seed)
        key, gt_loc, lq_loc = self.samples[index % len(self.samples)]

        gt_path = self._display_path(self._gt_reader, gt_loc)
        img_gt = self._load(self._gt_reader, gt_loc)
        if lq_loc is None:
            img_gt = mod_crop(img_gt, self.scale)
            img_lq = self._degradation.degrade(img_gt, seed=seed, key=key)
            lq_path = self._made_lq_path(gt_path)
        else:
            lq_path = self._display_path(self._lq_reader, lq_loc)
            img_lq = self._load(self._lq_reader, lq_loc)
            expected = (img_lq.shape[0] * self.scale, img_lq.shape[1] * self.scale)
            if img_gt.shape[:2] != expected:
                raise DataError(
                    f'GT {gt_path} has shape {img_gt.shape} but LQ {lq_path} '
                    f'has shape {img_lq.shape}; GT must be scale '
                    f'{self.scale} x LQ'
                )

        if self.gt_size is not None:
            img_gt, img_lq = paired_random_crop(
                img_gt, img_lq, self.gt_size, self.scale, rng, gt_path
            )
        if self.use_hflip or self.use_rot:
            img_gt, img_lq = augment(
                [img_gt, img_lq], hflip=self.use_hflip, rotation=self.use_rot, rng=rng
            )
        return dict(
            lq=img2tensor(img_lq), gt=img2tensor(img_gt), key=key, lq_path=lq_path, gt_path=gt_path
        )

    def _repr_fields(self) -> dict:
        return dict(num_images=len(self.samples), repeat=self.repeat)
