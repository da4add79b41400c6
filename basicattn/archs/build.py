"""One way to build a network from an arch config, for every tool and model.

Where the arch config comes from, and the function that builds from it:

* an arch config (``{'type': 'A2N', 'upscale': 2}``, an option file's
  ``network_g``): :func:`build_network`;
* an option file: :func:`network_from_options` (read and validated by
  :func:`~basicattn.config.options.read_options`, so the file's ``scale``
  reaches the network);
* a checkpoint that records its arch (``meta['arch']``, written by
  :func:`~basicattn.checkpoint.state.save_weights_checkpoint`):
  :func:`network_from_checkpoint`, which also loads the weights;
* a command line (``-opt FILE`` | ``--arch NAME --arch-args JSON`` | the
  checkpoint's record): :func:`network_config_from_arguments`.

Weights in the authors' formats are found and loaded one layer up, in
:mod:`basicattn.converters.network_loading`.

``build_network(cfg, where)`` checks the config with the option rule of
``network_g`` (:func:`~basicattn.config.options.check_network_config`) and
builds it. A ``ValueError`` that the arch's constructor raises about its
arguments (``A2N: upscale must be 2, 3 or 4``) becomes an
:class:`~basicattn.errors.OptionError` that names ``where`` (``network_g``,
``--arch-args``, a checkpoint's ``meta['arch']``), so a user's mistake is one
line, not a traceback.
"""

import json
from typing import Any, Optional, Sequence, Tuple

import torch.nn as nn

from basicattn.checkpoint.io import safe_load
from basicattn.checkpoint.state import load_weights, recorded_arch
from basicattn.config.options import check_network_config, read_options
from basicattn.errors import OptionError, UserError
from basicattn.registry import ARCHS

__all__ = [
    'arch_config_from_arguments',
    'build_network',
    'check_network_config',
    'network_config_from_arguments',
    'network_from_checkpoint',
    'network_from_options',
    'options_network_config',
]


def build_network(cfg: dict, where: str = 'network_g') -> nn.Module:
    """Check ``cfg`` (:func:`~basicattn.config.options.check_network_config`) and build the arch.

    Args:
        cfg (dict): ``{'type': registered arch, **keyword arguments}``.
        where (str): What the config came from, for messages.

    Returns:
        torch.nn.Module: The network, freshly initialised.
    """

    check_network_config(cfg, where)
    try:
        return ARCHS.build(dict(cfg))
    except ValueError as err:
        if isinstance(err, UserError):
            raise
        raise OptionError(f'{where}: {err}') from None


def options_network_config(path: str, overrides: Sequence[str] = ()) -> dict:
    """The ``network_g`` of an option file, validated, with the file's ``scale``.

    Args:
        path (str): YAML option file (its ``custom_imports`` are imported).
        overrides (Sequence[str]): ``KEY.PATH=VALUE`` strings (``--set``).

    Returns:
        dict: The arch config.
    """

    return dict(read_options(path, overrides, purpose='network')['network_g'])


def network_from_options(path: str, overrides: Sequence[str] = ()) -> nn.Module:
    """Build the ``network_g`` of an option file (:func:`options_network_config`).

    Returns:
        torch.nn.Module: The network, freshly initialised.
    """
    return build_network(options_network_config(path, overrides), f'{path}: network_g')


def network_from_checkpoint(
    path: str, key: Optional[str] = 'state_dict', strict: bool = True, option: str = 'checkpoint'
) -> nn.Module:
    """Build the arch a checkpoint records (``meta['arch']``) and load its weights.

    Args:
        path (str): A basicattn checkpoint (converted weights, or any file
            with ``meta['arch']``).
        key (str | None): Key of the weights (see
            :func:`~basicattn.checkpoint.state.extract_state_dict`).
        strict (bool): Require exactly the arch's keys. Default: True.
        option (str): The option or argument the path came from.

    Returns:
        torch.nn.Module: The network with the weights, in eval mode.

    Raises:
        CheckpointError: No ``meta['arch']``, or weights that do not fit.
    """

    checkpoint = safe_load(path, option=option)
    net = build_network(recorded_arch(checkpoint, path), f"{path}: meta['arch']")
    load_weights(net, checkpoint, key, path, strict)
    return net.eval()


def arch_config_from_arguments(arch: str, arch_args: str = '{}') -> dict:
    """The config named by ``--arch NAME --arch-args JSON`` on a command line."""
    try:
        kwargs = json.loads(arch_args)
    except json.JSONDecodeError as err:
        raise OptionError(f'--arch-args is not valid JSON: {err}') from None
    except RecursionError:  # arrays or objects nested thousands deep
        raise OptionError('--arch-args is nested too deep; give a flat JSON object') from None
    if not isinstance(kwargs, dict):
        raise OptionError(
            f'--arch-args must be a JSON object of keyword arguments, got {arch_args!r}'
        )
    if 'type' in kwargs:
        raise OptionError('--arch-args: give the arch with --arch, not as "type"')
    return dict(type=arch, **kwargs)


def network_config_from_arguments(
    opt: Optional[str] = None,
    arch: Optional[str] = None,
    arch_args: str = '{}',
    checkpoint: Any = None,
    checkpoint_path: Optional[str] = None,
) -> Tuple[dict, str]:
    """The arch config a tool's command line names, and where it came from.

    ``-opt FILE`` (its ``network_g``), else ``--arch NAME --arch-args JSON``,
    else the ``meta['arch']`` that a loaded ``checkpoint`` records.

    Args:
        opt (str, optional): Option file.
        arch (str, optional): Registered arch name.
        arch_args (str): JSON keyword arguments of ``arch``.
        checkpoint (object, optional): A loaded checkpoint.
        checkpoint_path (str, optional): Its file, for messages.

    Returns:
        tuple[dict, str]: The config and ``where`` for :func:`build_network`.

    Raises:
        UserError: Both or none of them name a network.
    """
    if opt and arch:
        raise UserError('give either -opt or --arch, not both')
    if opt:
        return options_network_config(opt), 'network_g'
    if arch:
        return arch_config_from_arguments(arch, arch_args), '--arch/--arch-args'
    if checkpoint is None:
        raise UserError('name the network with -opt or --arch')

    cfg = recorded_arch(checkpoint, checkpoint_path, 'name the network with -opt or --arch')
    return cfg, f"{checkpoint_path}: meta['arch']"
