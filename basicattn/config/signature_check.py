"""Check a ``type:`` block's keys and value types against its target's signature."""

from __future__ import annotations

import inspect
import types
import typing
from collections import abc
from typing import Any

from basicattn.utils.bounds import bounds_of

_EMPTY = inspect.Parameter.empty


def explicit_parameters(target: Any) -> dict[str, inspect.Parameter] | None:
    """Return ``{name: Parameter}`` of ``target``'s keyword arguments, or None.

    Classes are looked up along their MRO until an ``__init__`` that does not
    forward ``*args, **kwargs`` (mmengine's LR schedulers wrap their real
    signature in a mixin that does). None means "accepts any keyword".

    Args:
        target (type | callable): A registered class or function.

    Returns:
        dict | None: Parameters other than ``self``, or None.
    """
    candidates = []
    if inspect.isclass(target):
        for klass in target.__mro__:
            if '__init__' in vars(klass) and klass is not object:
                candidates.append(vars(klass)['__init__'])
    else:
        candidates.append(target)
    for func in candidates:
        try:
            params = inspect.signature(func).parameters
        except (TypeError, ValueError):
            return None
        kinds = {p.kind for p in params.values()}
        if inspect.Parameter.VAR_KEYWORD in kinds and len(candidates) > 1:
            continue  # forwards to a parent: look further down the MRO
        if inspect.Parameter.VAR_KEYWORD in kinds:
            return None
        hints = _type_hints(func)
        return {
            name: p.replace(annotation=hints.get(name, p.annotation))
            for name, p in params.items()
            if name != 'self' and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }
    return None


def _type_hints(func):
    try:
        return typing.get_type_hints(func, include_extras=True)
    except Exception:  # unresolved forward references: fall back to defaults
        return {}


def _matches_annotation(annotation, value):
    """True/False when the annotation decides, None when it cannot."""
    if annotation is _EMPTY or annotation is typing.Any:
        return None
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:  # the type decides; bounds are checked apart
        return _matches_annotation(typing.get_args(annotation)[0], value)
    if origin in (typing.Union, types.UnionType):
        verdicts = [_matches_annotation(arg, value) for arg in typing.get_args(annotation)]
        if any(v is True for v in verdicts):
            return True
        return None if any(v is None for v in verdicts) else False
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    target = origin or annotation
    if target is type(None):
        return value is None
    if not isinstance(target, type):
        return None
    if target is bool:
        return isinstance(value, bool)
    if target is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if target is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if target is str:
        return isinstance(value, str)
    if issubclass(target, (tuple, list)) or target in (abc.Sequence, abc.Iterable):
        return isinstance(value, (list, tuple)) or (target is abc.Iterable and None)
    if issubclass(target, dict) or target is abc.Mapping:
        return isinstance(value, dict)
    return None


def _matches_default(default, value):
    if default is _EMPTY or default is None:
        return None
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return None


def _describe_annotation(annotation):
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *extras = typing.get_args(annotation)
        limits = ' and '.join(b.describe() for b in bounds_of(extras))
        return _describe_annotation(base) + (f' {limits}' if limits else '')
    if origin in (typing.Union, types.UnionType):
        return ' or '.join(
            'None' if a is type(None) else _describe_annotation(a)
            for a in typing.get_args(annotation)
        )
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace('typing.', '')


def describe_expected(param: inspect.Parameter) -> str:
    """Human-readable expected type of a parameter (for error messages)."""
    if param.annotation is not _EMPTY:
        return _describe_annotation(param.annotation)
    if param.default is not _EMPTY and param.default is not None:
        return type(param.default).__name__
    return 'any'


def value_fits(param: inspect.Parameter, value: Any) -> bool:
    """Whether ``value`` from YAML suits ``param`` (unknown counts as fitting).

    Args:
        param (inspect.Parameter): Parameter with annotation/default.
        value: The option value.

    Returns:
        bool: False only when the annotation or the default's type rules it out.
    """
    if value is None:
        if param.default is None or param.annotation is typing.Any:
            return True
        verdict = _matches_annotation(param.annotation, None)
        return verdict is not False if param.annotation is not _EMPTY else param.default is _EMPTY
    if param.annotation is typing.Any:
        return True
    verdict = _matches_annotation(param.annotation, value)
    if verdict is None:
        verdict = _matches_default(param.default, value)
    return verdict is not False


def integral_to_int(value: Any) -> Any:
    """``5000`` for ``5000.0`` (BasicSR writes ``!!float 5e3`` for ints); other values as given.

    A bool stays a bool and ``5.5`` stays a float, so that the type check reports it.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _int_elements(param):
    """Whether ``param`` takes a sequence of ints (``List[int]``, a default of ints)."""
    annotation = param.annotation
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (list, tuple, abc.Sequence) and args:
        return all(a is int or a is Ellipsis for a in args)
    default = param.default
    return (
        isinstance(default, (list, tuple))
        and len(default) > 0
        and all(type(v) is int for v in default)
    )


def int_where_expected(param: inspect.Parameter, value: Any) -> Any:
    """Turn integral floats into ints where ``param`` wants an int (or a list of ints).

    ``total_iter: !!float 3e5`` or ``milestones: [2e5, 4e5]`` then reach the
    class as ints; a float that is not integral (``5.5``) is returned as it is
    and fails the type check, naming the key.

    Args:
        param (inspect.Parameter): Parameter with annotation/default.
        value: The option value.

    Returns:
        object: ``value``, or its int form.
    """
    if isinstance(value, float) and not value_fits(param, value):
        as_int = integral_to_int(value)
        return as_int if value_fits(param, as_int) else value
    if isinstance(value, list) and _int_elements(param):
        return [integral_to_int(v) for v in value]
    return value


def _bounded_members(annotation, value):
    """``[(type matches value, [Bound])]`` for each member of a (Union of) annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = []
        for arg in typing.get_args(annotation):
            members += _bounded_members(arg, value)
        return members
    bounds = []
    if origin is typing.Annotated:
        base, *extras = typing.get_args(annotation)
        bounds = bounds_of(extras)
        annotation = base
    return [(_matches_annotation(annotation, value) is not False, bounds)]


def bound_problem(param: inspect.Parameter, value: Any) -> str | None:
    """Why ``value`` is outside the bounds its annotation gives, or None.

    Bounds come from ``typing.Annotated[int, AtLeast(1)]`` annotations (see
    basicattn/utils/bounds.py); a value that some unbounded member of a Union
    accepts, or one that fits every bound of a member, has no problem.

    Args:
        param (inspect.Parameter): Parameter with its annotation.
        value: The option value (already known to fit the type).

    Returns:
        str | None: E.g. ``'must be >= 1, got 0'``.
    """
    if param.annotation is _EMPTY or value is None:
        return None
    problems = []
    for fits_type, bounds in _bounded_members(param.annotation, value):
        if not fits_type:
            continue
        failed = [b.problem(value) for b in bounds if b.problem(value)]
        if not failed:
            return None
        problems.append(failed[0])
    return problems[0] if problems else None
