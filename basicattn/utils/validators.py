"""Checks of constructor arguments shared by archs, datasets and ops.

Option files are validated before anything is built (``engine/options.py``);
these checks guard the same values when a class is built from Python. Each
raises ``ValueError`` with the owner's name first, e.g.
``DASAA: attn_chunk must be a positive int, got 0``.
"""

import math
import typing
from typing import Any, Iterable, Optional

import numpy as np

__all__ = [
    'is_int',
    'is_positive_int',
    'check_positive_int',
    'check_positive_number',
    'check_choice',
    'choices_of',
]


def is_int(value: Any) -> bool:
    """True for a Python or NumPy integer; ``bool`` is not an int here."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_positive_int(value: Any) -> bool:
    """True for an int (not bool) >= 1."""
    return is_int(value) and value >= 1


def _prefix(owner: Optional[str]) -> str:
    return f'{owner}: ' if owner else ''


def check_positive_int(
    value: Any, name: str, owner: Optional[str] = None, allow_none: bool = False
) -> Any:
    """Return ``value`` if it is an int >= 1 (or None where ``allow_none``).

    Args:
        value: The value to check.
        name: Argument name used in the message.
        owner: Class or function name put first in the message.
        allow_none: Accept ``None`` (e.g. "no chunking").

    Raises:
        ValueError: ``{owner}: {name} must be a positive int[ or None], got {value!r}``.
    """
    if value is None and allow_none:
        return value
    if not is_positive_int(value):
        what = 'a positive int or None' if allow_none else 'a positive int'
        raise ValueError(f'{_prefix(owner)}{name} must be {what}, got {value!r}')
    return value


def check_positive_number(value: Any, name: str, owner: Optional[str] = None) -> Any:
    """Return ``value`` if it is a finite int or float > 0 (``bool`` is not a number here).

    Raises:
        ValueError: ``{owner}: {name} must be a positive number, got {value!r}``.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not (value > 0 and math.isfinite(value))
    ):
        raise ValueError(f'{_prefix(owner)}{name} must be a positive number, got {value!r}')
    return value


def choices_of(allowed: Any) -> tuple:
    """The allowed values of a ``typing.Literal`` alias or of an iterable."""
    args = typing.get_args(allowed)
    return tuple(args) if args else tuple(allowed)


def check_choice(value: Any, name: str, allowed: Any, owner: Optional[str] = None) -> Any:
    """Return ``value`` if it is one of ``allowed`` (a ``Literal`` alias or iterable).

    Raises:
        ValueError: ``{owner}: {name}={value!r} is not supported; allowed values are (...)``.
    """
    options: Iterable = choices_of(allowed)
    if value not in options:
        raise ValueError(
            f'{_prefix(owner)}{name}={value!r} is not supported; allowed values are {options}'
        )
    return value
