"""One way to build a network, for every tool and model.

Where the arch config comes from, and the function that builds from it:

* an arch config (``{'type': 'A2N', 'upscale': 2}``, an option file's
  ``network_g``): :func:`build_network`;
* an option file: :func:`network_from_options` (read and validated by
  :func:`~basicattn.engine.options.read_options`, so the file's ``scale``
  reaches the network);
* a checkpoint that records its arch (``meta['arch']``, written by
  :func:`~basicattn.engine.checkpoint_state.save_weights_checkpoint`):
  :func:`network_from_checkpoint`, which also loads the weights;
* a command line (``-opt FILE`` | ``--arch NAME --arch-args JSON`` | the
  checkpoint's record): :func:`network_config_from_arguments`;
* a weights file alone, in any format that
  :func:`basicattn.converters.detect.detect_format` recognises (a recorded
  ``meta['arch']``, ``.safetensors``, the A2N and MANA authors' layouts):
  :func:`network_from_weights`.

``build_network(cfg, where)`` checks the config like an option file's
``network_g`` (a registered ``type``, keyword arguments that the arch takes,
values of the annotated types and bounds) and builds it. A ``ValueError``
that the arch's constructor raises about its arguments (``A2N: upscale must
be 2, 3 or 4``) becomes an :class:`~basicattn.engine.options.OptionError`
that names ``where`` (``network_g``, ``--arch-args``, a checkpoint's
``meta['arch']``), so a user's mistake is one line, not a traceback.
SRModel (train and test), tools/infer.py, tools/get_flops.py,
tools/convert_model.py and the benchmarks build through here.
"""

import json
from typing import Any, Optional, Sequence, Tuple

import torch.nn as nn

from basicattn.errors import UserError

from . import option_schema as S
from .options import OptionError, _Validator


def check_network_config(cfg: Any, where: str = 'network_g') -> None:
    """Raise :class:`OptionError` unless ``cfg`` is a valid arch config.

    Args:
        cfg (dict): ``{'type': registered arch, **keyword arguments}``.
        where (str): What the config came from, for the message.
    """
    if not isinstance(cfg, dict):
        raise OptionError(
            f'{where}: expected a mapping with a `type:` key, got {type(cfg).__name__} {cfg!r}'
        )
    checker = _Validator(where, 'test')
    checker.check_typed('', S.OPTION_SCHEMA.fields['network_g'], cfg)
    if checker.problems:
        raise OptionError('; '.join(f'{where}: {p.lstrip(".")}' for p in checker.problems))


def build_network(cfg: dict, where: str = 'network_g') -> nn.Module:
    """Check ``cfg`` (:func:`check_network_config`) and build the arch.

    Args:
        cfg (dict): ``{'type': registered arch, **keyword arguments}``.
        where (str): What the config came from, for messages.

    Returns:
        torch.nn.Module: The network, freshly initialised.
    """
    from basicattn.registry import ARCHS

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
    from .options import read_options

    return dict(read_options(path, overrides, purpose='test')['network_g'])


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
            :func:`~basicattn.engine.checkpoint_state.extract_state_dict`).
        strict (bool): Require exactly the arch's keys. Default: True.
        option (str): The option or argument the path came from.

    Returns:
        torch.nn.Module: The network with the weights, in eval mode.

    Raises:
        CheckpointError: No ``meta['arch']``, or weights that do not fit.
    """
    from .checkpoint_io import safe_load
    from .checkpoint_state import load_weights, recorded_arch

    checkpoint = safe_load(path, option=option)
    net = build_network(recorded_arch(checkpoint, path), f"{path}: meta['arch']")
    load_weights(net, checkpoint, key, path, strict)
    return net.eval()


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
        checkpoint (object): The loaded file (:func:`~.checkpoint_io.safe_load`).
        path (str): Its path (the file name may state the scale).
        scale (int, optional): ``--scale``, where the file cannot show it.
        key (str, optional): Key of the weights (None: found).
        hint (str): What to do instead, for the unknown-format message.

    Returns:
        tuple[torch.nn.Module, DetectedWeights]: The network (eval mode,
        ``strict=True`` load) and what was detected (format, arch, scale).
    """
    from basicattn.converters.detect import detect_format

    from .checkpoint_state import load_network_weights

    found = detect_format(checkpoint, path, scale=scale, key=key, hint=hint)
    net = build_network(found.arch, found.where)
    load_network_weights(net, found.state_dict, True, path)
    return net.eval(), found


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
    from .checkpoint_state import recorded_arch

    cfg = recorded_arch(checkpoint, checkpoint_path, 'name the network with -opt or --arch')
    return cfg, f"{checkpoint_path}: meta['arch']"


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
    (:func:`~.checkpoint_state.check_checkpoint_scale`). ``tools/infer.py``
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
    from .checkpoint_io import safe_load
    from .checkpoint_state import check_checkpoint_scale, config_scale, load_weights

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
