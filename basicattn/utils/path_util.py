"""Paths from option files: safe single components, and how errors show them."""

import os
import os.path as osp

_SEPARATORS = tuple(sorted({'/', '\\', os.sep} | ({os.altsep} if os.altsep else set())))


def safe_path_component(name, fallback='_'):
    """Turn ``name`` into a single, harmless path component.

    Path separators (and NUL) become ``_``, like the image keys of saved
    results, so a name never leaves the folder it is joined to: ``../x``
    becomes ``.._x``, ``/abs/dir`` becomes ``_abs_dir``; a name made only of
    dots (``.``, ``..``) has its dots replaced too. Safe names are returned
    unchanged, so applying it twice changes nothing.

    Args:
        name: The name (e.g. a dataset's ``name:``); converted with ``str``.
        fallback (str): Used when ``name`` is empty.

    Returns:
        str: A non-empty name without separators that is not ``.`` or ``..``.
    """
    text = str(name)
    for sep in _SEPARATORS + ('\0',):
        text = text.replace(sep, '_')
    if not text.strip('.'):
        text = text.replace('.', '_')
    return text or fallback


def shown_path(path) -> str:
    """A path as an error message shows it: absolute, and for a relative one also as written.

    Paths in option files and on the command line are relative to the current
    directory (as in BasicSR); naming what a relative path resolved to tells a
    user who ran a tool from another folder what went wrong.

    Args:
        path (str | os.PathLike): The path as the user gave it.

    Returns:
        str: ``/abs/path`` for an absolute path, else
        ``rel/path (= /cwd/rel/path; relative to the current directory)``.
    """
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if osp.isabs(text):
        return text
    return f'{text} (= {osp.abspath(text)}; relative to the current directory)'
