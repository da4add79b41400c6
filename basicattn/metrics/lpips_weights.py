"""Finding, checking and loading the two weight files of LPIPS.

LPIPS (:mod:`basicattn.metrics.lpips_net`) needs two published files, never
downloaded by basicattn:

* the ImageNet backbone, torchvision's file: ``alexnet-owt-7be5be79.pth``
  (AlexNet) or ``vgg16-397923af.pth`` (VGG16). Default place: the torch hub
  cache, ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints``,
  ``~/.cache/torch/hub/checkpoints`` when ``TORCH_HOME`` is unset), where
  torchvision keeps the files it downloaded; or any path given as
  ``backbone_path``;
* the linear heads of LPIPS v0.1, ``weights/v0.1/<net>.pth`` inside the
  ``lpips`` package. Default: found in an installed ``lpips`` package with
  :func:`importlib.util.find_spec` (the package is located, not imported:
  importing it imports torchvision); or any path given as ``head_path``.

A file that is absent, unreadable or of the wrong layout raises
:class:`~basicattn.errors.CheckpointError` with one line naming the file and
where to put it, when the metric is built, before anything runs. Loaded
networks are shared by every metric built from the same files (one per test
set otherwise).
"""

import importlib.util
import os
import os.path as osp
from typing import Dict, Optional, Tuple

from basicattn.checkpoint.io import safe_load
from basicattn.errors import CheckpointError

from .lpips_net import NETS, LPIPSNet

__all__ = [
    'BACKBONE_FILES',
    'HEAD_FOLDER',
    'default_backbone_path',
    'default_head_path',
    'load_lpips_net',
]

#: torchvision's file names of the ImageNet backbones (the hash prefix is part of the name).
BACKBONE_FILES = {'alex': 'alexnet-owt-7be5be79.pth', 'vgg': 'vgg16-397923af.pth'}
_BACKBONE_NAMES = {'alex': 'AlexNet', 'vgg': 'VGG16'}
#: Where the heads lie inside the ``lpips`` package.
HEAD_FOLDER = ('weights', 'v0.1')
_DOCS = 'docs/metrics.md'

_LOADED: Dict[tuple, LPIPSNet] = {}


def default_backbone_path(net: str) -> str:
    """``<torch hub dir>/checkpoints/<torchvision file name>`` of ``net``.

    The hub folder by torch's documented rule (``$TORCH_HOME/hub``, else
    ``$XDG_CACHE_HOME/torch/hub``, else ``~/.cache/torch/hub``), worked out
    here rather than through ``torch.hub``: nothing in basicattn touches the
    module that downloads (tests/checkpoint/test_checkpoint_safety.py).
    """
    torch_home = os.environ.get('TORCH_HOME') or osp.join(
        os.environ.get('XDG_CACHE_HOME') or osp.join(osp.expanduser('~'), '.cache'), 'torch'
    )
    return osp.join(osp.expanduser(torch_home), 'hub', 'checkpoints', BACKBONE_FILES[net])


def default_head_path(net: str) -> Optional[str]:
    """``<lpips package>/weights/v0.1/<net>.pth``, or None when ``lpips`` is not installed.

    The package is located with :func:`importlib.util.find_spec`, not imported.
    """
    try:
        spec = importlib.util.find_spec('lpips')
    except (ImportError, ValueError):
        return None
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    if not folders:
        return None
    return osp.join(folders[0], *HEAD_FOLDER, f'{net}.pth')


def _where(net: str) -> str:
    return f'LPIPS (net: {net})'


def _given_file(net: str, key: str, given: str, wanted: str) -> str:
    """``backbone_path`` / ``head_path`` as given: it must be a file."""
    if not osp.isfile(given):
        raise CheckpointError(
            f'{_where(net)}: {key} {given} is not a file; give the path of {wanted} (see {_DOCS})'
        )
    return given


