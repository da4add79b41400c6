"""Option files: read, override with ``--set``, fill defaults and validate.

Everything here happens before any model, dataset or runner is built, so a
typo costs a second, not a crashed job. Errors name the file, the key path
and, for unknown names, the closest valid ones.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import os.path as osp
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from copy import deepcopy
from typing import Any

from basicattn.errors import OptionError  # noqa: F401  (re-exported: engine.OptionError)

from . import option_schema as S
from .signature_check import bound_problem, describe_expected, explicit_parameters, value_fits
from .yaml_io import load_yaml_file, parse_yaml_scalar

DATASET_KEY = re.compile(r'^(train|val|val_\w+|test_\w+)$')
BASE_KEY = '_base_'
DELETE_KEY = '_delete_'
OVERRIDE_SOURCE = '--set'


def did_you_mean(name: object, candidates: Iterable[object]) -> str:
    """Return ' Did you mean ...?' for close matches (or the valid list if short)."""
    candidates = sorted(set(map(str, candidates)))
    close = difflib.get_close_matches(str(name), candidates, n=3, cutoff=0.5)
    if close:
        return ' Did you mean ' + ' or '.join(repr(c) for c in close) + '?'
    if candidates and len(candidates) <= 12:
        return ' Valid: ' + ', '.join(candidates) + '.'
    return ''


def _registry(name):
    """Return the registry that resolves ``type:`` names of a block kind."""
    import mmengine.optim  # noqa: F401  (registers torch optimizers/schedulers)
    from mmengine.registry import OPTIMIZERS, PARAM_SCHEDULERS

    from basicattn import registry as R

    table = {
        'ARCHS': R.ARCHS,
        'LOSSES': R.LOSSES,
        'MODELS': R.MODELS,
        'DATASETS': R.DATASETS,
        'METRICS': R.METRICS,
        'OPTIMIZERS': OPTIMIZERS,
        'PARAM_SCHEDULERS': PARAM_SCHEDULERS,
    }
    return table[name]


def registered_names(registry: Any) -> set[str]:
    """All names a registry can build (its own and its ancestors')."""
    registry.import_from_location()
    names, reg = set(), registry
    while reg is not None:
        names.update(reg.module_dict)
        reg = reg.parent
    return names


def apply_overrides(
    opt: dict,
    overrides: Sequence[str] | None,
    source: str = OVERRIDE_SOURCE,
    origins: dict[str, str] | None = None,
) -> dict:
    """Apply ``a.b.c=value`` overrides (values parsed as YAML literals).

    Args:
        opt (dict): Options, changed in place.
        overrides (list[str]): Override strings.
        source (str): Shown in error messages.
        origins (dict, optional): Provenance map (``keypath -> file``, see
            :func:`load_option_file`); the keys set here are recorded as
            written by ``source``.

    Returns:
        dict: ``opt``.
    """
    for item in overrides or []:
        if '=' not in item:
            raise OptionError(source, [f'{item!r}: expected KEY.PATH=VALUE'])
        path, text = item.split('=', 1)
        keys = override_keys(item, path, source)
        node = opt
        for depth, key in enumerate(keys[:-1]):
            if node.get(key) is None:
                node[key] = {}
            if not isinstance(node[key], dict):
                where = '.'.join(keys[: depth + 1])
                raise OptionError(
                    source,
                    [f'{where}: is a {type(node[key]).__name__}, cannot set {path} inside it'],
                )
            node = node[key]
        node[keys[-1]] = parse_yaml_scalar(text)
        if origins is not None:
            _record_origin(origins, '.'.join(keys), node[keys[-1]], source)
    return opt


def override_keys(item: str, path: str, source: str = OVERRIDE_SOURCE) -> list[str]:
    """Split the key path of an override; an empty segment is an error.

    ``train..total_iter``, ``.train`` and ``train.`` are refused rather than
    guessed at (they are typos, and the guess may be wrong).
    """
    path = path.strip()
    if not path:
        raise OptionError(source, [f'{item!r}: empty key path (expected KEY.PATH=VALUE)'])
    keys = [k.strip() for k in path.split('.')]
    if not all(keys):
        raise OptionError(
            source,
            [
                f'{item!r}: empty key in {path!r} (a leading, trailing or '
                'doubled dot); write the keys joined by single dots, e.g. '
                'train.total_iter=1000'
            ],
        )
    return keys


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


class _Validator:
    """Walks options and schema together, collecting problems."""

    def __init__(self, source, purpose):
        self.source = source
        self.purpose = purpose
        self.problems = []
        self.paths = []  # the key path of each problem ('' for the whole file)

    def fail(self, path, message):
        self.problems.append(f'{path}: {message}' if path else message)
        self.paths.append(path)

    # -- plain values and sections --------------------------------------
    def check_field(self, path, spec, value):
        if not isinstance(value, spec.types) or (
            isinstance(value, bool) and bool not in spec.types and int in spec.types
        ):
            names = ' or '.join('null' if t is S.NoneType else t.__name__ for t in spec.types)
            self.fail(path, f'expected {names}, got {type(value).__name__} {value!r}')
        elif spec.choices and value not in spec.choices:
            self.fail(path, f'{value!r} is not one of {list(spec.choices)}')
        elif spec.bound is not None and spec.bound.problem(value):
            self.fail(path, spec.bound.problem(value))

    def check_section(self, path, spec, node, fill=True):
        if not isinstance(node, dict):
            self.fail(path, f'expected a mapping, got {type(node).__name__}')
            return node
        prefix = f'{path}.' if path else ''
        for key in node:
            if key not in spec.fields:
                where = self._where_else(key)
                hint = f' It belongs under {where!r}.' if where else did_you_mean(key, spec.fields)
                self.fail(f'{prefix}{key}', f'unknown key.{hint}')
        for key, sub in spec.fields.items():
            keypath = f'{prefix}{key}'
            if isinstance(sub, S.Section) and node.get(key) is None and fill:
                if key in node and not sub.optional and self._required(keypath):
                    self.fail(keypath, 'required section is empty')
                    continue
                if key not in node and not sub.optional and self._required(keypath):
                    self.fail(keypath, 'required section is missing')
                    continue
                if key == 'train' and self.purpose != 'train':
                    continue  # testing needs no training section
                node[key] = {}
            if key not in node:
                if isinstance(sub, S.Field):
                    if sub.default is S.REQUIRED:
                        if self._required(keypath):
                            self.fail(keypath, 'required key is missing')
                    elif fill:
                        node[key] = deepcopy(sub.default)
                elif not sub.optional and self._required(keypath):
                    self.fail(keypath, 'required section is missing')
                continue
            if node[key] is None and not isinstance(sub, S.Field):
                if sub.optional or not self._required(keypath):
                    continue  # an optional block written as `key: ~` is simply off
                self.fail(keypath, 'required block is empty')
                continue
            self.check_any(keypath, sub, node[key])
        return node

    def _required(self, keypath):
        if self.purpose == 'test' and keypath.startswith('train'):
            return False
        return True

    @staticmethod
    def _where_else(key):
        """If ``key`` is valid in another section, name that section."""
        for path, _spec in S.iter_schema():
            if path.rsplit('.', 1)[-1] == key and '.' in path and '<set>' not in path:
                return path.rsplit('.', 1)[0]
        return None

    def check_any(self, path, spec, value):
        if isinstance(spec, S.Field):
            self.check_field(path, spec, value)
        elif isinstance(spec, S.Section):
            self.check_section(path, spec, value)
        elif isinstance(spec, S.Typed):
            self.check_typed(path, spec, value)
        elif isinstance(spec, S.MapOf):
            self.check_map(path, spec, value)
        elif isinstance(spec, S.ListOf):
            self.check_list(path, spec, value)

    def check_list(self, path, spec, node):
        if not isinstance(node, list) or not node:
            self.fail(path, f'expected a non-empty list, got {type(node).__name__} {node!r}')
            return
        for i, item in enumerate(node):
            self.check_section(f'{path}.{i}', spec.item, item)

    def check_map(self, path, spec, node):
        if not isinstance(node, dict):
            self.fail(path, f'expected a mapping of names to blocks, got {type(node).__name__}')
            return
        for name, block in node.items():
            if isinstance(spec.item, S.DatasetBlock):
                if not DATASET_KEY.match(str(name)):
                    self.fail(
                        f'{path}.{name}',
                        'unknown dataset key (use train, val, val_<name> '
                        'or test_<name>).' + did_you_mean(name, ['train', 'val', 'test_1']),
                    )
                    continue
                self.check_dataset(f'{path}.{name}', spec.item, block)
            else:
                self.check_any(f'{path}.{name}', spec.item, block)

    # -- registered blocks ----------------------------------------------
    def resolve_type(self, path, registry_name, block):
        if not isinstance(block, dict):
            self.fail(path, f'expected a mapping with a `type:` key, got {type(block).__name__}')
            return None
        if 'type' not in block:
            self.fail(f'{path}.type', 'missing: name a registered class')
            return None
        registry = _registry(registry_name)
        type_name = block['type']
        if not isinstance(type_name, str):
            self.fail(f'{path}.type', f'expected a name, got {type_name!r}')
            return None
        target = registry.get(type_name)
        if target is None:
            self.fail(
                f'{path}.type',
                f'unknown {registry.name} {type_name!r}.'
                + (
                    did_you_mean(type_name, registered_names(registry))
                    or f' Registered: {", ".join(sorted(registry.module_dict))}.'
                ),
            )
        return target

    def check_kwargs(self, path, target, kwargs, injected=(), extra_allowed=(), also_valid=()):
        params = explicit_parameters(target)
        if params is None:
            return
        name = getattr(target, '__name__', str(target))
        for key, value in kwargs.items():
            if key in extra_allowed:
                continue
            if key in injected:
                self.fail(f'{path}.{key}', 'set by basicattn; remove it')
            elif key not in params:
                self.fail(
                    f'{path}.{key}',
                    f'unknown argument of {name}.'
                    + did_you_mean(
                        key, [p for p in params if p not in injected] + list(also_valid)
                    ),
                )
            elif not value_fits(params[key], value):
                self.fail(
                    f'{path}.{key}',
                    f'{name} expects {describe_expected(params[key])}, '
                    f'got {type(value).__name__} {value!r}',
                )
            elif bound_problem(params[key], value):
                self.fail(f'{path}.{key}', f'{name}: {bound_problem(params[key], value)}')
        for pname, param in params.items():
            if (
                param.default is param.empty
                and pname not in kwargs
                and pname not in injected
                and param.kind is not param.VAR_POSITIONAL
            ):
                self.fail(f'{path}.{pname}', f'required argument of {name} is missing')

    def check_typed(self, path, spec, block, extra_allowed=()):
        target = self.resolve_type(path, spec.registry, block)
        if target is not None:
            kwargs = {k: v for k, v in block.items() if k != 'type'}
            self.check_kwargs(path, target, kwargs, spec.injected, extra_allowed)
        return target

    def check_dataset(self, path, spec, block):
        target = self.resolve_type(path, 'DATASETS', block)
        if target is None:
            return
        kwargs = {}
        for key, value in block.items():
            if key == 'type':
                continue
            if key in spec.loader_fields:
                self.check_field(f'{path}.{key}', spec.loader_fields[key], value)
            else:
                kwargs[key] = value
        params = explicit_parameters(target)
        if params is not None and 'name' not in params:
            kwargs.pop('name', None)  # the set's display name, used by the loops
        self.check_kwargs(path, target, kwargs, also_valid=spec.loader_fields)


# -- inheritance: `_base_` files ----------------------------------------
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
    real = osp.realpath(path)
    data = load_yaml_file(path)
    bases = _base_list(path, data.pop(BASE_KEY, None))
    deletes = _pop_delete_flags(path, data, '')
    merged, origins = {}, {}
    folder = osp.dirname(real) if osp.islink(path) else osp.dirname(path)
    for base in bases:
        base_path = osp.normpath(osp.join(folder, base))
        if not osp.isfile(base_path):
            raise OptionError(f'{path}: {BASE_KEY}: {base!r} not found (looked for {base_path})')
        _refuse_cycle(base_path, (*chain, path))
        base_opt, base_origins = _load_with_bases(base_path, (*chain, path))
        _merge(merged, origins, base_opt, base_origins, set(), '')
    own = {}
    _record_origin(own, '', data, path)
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


def _record_origin(origins, keypath, value, source):
    """Record ``source`` as the writer of ``keypath`` and of every key inside ``value``."""
    for key in [k for k in origins if k == keypath or k.startswith(f'{keypath}.')]:
        del origins[key]
    if keypath:
        origins[keypath] = source
    if isinstance(value, dict):
        prefix = f'{keypath}.' if keypath else ''
        for key, sub in value.items():
            _record_origin(origins, f'{prefix}{key}', sub, source)


def _merge(into, origins, new, new_origins, replace, prefix):
    """Deep-merge ``new`` into ``into`` (and its provenance into ``origins``)."""
    for key, value in new.items():
        keypath = f'{prefix}{key}'
        if isinstance(value, dict) and isinstance(into.get(key), dict) and keypath not in replace:
            origins[keypath] = new_origins[keypath]
            _merge(into[key], origins, value, new_origins, replace, f'{keypath}.')
            continue
        into[key] = deepcopy(value)
        _record_origin(origins, keypath, None, None)
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


def read_options(
    path: str, overrides: Sequence[str] = (), purpose: str = 'train'
) -> dict[str, Any]:
    """Read, merge, override, validate and complete an option file.

    The order is: read the file and its ``_base_`` files
    (:func:`load_option_file`), merge, apply ``--set`` overrides, validate.

    Args:
        path (str): The YAML option file.
        overrides (Sequence[str]): ``KEY.PATH=VALUE`` strings (``--set``).
        purpose (str): ``'train'`` or ``'test'`` (test files need no `train`).

    Returns:
        dict: Options with defaults filled in and ``scale`` propagated.

    Raises:
        OptionError: Listing every problem found, each with its key path and
            the file in which the key was written.
    """
    opt, origins = load_option_file(path)
    apply_overrides(opt, overrides, origins=origins)
    return validate_options(opt, source=path, purpose=purpose, origins=origins)


def validate_options(
    opt: dict,
    source: str = '<options>',
    purpose: str = 'train',
    origins: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Validate an options dict in place (see :func:`read_options`).

    Args:
        opt (dict): Merged options; defaults are filled in place.
        source (str): The option file (or a label), named in errors.
        purpose (str): ``'train'`` or ``'test'``.
        origins (Mapping[str, str], optional): ``{keypath: file}`` provenance
            (:func:`load_option_file`); each problem names the file that wrote
            its key, ``source`` when unknown.

    Returns:
        dict: ``opt``, with ``opt['_source'] = source``.
    """
    modules = opt.get('custom_imports')
    if modules:
        written_in = origin_of('custom_imports', origins or {}, str(source))
        if not osp.isfile(written_in):  # --set: the option file's folder
            written_in = str(source)
        option_dir = osp.dirname(osp.abspath(written_in)) if osp.isfile(written_in) else None
        names = [modules] if isinstance(modules, str) else modules
        if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
            raise OptionError(
                source,
                [
                    f'custom_imports: expected a module name or a list of '
                    f'module names, got {modules!r}'
                ],
                [written_in],
            )
        import_custom_modules(names, option_dir, written_in)
    checker = _Validator(source, purpose)
    if purpose == 'train' and not opt.get('train'):
        checker.fail('train', 'required section is missing or empty (tools/train.py needs it)')
        opt.pop('train', None)
    checker.check_section('', S.OPTION_SCHEMA, opt)
    if not checker.problems:
        _propagate_scale(opt, checker)
        _check_registered_model(opt, checker)
        _check_stages(opt, checker)
        _check_tiles(opt, checker)
    if checker.problems:
        files = [origin_of(p, origins or {}, str(source)) for p in checker.paths]
        raise OptionError(source, checker.problems, files)
    opt['_source'] = str(source)
    return opt


def _accepts(target, key):
    params = explicit_parameters(target)
    return params is not None and key in params


def _propagate_scale(opt, checker):
    """Give ``scale`` to datasets and the network when they take it and lack it."""
    scale = opt['scale']
    arch = _registry('ARCHS').get(opt['network_g']['type'])
    for key in ('upscale', 'scale'):
        if _accepts(arch, key):
            given = opt['network_g'].setdefault(key, scale)
            if given != scale:
                checker.fail(f'network_g.{key}', f'{given} differs from scale: {scale}')
            break
    for name, block in opt.get('datasets', {}).items():
        dataset = _registry('DATASETS').get(block['type'])
        if _accepts(dataset, 'scale'):
            given = block.setdefault('scale', scale)
            if given != scale:
                checker.fail(f'datasets.{name}.scale', f'{given} differs from scale: {scale}')


def _check_stages(opt, checker):
    """Stage ends increase up to total_iter; stage losses exist."""
    train = opt.get('train') or {}
    if not train.get('stages'):
        return
    from .stage_hook import check_stages

    for problem in check_stages(
        train['stages'], train.get('total_iter'), list(train.get('losses') or {})
    ):
        where, _, message = problem.partition(': ')
        checker.fail(f'train.stages.{where}' if message else 'train.stages', message or problem)


def _check_tiles(opt, checker):
    """Tiles must overlap by less than their size (else they never advance)."""
    val = opt.get('val') or {}
    tile, overlap = val.get('tile'), val.get('tile_overlap', 8)
    if tile is not None and overlap >= tile:
        checker.fail('val.tile_overlap', f'{overlap} must be smaller than val.tile ({tile})')
    if tile is not None and val.get('chop'):
        checker.fail('val.chop', 'val.chop and val.tile are alternatives; set only one of them')


def _check_registered_model(opt, checker):
    registry = _registry('MODELS')
    if registry.get(opt['model_type']) is None:
        checker.fail(
            'model_type',
            f'unknown model {opt["model_type"]!r}.'
            + did_you_mean(opt['model_type'], registered_names(registry)),
        )
