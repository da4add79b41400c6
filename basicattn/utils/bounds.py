"""The value rules of options and keyword arguments, written once.

Numeric bounds (:class:`Bound`, :data:`PositiveInt`) and the checks that
constructors run when a class is built from Python (:func:`check_positive_int`,
:func:`check_choice` ...), which raise ``ValueError`` with the owner's name
first, e.g. ``DASAA: attn_chunk must be a positive int, got 0``.

A :class:`Bound` is attached to a plain option key in the option schema
(``Field(..., bound=AtLeast(1))``) or to a constructor argument through
``typing.Annotated``::

    from basicattn.utils.bounds import PositiveInt

    def __init__(self, gt_size: Optional[PositiveInt] = None, num_frame: PositiveInt = 5):

The option validator reads both and reports a value outside the bound with
its key path (``datasets.train.gt_size: must be >= 1, got 0``).
"""

import math
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Iterable, Optional, Tuple

import numpy as np


@dataclass(frozen=True)
class Bound:
    """An allowed range of numbers, plus special values allowed outside it.

    Args:
        minimum: Smallest allowed value (inclusive), None for no lower bound.
        maximum: Largest allowed value, None for no upper bound.
        max_exclusive: The maximum itself is not allowed.
        also: Values allowed outside the range (e.g. ``-1`` meaning "off").
    """

    minimum: Optional[float] = None
    maximum: Optional[float] = None
    max_exclusive: bool = False
    also: Tuple[Any, ...] = ()

    def allows(self, value):
        """Whether a number lies in the bound (non-numbers are not judged here)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return True
        if value in self.also:
            return True
        if value != value:  # NaN is never in range
            return False
        if self.minimum is not None and value < self.minimum:
            return False
        if self.maximum is not None:
            if value > self.maximum or (self.max_exclusive and value == self.maximum):
                return False
        return True

    def describe(self):
        """The bound in words, e.g. ``>= 1``, ``1..65535``, ``-1 or >= 1``."""
        low, high = self.minimum, self.maximum
        if low is not None and high is not None:
            text = f'>= {low} and < {high}' if self.max_exclusive else f'{low}..{high}'
        elif low is not None:
            text = f'>= {low}'
        elif high is not None:
            text = f'< {high}' if self.max_exclusive else f'<= {high}'
        else:
            text = 'any number'
        if self.also:
            text = ' or '.join(str(v) for v in self.also) + ' or ' + text
        return text

    def problem(self, value):
        """``'must be ..., got X'`` when ``value`` is outside the bound, else None."""
        if self.allows(value):
            return None
        return f'must be {self.describe()}, got {value!r}'


def AtLeast(minimum, also=()):  # noqa: N802  (reads like a type in annotations)
    """A lower bound: ``AtLeast(1)`` allows 1, 2, ...; ``also`` adds special values."""
    return Bound(minimum=minimum, also=tuple(also))


def Between(minimum, maximum, max_exclusive=False):  # noqa: N802
    """A closed range ``minimum..maximum`` (or half-open with ``max_exclusive``)."""
    return Bound(minimum=minimum, maximum=maximum, max_exclusive=max_exclusive)


#: The bound of a positive int.
POSITIVE = AtLeast(1)

PositiveInt = Annotated[int, POSITIVE]
"""An int >= 1 (crop sizes, frame counts, scales, repeats)."""

NonNegativeInt = Annotated[int, AtLeast(0)]
"""An int >= 0 (paddings, overlaps)."""


def bounds_of(metadata):
    """The :class:`Bound` objects among ``Annotated`` metadata."""
    return [item for item in metadata if isinstance(item, Bound)]


# -- checks of constructor arguments ----------------------------------------


def is_int(value: Any) -> bool:
    """True for a Python or NumPy integer; ``bool`` is not an int here."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_positive_int(value: Any) -> bool:
    """True for an int (not bool) >= 1 (the rule of :data:`PositiveInt`)."""
    return is_int(value) and POSITIVE.allows(value)


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
