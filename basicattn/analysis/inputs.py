"""What the analysis commands read: the network, and the LR inputs one at a time.

The network comes from :func:`basicattn.converters.network_loading.network_from_arguments`
(``--checkpoint``, ``-opt``, ``--arch``, ``--scale`` as in ``tools/infer.py``,
authors' files included). Inputs:

* image archs: LR image files and folders of them (every image directly
  inside, natural order);
* video archs (a ``num_frames`` attribute): clip folders of frames; each
  clip is analysed once, on the window of ``num_frames`` frames around its
  middle frame (mirrored at the ends), the frame the attention figures
  are drawn on. A folder holding clip folders (and no images) stands for
  each of them.
"""

import os
import os.path as osp
from dataclasses import dataclass
from typing import Iterator, List, Sequence

import numpy as np
import torch

from basicattn.converters.network_loading import network_from_arguments
from basicattn.data.frame_io import IMG_SUFFIXES, list_images
from basicattn.data.video_window import frame_window
from basicattn.errors import DataError
from basicattn.models.acceleration import (
    apply_memory_format,
    input_memory_format,
    prefers_channels_last,
)
from basicattn.utils.img_util import img2tensor, imread

__all__ = [
    'AnalysisInput',
    'load_network',
    'network_input',
    'list_inputs',
    'read_input',
]


@dataclass
class AnalysisInput:
    """One analysed input: its name, the network input and the RGB frames to draw on."""

    name: str
    tensor: torch.Tensor  # (1, C, H, W) or (1, T, C, H, W), [0, 1]
    frames: List[np.ndarray]  # uint8 HWC RGB: the image, or the window's frames


def load_network(args):
    """The network of ``args`` (:func:`~basicattn.utils.run_arguments.add_network_arguments`).

    In the arch's preferred memory format, as ``tools/infer.py`` runs it
    (channels_last for A2N, DAN: measured faster on CPU); feed it inputs
    through :func:`network_input`.
    """

    net, cfg = network_from_arguments(
        args.opt, args.arch, args.arch_args, args.checkpoint, args.scale, args.param_key
    )
    return apply_memory_format(net.eval(), prefers_channels_last(net)), cfg


def network_input(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` in the memory format :func:`load_network` gave ``net``."""

    return input_memory_format(x, prefers_channels_last(net))


def _images_in(folder: str) -> List[str]:

    return list_images(folder)


def list_inputs(paths: Sequence[str], video: bool) -> List[str]:
    """The image files (image archs) or clip folders (video archs) named by ``paths``.

    Raises:
        DataError: A path that does not exist, or holds nothing to analyse.
    """

    found: List[str] = []
    for path in paths:
        if not osp.exists(path):
            raise DataError(f'input not found: {path}')
        if not video:
            found += _images_in(path) if osp.isdir(path) else [path]
            continue
        if not osp.isdir(path):
            raise DataError(f'{path}: a video arch reads clip folders of frames, not a file')
        has_images = any(osp.splitext(n)[1].lower() in IMG_SUFFIXES for n in os.listdir(path))
        subdirs = sorted(d for d in os.listdir(path) if osp.isdir(osp.join(path, d)))
        if has_images or not subdirs:
            found.append(path)
        else:
            found += [osp.join(path, d) for d in subdirs]
    return found


def _name(path: str, paths: Sequence[str]) -> str:
    base = osp.splitext(osp.basename(osp.normpath(path)))[0]
    if sum(osp.splitext(osp.basename(osp.normpath(p)))[0] == base for p in paths) > 1:
        parent = osp.basename(osp.dirname(osp.normpath(path)))
        return f'{parent}_{base}'
    return base


def read_input(path: str, paths: Sequence[str], num_frames=None) -> AnalysisInput:
    """Read one image (``num_frames`` None) or the middle window of a clip folder."""

    name = _name(path, paths)
    if num_frames is None:
        img = imread(path)
        return AnalysisInput(name, img2tensor(img)[None], [img])
    files = _images_in(path)
    ids = frame_window(len(files) // 2, len(files), num_frames, 1, 'reflection')
    frames = [imread(files[i]) for i in ids]
    if len({f.shape for f in frames}) != 1:
        raise DataError(f'{path}: the frames differ in size')
    return AnalysisInput(name, torch.stack([img2tensor(f) for f in frames])[None], frames)


def iter_inputs(paths: Sequence[str], net: torch.nn.Module) -> Iterator[AnalysisInput]:
    """Every input of ``paths`` (from :func:`list_inputs`), read when reached."""
    for path in paths:
        yield read_input(path, paths, getattr(net, 'num_frames', None))
