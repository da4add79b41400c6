"""The ``--device`` of a tool, checked before anything is read or written."""

from __future__ import annotations

import torch

from basicattn.errors import UserError

#: Device types the tools run on (others, e.g. ``meta``, hold no data to compute on).
SUPPORTED_TYPES = ('cpu', 'cuda', 'mps')


def resolve_device(text: str | torch.device, option: str = '--device') -> torch.device:
    """The torch device ``text`` names, when this machine has it.

    Args:
        text (str | torch.device): ``cpu``, ``cuda``, ``cuda:1``, ``mps``.
        option (str): The command-line option, named in errors.

    Returns:
        torch.device: The device.

    Raises:
        UserError: Not a device name, a type the tools do not run on, or a
            device this torch build or machine lacks (one line saying which).
    """
    try:
        device = torch.device(text)
    except (RuntimeError, TypeError, ValueError):
        raise UserError(
            f'{option} {text}: not a device; use cpu, cuda or cuda:N (an NVIDIA GPU) or mps'
        ) from None
    if device.type not in SUPPORTED_TYPES:
        raise UserError(f'{option} {text}: the tools run on {", ".join(SUPPORTED_TYPES)} only')
    if device.type == 'cuda':
        if torch.version.cuda is None and torch.version.hip is None:
            raise UserError(
                f'{option} {text}: this torch {torch.__version__} is built without CUDA; '
                f'use {option} cpu, or install a CUDA build of torch'
            )
        count = torch.cuda.device_count()
        if count == 0:
            raise UserError(
                f'{option} {text}: no CUDA GPU is visible (driver, CUDA_VISIBLE_DEVICES?); '
                f'use {option} cpu'
            )
        if device.index is not None and device.index >= count:
            raise UserError(
                f'{option} {text}: only {count} CUDA GPU(s) are visible (cuda:0 to '
                f'cuda:{count - 1})'
            )
    if device.type == 'mps' and not torch.backends.mps.is_available():
        raise UserError(f'{option} {text}: MPS (Apple GPU) is not available here; use cpu')
    return device
