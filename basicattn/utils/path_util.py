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


def broken_link_target(path):
    """The target of ``path`` when it is a symbolic link to nothing, else None."""
    try:
        if osp.islink(path) and not osp.exists(path):
            return os.readlink(path)
    except (OSError, ValueError):  # unreadable link, NUL in the name
        pass
    return None


def not_found(what, path, shown=None) -> str:
    """``'<what> not found: <path>'``, or, for a broken symbolic link, what it points to.

    A name that exists but cannot be opened is not "not found": a dangling
    link (a moved data folder, an unmounted disk) is named as such.

    Args:
        what (str): What the path should be (``'GT folder'``, ``'input'``).
        path (str | os.PathLike): The path as given.
        shown (str, optional): The path as the message shows it (default: ``path``).
    """
    shown = os.fspath(path) if shown is None else shown
    target = broken_link_target(path)
    if target is not None:
        return (
            f'{what} {shown} is a broken symbolic link: it points to {target}, which does not exist'
        )
    return f'{what} not found: {shown}'


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
