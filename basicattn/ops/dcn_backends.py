"""Optional compiled backends for modulated deformable convolution.

``'torch'`` (this package's pure PyTorch op) is always available. ``'mmcv'``
(``mmcv.ops.modulated_deform_conv2d``) and ``'torchvision'``
(``torchvision.ops.deform_conv2d``) use the same offset / mask layout and are
used only when asked for. Whether they work is found out lazily, the first
time one is asked for on a device type: the module must import *and* a tiny
convolution must run and agree with ``F.conv2d`` (torchvision's compiled ops
import on this CPU-only build but fail when called; mmcv without its compiled
ops fails on import). The answer is cached per (backend, device type).

``'auto'`` resolves to :func:`get_default_dcn_backend`, which is ``'torch'``
unless :func:`set_default_dcn_backend` or the ``BASICATTN_DCN_BACKEND``
environment variable says otherwise; an unusable default falls back to
``'torch'`` with a warning (an explicitly requested backend that does not work
raises instead).
"""

import os
import warnings
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F

__all__ = [
    'DCN_BACKENDS',
    'dcn_backend_status',
    'get_default_dcn_backend',
    'set_default_dcn_backend',
    'resolve_dcn_backend',
    'get_dcn_backend_fn',
]

DCN_BACKENDS = ('torch', 'mmcv', 'torchvision')
_ENV_VAR = 'BASICATTN_DCN_BACKEND'

_default_backend: Optional[str] = None
# (backend, device type) -> (callable or None, reason)
_probe_cache: Dict[Tuple[str, str], Tuple[Optional[Callable], str]] = {}
_warned: set = set()


def _check_name(name: str, argname: str, allow_auto: bool) -> str:
    choices = DCN_BACKENDS + (('auto',) if allow_auto else ())
    if name not in choices:
        raise ValueError(f'{argname} must be one of {choices}, got {name!r}')
    return name


def set_default_dcn_backend(name: Optional[str]) -> None:
    """Set what ``backend='auto'`` means (``None`` restores the default).

    Args:
        name (str | None): ``'torch'``, ``'mmcv'``, ``'torchvision'`` or
            ``None`` (environment variable, else ``'torch'``).
    """
    global _default_backend
    if name is not None:
        _check_name(name, 'name', allow_auto=False)
    _default_backend = name


def get_default_dcn_backend() -> str:
    """Return what ``backend='auto'`` asks for before availability checks."""
    if _default_backend is not None:
        return _default_backend
    env = os.environ.get(_ENV_VAR, '').strip()
    if env:
        return _check_name(env, f'environment variable {_ENV_VAR}', allow_auto=False)
    return 'torch'


def _import_backend(name: str) -> Callable:
    if name == 'mmcv':
        from mmcv.ops import modulated_deform_conv2d as mmcv_op

        def run(
            input, offset, mask, weight, bias, stride, padding, dilation, groups, deform_groups
        ):
            if mask is None:
                mask = input.new_ones(offset.shape[0], offset.shape[1] // 2, *offset.shape[2:])
            return mmcv_op(
                input.contiguous(),
                offset.contiguous(),
                mask.contiguous(),
                weight,
                bias,
                stride,
                padding,
                dilation,
                groups,
                deform_groups,
            )

        return run
    if name == 'torchvision':
        from torchvision.ops import deform_conv2d as tv_op

        def run(
            input, offset, mask, weight, bias, stride, padding, dilation, groups, deform_groups
        ):
            # torchvision infers groups from weight.shape[1] and the
            # deformable groups from offset.shape[1]; the layout is mmcv's.
            return tv_op(
                input,
                offset,
                weight,
                bias,
                stride=stride,
                padding=padding,
                dilation=dilation,
                mask=mask,
            )

        return run
    raise ValueError(f'no compiled backend called {name!r}')


def _probe(name: str, device: torch.device) -> Tuple[Optional[Callable], str]:
    key = (name, device.type)
    if key in _probe_cache:
        return _probe_cache[key]
    try:
        fn = _import_backend(name)
        x = torch.arange(2 * 4 * 5, dtype=torch.float32, device=device).view(1, 2, 4, 5) / 10
        weight = torch.ones(3, 2, 3, 3, device=device) / 9
        offset = torch.zeros(1, 18, 4, 5, device=device)
        mask = torch.ones(1, 9, 4, 5, device=device)
        out = fn(x, offset, mask, weight, None, (1, 1), (1, 1), (1, 1), 1, 1)
        ref = F.conv2d(x, weight, padding=1)
        if not torch.allclose(out, ref, atol=1e-5):
            raise RuntimeError('a zero-offset test convolution disagrees with F.conv2d')
        result = (fn, 'ok')
    except Exception as err:  # any failure means "not usable here"
        result = (None, f'{type(err).__name__}: {err}'.strip())
    _probe_cache[key] = result
    return result


def dcn_backend_status(name: str, device: Optional[torch.device] = None) -> Tuple[bool, str]:
    """Whether a backend imports and works on a device type.

    Args:
        name (str): ``'torch'``, ``'mmcv'`` or ``'torchvision'``.
        device (torch.device): Device to probe. Defaults to CPU.

    Returns:
        tuple[bool, str]: ``(usable, reason)``.
    """
    _check_name(name, 'name', allow_auto=False)
    if name == 'torch':
        return True, 'ok'
    fn, reason = _probe(name, torch.device('cpu' if device is None else device))
    return fn is not None, reason


def resolve_dcn_backend(backend: str, device: torch.device) -> str:
    """Turn ``'auto'`` into a concrete, usable backend name.

    Args:
        backend (str): ``'auto'``, ``'torch'``, ``'mmcv'`` or
            ``'torchvision'``.
        device (torch.device): Device the op runs on.

    Returns:
        str: The backend to use.
    """
    _check_name(backend, 'backend', allow_auto=True)
    if backend != 'auto':
        return backend
    wanted = get_default_dcn_backend()
    if wanted == 'torch':
        return 'torch'
    usable, reason = dcn_backend_status(wanted, device)
    if usable:
        return wanted
    if (wanted, device.type) not in _warned:
        _warned.add((wanted, device.type))
        warnings.warn(
            f'DCN backend {wanted!r} is not usable on '
            f'{device.type} ({reason}); using the torch backend',
            stacklevel=2,
        )
    return 'torch'


def get_dcn_backend_fn(name: str, device: torch.device) -> Callable:
    """Callable of a compiled backend, or ``RuntimeError`` if unusable.

    Args:
        name (str): ``'mmcv'`` or ``'torchvision'``.
        device (torch.device): Device the op runs on.

    Returns:
        Callable: ``fn(input, offset, mask, weight, bias, stride, padding,
        dilation, groups, deform_groups)``.
    """
    fn, reason = _probe(name, torch.device('cpu' if device is None else device))
    if fn is None:
        raise RuntimeError(f'DCN backend {name!r} is not usable on {device.type}: {reason}')
    return fn
