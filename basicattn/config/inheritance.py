"""Option files that inherit: ``_base_`` and ``_delete_`` (docs/option_inheritance.md).

:func:`load_option_file` reads a file with its bases merged in and returns,
for every key path, the file that wrote it, so that validation errors name
the file in which a bad key was written.
"""

from __future__ import annotations

import os.path as osp
from collections.abc import Mapping
from copy import deepcopy

from basicattn.config.yaml_io import load_yaml_file
from basicattn.errors import OptionError
from basicattn.utils.path_util import broken_link_target

BASE_KEY = '_base_'
DELETE_KEY = '_delete_'
#: How many ``_base_`` files may lead to one another (shipped chains have 2 or 3).
MAX_BASE_CHAIN = 32


def load_option_file(path: str) -> tuple[dict, dict[str, str]]:
    """Read an option file with the files that its ``_base_`` names merged in.

    ``_base_: FILE`` or ``_base_: [FILE, ...]`` (paths relative to the file
    that names them) are read first, recursively, and merged in order; the
    file itself is merged last. Mappings merge key by key, every other value
    (lists included) replaces the inherited one, and a mapping written with
    ``_delete_: true`` replaces the mapping it would inherit instead of
    merging into it. ``_base_`` and ``_delete_`` do not appear in the result.
    See docs/option_inheritance.md.

    Args:
        path (str): The YAML option file.

    Returns:
        tuple[dict, dict[str, str]]: The merged options (not yet validated)
        and their provenance: ``{keypath: file}`` for every key, the file in
        which the value that won the merge was written.

    Raises:
        OptionError: A file does not parse, ``_base_`` or ``_delete_`` has
            the wrong type, a base file is missing, or bases form a cycle.
    """
    return _load_with_bases(str(path), ())


def _load_with_bases(path, chain):
    """:func:`load_option_file` for ``path``, reached through the files ``chain``."""
    if len(chain) >= MAX_BASE_CHAIN:
        raise OptionError(
            f'{chain[0]}: {BASE_KEY}: more than {MAX_BASE_CHAIN} files inherit from one '
            f'another (... -> {chain[-1]} -> {path}); merge some of them'
        )
    real = osp.realpath(path)
    data = load_yaml_file(path)
    bases = _base_list(path, data.pop(BASE_KEY, None))
    deletes = _pop_delete_flags(path, data, '')
    merged, origins = {}, {}
    folder = osp.dirname(real) if osp.islink(path) else osp.dirname(path)
    for base in bases:
        base_path = osp.normpath(osp.join(folder, base))
        if not osp.isfile(base_path):
            target = broken_link_target(base_path)
            found = f'is a broken symbolic link to {target}' if target is not None else 'not found'
            raise OptionError(f'{path}: {BASE_KEY}: {base!r} {found} (looked for {base_path})')
        _refuse_cycle(base_path, (*chain, path))
        base_opt, base_origins = _load_with_bases(base_path, (*chain, path))
        _merge(merged, origins, base_opt, base_origins, set(), '')
    own = {}
    record_origin(own, '', data, path)
    _merge(merged, origins, data, own, deletes, '')
    return merged, origins


def _refuse_cycle(base_path, chain):
    """Raise when ``base_path`` is already among the files ``chain`` that lead to it."""
    reals = [osp.realpath(p) for p in chain]
    if osp.realpath(base_path) in reals:
        loop = ' -> '.join([*chain[reals.index(osp.realpath(base_path)) :], base_path])
        raise OptionError(f'{chain[-1]}: {BASE_KEY}: the files inherit from each other: {loop}')


def _base_list(path, bases):
    """The ``_base_`` value as a list of paths, or an error naming the file."""
    if bases is None:
        return []
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) and b.strip() for b in bases):
        raise OptionError(
            f'{path}: {BASE_KEY}: expected a file path or a list of file paths, '
            f'got {type(bases).__name__} {bases!r}'
        )
    return bases


def _pop_delete_flags(path, node, prefix):
    """Remove ``_delete_`` from every mapping under ``node``; return the key paths set true."""
    flagged = set()
    for key, value in node.items():
        if not isinstance(value, dict):
            continue
        keypath = f'{prefix}{key}'
        if DELETE_KEY in value:
            flag = value.pop(DELETE_KEY)
            if not isinstance(flag, bool):
                raise OptionError(
                    f'{path}: {keypath}.{DELETE_KEY}: expected true or false, '
                    f'got {type(flag).__name__} {flag!r}'
                )
            if flag:
                flagged.add(keypath)
        flagged |= _pop_delete_flags(path, value, f'{keypath}.')
    if DELETE_KEY in node and not prefix:
        raise OptionError(f'{path}: {DELETE_KEY}: only a mapping under a key can replace its base')
    return flagged


def record_origin(origins: dict[str, str], keypath: str, value: object, source: str | None) -> None:
    """Record ``source`` as the writer of ``keypath`` and of every key inside ``value``."""
    for key in [k for k in origins if k == keypath or k.startswith(f'{keypath}.')]:
        del origins[key]
    if keypath:
        origins[keypath] = source
    if isinstance(value, dict):
        prefix = f'{keypath}.' if keypath else ''
        for key, sub in value.items():
            record_origin(origins, f'{prefix}{key}', sub, source)


def _merge(into, origins, new, new_origins, replace, prefix):
    """Deep-merge ``new`` into ``into`` (and its provenance into ``origins``)."""
    for key, value in new.items():
        keypath = f'{prefix}{key}'
        if isinstance(value, dict) and isinstance(into.get(key), dict) and keypath not in replace:
            origins[keypath] = new_origins[keypath]
            _merge(into[key], origins, value, new_origins, replace, f'{keypath}.')
            continue
        into[key] = deepcopy(value)
        record_origin(origins, keypath, None, None)
        origins.update(
            (k, v) for k, v in new_origins.items() if k == keypath or k.startswith(f'{keypath}.')
        )


def origin_of(keypath: str, origins: Mapping[str, str], default: str) -> str:
    """The file that wrote ``keypath``, or the closest key above it; else ``default``."""
    parts = keypath.split('.') if keypath else []
    while parts:
        found = origins.get('.'.join(parts))
        if found is not None:
            return found
        parts.pop()
    return default
