"""Numeric bounds of options and keyword arguments, checked before anything is built.

A :class:`Bound` is attached to a plain option key in the option schema
(``Field(..., bound=AtLeast(1))``) or to a constructor argument through
``typing.Annotated``::

    from basicattn.utils.bounds import PositiveInt

    def __init__(self, gt_size: Optional[PositiveInt] = None, num_frame: PositiveInt = 5):

The option validator reads both and reports a value outside the bound with
its key path (``datasets.train.gt_size: must be >= 1, got 0``).
"""

from dataclasses import dataclass
from typing import Annotated, Any, Optional, Tuple


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


PositiveInt = Annotated[int, AtLeast(1)]
"""An int >= 1 (crop sizes, frame counts, scales, repeats)."""

NonNegativeInt = Annotated[int, AtLeast(0)]
"""An int >= 0 (paddings, overlaps)."""


def bounds_of(metadata):
    """The :class:`Bound` objects among ``Annotated`` metadata."""
    return [item for item in metadata if isinstance(item, Bound)]
