"""Option files: read, override with ``--set``, fill defaults and validate.

Everything here happens before any model, dataset or runner is built, so a
typo costs a second, not a crashed job. Errors name the file, the key path
and, for unknown names, the closest valid ones.
"""

from __future__ import annotations

import difflib
import os.path as osp
import re
from collections.abc import Iterable, Mapping, Sequence
from copy import deepcopy
from typing import Any

from basicattn import registry as R
from basicattn.config import schema as S
from basicattn.config.basicsr_compat import apply_basicsr_compat
from basicattn.config.custom_imports import import_custom_modules
from basicattn.config.inheritance import load_option_file, origin_of, record_origin
from basicattn.config.signature_check import (
    bound_problem,
    describe_expected,
    explicit_parameters,
    int_where_expected,
    integral_to_int,
    value_fits,
)
from basicattn.config.stages import stage_order_problems
from basicattn.config.test_settings import TestConfig
from basicattn.config.yaml_io import parse_yaml_scalar
from basicattn.errors import OptionError

DATASET_KEY = re.compile(r'^(train|val|val_\w+|test_\w+)$')
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


def close_names(name: object, candidates: Iterable[object]) -> list[str]:
    """The candidates that differ from ``name`` only by case or a small typo.

    Stricter than :func:`did_you_mean`: for a short name like an arch's, a
    loose match suggests unrelated names (``RCAN`` -> ``DAN``).
    """
    candidates = sorted(set(map(str, candidates)))
    lowered = {c.lower(): c for c in candidates}
    text = str(name).lower()
    if text in lowered:
        return [lowered[text]]
    close = difflib.get_close_matches(text, list(lowered), n=3, cutoff=0.75)
    return [lowered[c] for c in close]


def unknown_arch_message(type_name: object, registry: Any = None) -> str:
    """What to say about an arch name that is not registered (one line).

    Names a registered arch only when it is really close (``edsr``,
    ``EDRS``), then lists every registered arch and says how to add one's own.
    """
    registry = registry if registry is not None else _registry('ARCHS')
    registry.import_from_location()
    names = sorted(registry.module_dict)  # basicattn's own (its parent holds mmengine's)
    close = close_names(type_name, names)
    hint = (' Did you mean ' + ' or '.join(repr(c) for c in close) + '?') if close else ''
    return (
        f'unknown arch {type_name!r}.{hint} Registered archs: {", ".join(names)}. '
        'For an arch of your own, put its module beside the option file and name it in '
        '`custom_imports` (docs/options.md).'
    )