def _backbone_path(net: str, given: Optional[str]) -> str:
    name = BACKBONE_FILES[net]
    if given is not None:
        return _given_file(
            net,
            'backbone_path',
            given,
            f"torchvision's {_BACKBONE_NAMES[net]} ImageNet weights {name}",
        )
    path = default_backbone_path(net)
    if not osp.isfile(path):
        raise CheckpointError(
            f"{_where(net)}: torchvision's {_BACKBONE_NAMES[net]} ImageNet weights are not "
            f'at {path}; put {name} there (the torch hub cache, $TORCH_HOME/hub/checkpoints) '
            f'or give its path as backbone_path (see {_DOCS}); basicattn never downloads it'
        )
    return path


def _head_path(net: str, given: Optional[str]) -> str:
    name = '/'.join((*HEAD_FOLDER, f'{net}.pth'))
    if given is not None:
        return _given_file(net, 'head_path', given, f'the linear heads {name} of the lpips package')
    path = default_head_path(net)
    if path is None:
        raise CheckpointError(
            f'{_where(net)}: the linear heads {name} ship in the lpips package, which is not '
            f'installed; run "pip install --no-deps lpips" or give the file as head_path '
            f'(see {_DOCS})'
        )
    if not osp.isfile(path):
        raise CheckpointError(
            f'{_where(net)}: the installed lpips package has no {path}; reinstall it '
            f'("pip install --no-deps --force-reinstall lpips") or give head_path (see {_DOCS})'
        )
    return path


def _read(path: str, option: str, wanted: str):
    import torch

    try:
        state = safe_load(path, option=option)
    except FileNotFoundError as err:  # removed between the check and the read
        raise CheckpointError(f'{option} {path}: not found; give {wanted}') from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f'{option} {path}: not a state dict of tensors; give {wanted}')
    return state


def _resolved(net: str, backbone_path: Optional[str], head_path: Optional[str]) -> Tuple[str, str]:
    if net not in NETS:
        raise CheckpointError(f'LPIPS: net must be one of {", ".join(NETS)}, got {net!r}')
    return _backbone_path(net, backbone_path), _head_path(net, head_path)


def load_lpips_net(
    net: str = 'alex', backbone_path: Optional[str] = None, head_path: Optional[str] = None
) -> LPIPSNet:
    """The LPIPS network of ``net`` with its published weights (frozen, eval mode, CPU).

    Args:
        net (str): ``'alex'`` or ``'vgg'``.
        backbone_path (str, optional): torchvision's ImageNet file; None: the
            torch hub cache (:func:`default_backbone_path`).
        head_path (str, optional): The ``lpips`` package's ``v0.1/<net>.pth``;
            None: found in the installed package (:func:`default_head_path`).

    Returns:
        LPIPSNet: Shared by every call with the same files (unchanged since).

    Raises:
        CheckpointError: A file is missing, unreadable or of the wrong
            layout; one line naming it and where to put it.
    """
    backbone, heads = _resolved(net, backbone_path, head_path)
    stamp = tuple((osp.realpath(p), os.stat(p).st_mtime_ns) for p in (backbone, heads))
    key = (net, stamp)
    if key in _LOADED:
        return _LOADED[key]
    model = LPIPSNet(net)
    b_name, b_file = _BACKBONE_NAMES[net], BACKBONE_FILES[net]
    b_wanted = f"torchvision's {b_name} ImageNet weights {b_file}"
    h_wanted = f'the lpips package weights/v0.1/{net}.pth'
    b_state = _read(backbone, f'{_where(net)} backbone', b_wanted)
    b_state = {k: v for k, v in b_state.items() if k.startswith('features.')}
    h_state = _read(heads, f'{_where(net)} heads', h_wanted)
    for what, path, wanted, load, state in (
        ('backbone', backbone, b_wanted, model.load_backbone, b_state),
        ('heads', heads, h_wanted, model.load_heads, h_state),
    ):
        try:
            load(state)
        except (KeyError, ValueError) as err:
            reason = err.args[0] if err.args else err
            raise CheckpointError(
                f'{_where(net)} {what} {path}: not the expected layout ({reason}); give {wanted}'
            ) from err
    _LOADED[key] = model
    return model
