"""Option files -> mmengine Runner, plus the loops and hooks basicattn adds.

Importing this package registers the loops and hooks (it is the location of
the LOOPS and HOOKS registries).
"""

from . import hooks, loops, nan_guard, stage_hook  # noqa: F401  (registration)
from .builder import build_runner, runner_cfg
from .options import OptionError, apply_overrides, read_options, validate_options

__all__ = [
    'build_runner',
    'runner_cfg',
    'OptionError',
    'apply_overrides',
    'read_options',
    'validate_options',
]
