"""``custom_imports``: import the user's modules before an option file is validated.

A module that is missing, or raises while it is imported, becomes one
:class:`~basicattn.errors.OptionError` line naming the option file, the
module, the module's file and the exception.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import os.path as osp
import sys
from collections.abc import Sequence

from basicattn.errors import OptionError


def import_custom_modules(
    modules: str | Sequence[str], option_dir: str | None = None, source: str | None = None
) -> None:
    """Import the modules named by ``custom_imports`` (registering their classes).

    The option file's folder and the current directory are searched first.

    Args:
        modules (str | list[str]): Module names.
        option_dir (str, optional): Folder of the option file.
        source (str, optional): The option file, named in errors.

    Raises:
        OptionError: A module is missing, or raised while being imported (the
            message names the module, its file and the exception).
    """
    if isinstance(modules, str):
        modules = [modules]
    source = source or option_dir or '<options>'
    for folder in filter(None, [os.getcwd(), option_dir]):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as err:  # noqa: BLE001  (any failure is the module's, not ours)
            raise OptionError(source, [_import_problem(name, err)]) from None


def _is_missing_module(name, err):
    """True when ``err`` says that ``name`` itself (or a package above it) is not found."""
    if not isinstance(err, ModuleNotFoundError) or not err.name:
        return False
    return name == err.name or name.startswith(err.name + '.')


def _module_file(name):
    """The file a module is loaded from, or None when it cannot be found."""
    try:
        spec = importlib.util.find_spec(name)
    except Exception:  # noqa: BLE001  (a parent package that fails to import)
        return None
    origin = getattr(spec, 'origin', None)
    return origin if origin and osp.isfile(origin) else None


def _first_line(text, limit=300):
    line = next((part for part in str(text).splitlines() if part.strip()), '')
    return line if len(line) <= limit else line[: limit - 3] + '...'


def _raised_at(err):
    """``file:line`` of the innermost frame of the exception's traceback."""
    if isinstance(err, SyntaxError) and err.filename:
        return f'{err.filename}:{err.lineno}' if err.lineno else err.filename
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return f'{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}' if tb is not None else None


def _import_problem(name, err):
    """One line on why ``custom_imports`` could not import ``name``."""
    if _is_missing_module(name, err):
        return f'custom_imports: cannot import {name!r}: {err}'
    where = _module_file(name)
    at = _raised_at(err)
    text = f'custom_imports: importing {name!r}'
    if where:
        text += f' ({where})'
    message = err.msg if isinstance(err, SyntaxError) and err.msg else _first_line(err)
    text += f' failed: {type(err).__name__}: {message}'
    if at and (not where or not at.startswith(where + ':')):
        text += f' (raised at {at})'
    elif at:
        text += f' (line {at.rsplit(":", 1)[1]})'
    return text + '; fix the module or remove it from custom_imports'