def _registry(name):
    """Return the registry that resolves ``type:`` names of a block kind."""
    import mmengine.optim  # noqa: F401  (registers torch optimizers/schedulers)
    from mmengine.registry import OPTIMIZERS

    table = {
        'ARCHS': R.ARCHS,
        'LOSSES': R.LOSSES,
        'MODELS': R.MODELS,
        'DATASETS': R.DATASETS,
        'METRICS': R.METRICS,
        'OPTIMIZERS': OPTIMIZERS,
        'PARAM_SCHEDULERS': R.PARAM_SCHEDULERS,
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
        node[keys[-1]] = parse_yaml_scalar(text, f'{source} {path.strip()}')
        if origins is not None:
            record_origin(origins, '.'.join(keys), node[keys[-1]], source)
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


def _missing_hint(spec: Any) -> str:
    """What a schema entry says about giving it otherwise (``''`` when nothing)."""
    return getattr(spec, 'missing_hint', '')


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

    def valid(self, *keypaths):
        """True when no problem was found at or under any of ``keypaths``."""
        return not any(
            p == k or p.startswith(f'{k}.') for p in self.paths for k in keypaths if p is not None
        )

    # -- plain values and sections --------------------------------------
    def check_field(self, path, spec, value):
        """Check a plain value; return it (an integral float for an int as an int)."""
        if int in spec.types and float not in spec.types:
            value = integral_to_int(value)
        if not isinstance(value, spec.types) or (
            isinstance(value, bool) and bool not in spec.types and int in spec.types
        ):
            names = ' or '.join('null' if t is S.NoneType else t.__name__ for t in spec.types)
            self.fail(path, f'expected {names}, got {type(value).__name__} {value!r}')
        elif spec.choices and value not in spec.choices:
            self.fail(path, f'{value!r} is not one of {list(spec.choices)}')
        elif spec.bound is not None and spec.bound.problem(value):
            self.fail(path, spec.bound.problem(value))
        return value

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
                    self.fail(keypath, 'required section is missing' + _missing_hint(sub))
                continue
            if node[key] is None and not isinstance(sub, S.Field):
                if sub.optional or not self._required(keypath):
                    continue  # an optional block written as `key: ~` is simply off
                self.fail(keypath, 'required block is empty' + _missing_hint(sub))
                continue
            checked = self.check_any(keypath, sub, node[key])
            if isinstance(sub, S.Field):
                node[key] = checked
        return node

    def _required(self, keypath):
        if self.purpose != 'train' and keypath.startswith('train'):
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
            return self.check_field(path, spec, value)
        if isinstance(spec, S.Section):
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
        if isinstance(spec.item, S.DatasetBlock):
            for name in [n for n, block in node.items() if block is None]:
                del node[name]  # `test_x: ~`: that set is left out
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
        if target is None and registry_name == 'ARCHS':
            self.fail(f'{path}.type', unknown_arch_message(type_name, registry))
        elif target is None:
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
            if key in params and key not in injected:
                value = kwargs[key] = int_where_expected(params[key], value)
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
            block.update(kwargs)  # integral floats given for ints, now ints
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
                block[key] = self.check_field(f'{path}.{key}', spec.loader_fields[key], value)
            else:
                kwargs[key] = value
        params = explicit_parameters(target)
        if params is not None and 'name' not in params:
            kwargs.pop('name', None)  # the set's display name, used by the loops
        self.check_kwargs(path, target, kwargs, also_valid=spec.loader_fields)
        block.update(kwargs)


def read_options(
    path: str, overrides: Sequence[str] = (), purpose: str = 'train'
) -> dict[str, Any]:
    """Read, merge, override, validate and complete an option file.

    The order is: read the file and its ``_base_`` files
    (:func:`load_option_file`), merge, apply ``--set`` overrides, validate.

    Args:
        path (str): The YAML option file.
        overrides (Sequence[str]): ``KEY.PATH=VALUE`` strings (``--set``).
        purpose (str): ``'train'``, ``'test'`` (test files need no `train`, and
            their datasets need a test or val set) or ``'network'`` (the file is
            read for its ``network_g``: neither is needed).

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
        purpose (str): ``'train'``, ``'test'`` or ``'network'`` (see :func:`read_options`).
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
    for path, message in apply_basicsr_compat(opt):
        checker.fail(path, message)
    if purpose == 'train' and not opt.get('train'):
        checker.fail('train', 'required section is missing or empty (tools/train.py needs it)')
        opt.pop('train', None)
    datasets = opt.get('datasets')
    if purpose == 'test' and isinstance(datasets, Mapping) and datasets:
        if not any(str(k).startswith(('test', 'val')) for k in datasets):
            checker.fail(
                'datasets',
                f'no test_<name> or val set to test (found only {", ".join(map(str, datasets))});'
                ' add a test_1: or val: set, or test with an option file that has one',
            )
    checker.check_section('', S.OPTION_SCHEMA, opt)
    # each check below runs when the keys it reads are valid, whatever else is
    # wrong, so one run reports every problem (an unknown arch does not hide
    # an unknown model_type)
    if checker.valid('model_type'):
        _check_registered_model(opt, checker)
    if checker.valid('scale'):
        _propagate_scale(opt, checker)
    if checker.valid('train'):
        _check_stages(opt, checker)
    if checker.valid('model_type', 'val'):
        _check_test_time(opt, checker)
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
    network = opt.get('network_g')
    if checker.valid('network_g') and isinstance(network, dict) and 'type' in network:
        arch = _registry('ARCHS').get(network['type'])
        keys = [key for key in ('upscale', 'scale') if _accepts(arch, key)]
        for key in keys:  # an arch may take both (Bicubic: upscale, and scale for old files)
            if key in network and network[key] != scale:
                checker.fail(f'network_g.{key}', f'{network[key]} differs from scale: {scale}')
        if keys and not any(key in network for key in keys):
            network[keys[0]] = scale
    datasets = opt.get('datasets') if checker.valid('datasets') else None
    for name, block in (datasets or {}).items():
        if not checker.valid(f'datasets.{name}'):
            continue
        dataset = _registry('DATASETS').get(block['type'])
        if _accepts(dataset, 'scale'):
            given = block.setdefault('scale', scale)
            if given != scale:
                checker.fail(f'datasets.{name}.scale', f'{given} differs from scale: {scale}')
        gt_size = block.get('gt_size')
        if _accepts(dataset, 'gt_size') and isinstance(gt_size, int) and gt_size % scale:
            lower, upper = gt_size // scale * scale, (gt_size // scale + 1) * scale
            checker.fail(
                f'datasets.{name}.gt_size',
                f'{gt_size} is not a multiple of scale: {scale} (the LQ patch is gt_size / '
                f'scale pixels); use {lower or upper}' + (f' or {upper}' if lower else ''),
            )


def _check_stages(opt, checker):
    """Stage ends increase up to total_iter; stage losses exist."""
    train = opt.get('train') or {}
    if not train.get('stages'):
        return
    if not checker.valid('train.stages', 'train.total_iter', 'train.losses'):
        return  # a stage's own keys are the schema's (STAGE_SECTION)
    for problem in stage_order_problems(
        train['stages'], train.get('total_iter'), list(train.get('losses') or {})
    ):
        where, _, message = problem.partition(': ')
        checker.fail(f'train.stages.{where}' if message else 'train.stages', message or problem)


def _check_test_time(opt, checker):
    """The ``val`` test-time settings as the model's own test config checks them.

    The combinations (tiles overlapping by less than their size, chop or
    tile, ``sequence`` only on whole frames and only for models that have it)
    are written once, in :mod:`basicattn.config.test_settings`.
    """

    model = _registry('MODELS').get(opt['model_type'])
    config_class = getattr(model, 'test_config_class', TestConfig)
    try:
        config_class.from_options(opt.get('val'), opt['model_type'])
    except OptionError as err:
        key, sep, message = str(err).partition(': ')
        if sep and ' ' not in key:
            checker.fail(key, message)
        else:
            checker.fail('val', str(err))


def _check_registered_model(opt, checker):
    registry = _registry('MODELS')
    if registry.get(opt['model_type']) is None:
        checker.fail(
            'model_type',
            f'unknown model {opt["model_type"]!r}.'
            + did_you_mean(opt['model_type'], registered_names(registry)),
        )


def check_network_config(cfg: Any, where: str = 'network_g') -> None:
    """Raise :class:`OptionError` unless ``cfg`` is a valid arch config.

    The one ``network_g`` rule (the schema's field: a registered ``type``,
    keyword arguments the arch takes, values of their annotated types and
    bounds), for configs that do not come from an option file
    (``--arch-args``, a checkpoint's ``meta['arch']``).

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
