"""Names from option files made safe to use as one component of a path."""

import os

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
