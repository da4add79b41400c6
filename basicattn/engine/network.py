"""One way to build a network from an arch config, for every tool and model.

``build_network(cfg, where)`` checks the config like an option file's
``network_g`` (a registered ``type``, keyword arguments that the arch takes,
values of the annotated types and bounds) and builds it. A ``ValueError``
that the arch's constructor raises about its arguments (``A2N: upscale must
be 2, 3 or 4``) becomes an :class:`~basicattn.engine.options.OptionError`
that names ``where`` (``network_g``, ``--arch-args``, a checkpoint's
``meta['arch']``), so a user's mistake is one line, not a traceback.
"""

import json

from basicattn.errors import UserError

from . import option_schema as S
from .options import OptionError, _Validator


def check_network_config(cfg, where='network_g'):
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


def build_network(cfg, where='network_g'):
    """Check ``cfg`` (:func:`check_network_config`) and build the arch.

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


def arch_config_from_arguments(arch, arch_args='{}'):
    """The config named by ``--arch NAME --arch-args JSON`` on a command line."""
    try:
        kwargs = json.loads(arch_args)
    except json.JSONDecodeError as err:
        raise OptionError(f'--arch-args is not valid JSON: {err}') from None
    if not isinstance(kwargs, dict):
        raise OptionError(
            f'--arch-args must be a JSON object of keyword arguments, got {arch_args!r}'
        )
    if 'type' in kwargs:
        raise OptionError('--arch-args: give the arch with --arch, not as "type"')
    return dict(type=arch, **kwargs)
