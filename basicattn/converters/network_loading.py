"""The network that a weights file or a tool's command line names, with its weights.

:func:`network_from_weights` builds the arch of a weights file in any format
that :func:`basicattn.converters.detect.detect_format` recognises (a recorded
``meta['arch']``, ``.safetensors``, the A2N and MANA authors' layouts);
:func:`network_from_arguments` is what ``tools/infer.py``, ``tools/export.py``
and the analyses build their network with. Building from a config is
:mod:`basicattn.archs.build`, one layer down.
"""

from typing import Any, Optional, Tuple

import torch.nn as nn

from basicattn.archs.build import build_network, network_config_from_arguments
from basicattn.checkpoint.io import safe_load
from basicattn.checkpoint.state import (
    check_checkpoint_scale,
    config_scale,
    load_network_weights,
    load_weights,
)
from basicattn.converters.detect import detect_format
from basicattn.errors import UserError

__all__ = ['network_from_arguments', 'network_from_weights']


def network_from_weights(
    checkpoint: Any,
    path: str,
    scale: Optional[int] = None,
    key: Optional[str] = None,
    hint: str = 'name the network with -opt or --arch',
) -> Tuple[nn.Module, Any]:
    """Build the network a loaded weights file belongs to, with its weights.

    The format and arch come from
    :func:`~basicattn.converters.detect.detect_format` (the file's
    ``meta['arch']``, or an authors' layout told from its keys and shapes).

    Args:
        checkpoint (object): The loaded file (:func:`~basicattn.checkpoint.io.safe_load`).
        path (str): Its path (the file name may state the scale).
        scale (int, optional): ``--scale``, where the file cannot show it.
        key (str, optional): Key of the weights (None: found).
        hint (str): What to do instead, for the unknown-format message.

    Returns:
        tuple[torch.nn.Module, DetectedWeights]: The network (eval mode,
        ``strict=True`` load) and what was detected (format, arch, scale).
    """

    found = detect_format(checkpoint, path, scale=scale, key=key, hint=hint)
    net = build_network(found.arch, found.where)
    load_network_weights(net, found.state_dict, True, path)
    return net.eval(), found


def network_from_arguments(
    opt: Optional[str] = None,
    arch: Optional[str] = None,
    arch_args: str = '{}',
    checkpoint_path: Optional[str] = None,
    scale: Optional[int] = None,
    param_key: Optional[str] = None,
    report: Any = print,
) -> Tuple[nn.Module, dict]:
    """The network a tool's command line names, with its weights, in eval mode on the CPU.

    ``-opt FILE`` (its ``network_g``) or ``--arch NAME --arch-args JSON``, with
    the weights of ``--checkpoint`` loaded strictly; with neither, the
    weights file alone (:func:`network_from_weights`: a recorded
    ``meta['arch']`` or a detected authors' format, whose finding is passed
    to ``report`` in one line). Weights that record another scale than the
    network's (or ``--scale``) are refused
    (:func:`~basicattn.checkpoint.state.check_checkpoint_scale`). ``tools/infer.py``
    and ``tools/export.py`` build their network here.

    Args:
        opt, arch, arch_args: ``-opt``, ``--arch``, ``--arch-args``.
        checkpoint_path (str, optional): ``--checkpoint``.
        scale (int, optional): ``--scale``, for weights that do not show it.
        param_key (str, optional): ``--param-key`` (None: found).
        report (callable): Receives the line saying what the weights were found to be.

    Returns:
        tuple[nn.Module, dict]: The network and its arch config.

    Raises:
        UserError: No network named, or an arch with parameters but no ``--checkpoint``.
    """

    checkpoint = safe_load(checkpoint_path, option='--checkpoint') if checkpoint_path else None
    if checkpoint is not None and not (opt or arch):
        net, found = network_from_weights(checkpoint, checkpoint_path, scale, param_key)
        shown = f'x{found.scale} from {found.scale_source}' if found.scale else 'scale not known'
        report(f'{checkpoint_path}: {found.name} weights, {found.arch["type"]} ({shown})')
        return net, found.arch
    cfg, where = network_config_from_arguments(opt, arch, arch_args, checkpoint, checkpoint_path)
    net = build_network(cfg, where)
    if checkpoint is not None:
        expected = config_scale(cfg) if config_scale(cfg) is not None else scale
        named = f'-opt {opt} (network_g)' if opt else ('--arch-args' if arch else where)
        check_checkpoint_scale(checkpoint, checkpoint_path, expected, named)
        load_weights(net, checkpoint, param_key, checkpoint_path)
    elif any(True for _ in net.parameters()):
        raise UserError(f'{cfg["type"]} has parameters: pass --checkpoint')
    return net.eval(), cfg
