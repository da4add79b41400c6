"""The subcommands of ``tools/analyze.py``, one module each, found by name.

A command module defines ``COMMAND`` (its name on the command line), ``HELP``
(one line), ``add_arguments(parser)`` and ``run(args) -> int``. Adding a module
here adds a subcommand; nothing else is registered by hand.
"""

import importlib
import pkgutil
from types import ModuleType
from typing import Dict


def available_commands() -> Dict[str, ModuleType]:
    """Every command module of this package, keyed by its ``COMMAND``, in name order."""
    commands = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith('_'):
            continue
        module = importlib.import_module(f'{__name__}.{info.name}')
        commands[module.COMMAND] = module
    return commands
