"""JSON that every parser reads, with metric values that may be infinite.

A PSNR of an output equal to its ground truth is ``inf``; Python's ``json``
would write it as ``Infinity``, which is not JSON and which other parsers
(JavaScript, jq, pandas' strict mode) refuse. :func:`dumps` writes every
non-finite float as the string ``"inf"``, ``"-inf"`` or ``"nan"``, and
:func:`number` reads such a value (or a plain number) back as a float.
``tools/test.py`` writes ``metrics*.json`` with the first;
:mod:`basicattn.metrics.results_table` reads them with the second.
"""

import json
import math
from typing import Any, Optional

__all__ = ['dumps', 'number']

_NON_FINITE = {'inf': math.inf, '-inf': -math.inf, 'nan': math.nan}


def _finite_or_text(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # 'inf', '-inf', 'nan'
    if isinstance(value, dict):
        return {k: _finite_or_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_text(v) for v in value]
    return value


def dumps(content: Any, indent: Optional[int] = 2) -> str:
    """``json.dumps`` with non-finite floats as ``"inf"``/``"-inf"``/``"nan"`` strings."""
    return json.dumps(_finite_or_text(content), indent=indent, allow_nan=False)


def number(value: Any) -> Optional[float]:
    """A metric value read back: an int or float, or one of the strings :func:`dumps`
    writes for non-finite values; None for anything else (a bool included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return _NON_FINITE.get(value)
    return None
