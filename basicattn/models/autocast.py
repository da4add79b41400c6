"""Autocast for the models: which ``amp`` values exist and where they run.

``train.amp`` / ``val.amp`` end here: :func:`check_amp` is the rule the
runner builder applies to them, :func:`autocast_region` is the context the
models run their forward passes in, and the engine's optimizer wrappers
(:mod:`basicattn.engine.mixed_precision`) scale the fp16 loss.
"""

import warnings
from contextlib import contextmanager
from typing import Any, Iterator, Optional

import torch

from basicattn.errors import OptionError

__all__ = ['AMP_DTYPES', 'amp_dtype', 'autocast_region', 'check_amp', 'default_device_type']

#: ``train.amp`` / ``val.amp`` values and the dtype each autocasts to.
AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


def default_device_type() -> str:
    """The device type the Runner trains on: ``'cuda'`` with a GPU, else ``'cpu'``."""
    from mmengine.device import get_device

    return get_device()


def amp_dtype(amp: Optional[str], key: str = 'train.amp') -> Optional[torch.dtype]:
    """The dtype of an ``amp`` value (None: float32, no autocast)."""
    if amp is None:
        return None
    if amp not in AMP_DTYPES:
        raise OptionError(f'{key}: {amp!r} is not one of {sorted(AMP_DTYPES)} or null')
    return AMP_DTYPES[amp]


def check_amp(amp: Optional[str], key: str, device_type: Optional[str] = None) -> None:
    """Raise an OptionError when ``amp`` cannot run on this machine.

    The check builds the autocast context (PyTorch only warns and disables it
    for a dtype the device cannot autocast to) and, for ``fp16`` in training,
    the device's gradient scaler.

    Raises:
        OptionError: Naming ``key``, the device and what to set instead.
    """
    dtype = amp_dtype(amp, key)
    if dtype is None:
        return
    device_type = device_type or default_device_type()
    hint = 'use bf16' if amp == 'fp16' else 'use fp16 or null'
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('error')
            with torch.autocast(device_type=device_type, dtype=dtype):
                pass
    except (RuntimeError, UserWarning, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise OptionError(
            f'{key}: {amp} autocast is not available on {device_type} with PyTorch '
            f'{torch.__version__} ({reason}); {hint}'
        ) from None
    if amp == 'fp16' and key.startswith('train'):
        _grad_scaler(device_type, True, key)


def _grad_scaler(device_type: str, enabled: bool, key: str = 'train.amp') -> Any:
    try:
        return torch.amp.GradScaler(device_type, enabled=enabled)
    except (AttributeError, TypeError, RuntimeError, ValueError) as err:
        raise OptionError(
            f'{key}: fp16 needs a loss scaler on {device_type}, which PyTorch '
            f'{torch.__version__} does not have ({err}); use bf16'
        ) from None


@contextmanager
def autocast_region(device_type: str, amp: Optional[str]) -> Iterator[None]:
    """Autocast to ``amp``'s dtype on ``device_type`` (None: float32, no autocast)."""
    dtype = amp_dtype(amp, 'amp')
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device_type, dtype=dtype):
        yield
