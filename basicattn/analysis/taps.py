"""Record (or replace) the attention quantities an arch passes through its taps.

Every arch marks where it forms an attention quantity with a
:class:`~basicattn.archs.taps.Tap` (an identity module) and declares the
name patterns in its ``TAPS`` dict. This module is the one API that reads
them::

    from basicattn.analysis.taps import record_taps, tap_names

    with record_taps(net, ['blocks.*.pi_att', 'blocks.0.attention_map']) as rec:
        net(lr)
    rec['blocks.3.pi_att']          # tensor (N,), detached, on the CPU

Patterns are shell-style (``*`` matches any text, ``blocks.*.pi_att``) or
the arch's declared patterns (``blocks.{i}.pi_att``; every ``{...}``
matches an index). For taps that record the attention of chosen query
pixels (MANA, DASAA) ``queries=[(y, x), ...]`` (LR pixels) picks them; the
default is the centre pixel. :func:`replace_taps` makes a tap return
something else (a forward hook returning a replacement), which the arch
then computes with; the block-importance analysis forces A2N's ``pi_att``
this way.

While nothing is recorded a tap costs one identity call, and outputs with
and without a recorder are bit-identical (tests/analysis/test_taps.py).
"""

import fnmatch
import re
from contextlib import contextmanager
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from basicattn.archs.taps import Tap
from basicattn.errors import UserError

__all__ = ['tap_names', 'declared_taps', 'match_taps', 'record_taps', 'replace_taps']

Patterns = Union[str, Iterable[str]]
Reduce = Callable[[str, torch.Tensor], torch.Tensor]


def _taps(model: nn.Module) -> Dict[str, Tap]:
    return {name: m for name, m in model.named_modules() if isinstance(m, Tap)}


def tap_names(model: nn.Module) -> List[str]:
    """The names (module paths) of every tap of ``model``, in module order."""
    return list(_taps(model))


def declared_taps(model: nn.Module) -> Dict[str, str]:
    """The arch's declared taps: name pattern -> one-line meaning (``{}`` for none)."""
    return dict(getattr(type(model), 'TAPS', {}))


def _pattern_regex(pattern: str) -> 're.Pattern':
    parts = re.split(r'(\{[^}]*\})', pattern)
    body = ''.join(
        r'\d+' if p.startswith('{') and p.endswith('}') else fnmatch.translate(p)[4:-3]
        for p in parts
    )
    return re.compile(f'(?s:{body})\\Z')


def match_taps(model: nn.Module, patterns: Patterns) -> List[str]:
    """The tap names matching any of ``patterns`` (module order).

    Raises:
        UserError: A pattern matches no tap (the message lists the declared ones).
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    names = tap_names(model)
    chosen = set()
    for pattern in patterns:
        regex = _pattern_regex(pattern)
        hits = [n for n in names if regex.match(n)]
        if not hits:
            declared = ', '.join(declared_taps(model)) or 'none'
            raise UserError(
                f'tap pattern {pattern!r} matches no tap of {type(model).__name__} '
                f'(its taps: {declared})'
            )
        chosen.update(hits)
    return [n for n in names if n in chosen]


def _keep(value):
    """A detached CPU copy of a tensor (or of the tensors in a dict / list a ``reduce`` gave)."""
    if isinstance(value, torch.Tensor):
        # a copy: archs may overwrite the tensor in place after the tap (A2N's gates)
        return value.detach().to('cpu', copy=True)
    if isinstance(value, dict):
        return {k: _keep(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_keep(v) for v in value)
    return value


@contextmanager
def _hooks(taps: Dict[str, Tap], hook_for, queries):
    saved = {name: tap.queries for name, tap in taps.items()}
    handles = []
    try:
        for name, tap in taps.items():
            if queries is not None:
                tap.queries = [(int(y), int(x)) for y, x in queries]
            handles.append(tap.register_forward_hook(hook_for(name)))
        yield
    finally:
        for handle in handles:
            handle.remove()
        for name, tap in taps.items():
            tap.queries = saved[name]


@contextmanager
def record_taps(
    model: nn.Module,
    patterns: Patterns = '*',
    queries: Optional[Sequence[Tuple[int, int]]] = None,
    reduce: Optional[Reduce] = None,
) -> Iterator[Dict[str, torch.Tensor]]:
    """Record the taps matching ``patterns`` during the forwards inside the block.

    Args:
        model (nn.Module): The network.
        patterns (str | iterable[str]): Tap name patterns (module docstring).
            Default: every tap.
        queries (sequence[tuple[int, int]], optional): ``(y, x)`` LR pixels
            for the query-pixel taps; None: the centre pixel.
        reduce (callable, optional): ``reduce(name, tensor) -> value``
            applied before a value is kept (e.g. a channel mean, to keep
            less memory); the value may be a tensor or a dict / list of
            them (and of plain numbers).

    Yields:
        dict[str, Tensor]: Filled while the model runs: tap name -> the
        detached CPU copy of what passed through it (a second forward
        replaces it). Taps the forward did not reach are absent.
    """
    taps = {name: _taps(model)[name] for name in match_taps(model, patterns)}
    recording: Dict[str, torch.Tensor] = {}

    def hook_for(name):
        def hook(module, args, output):
            value = output if reduce is None else reduce(name, output)
            recording[name] = _keep(value)

        return hook

    with _hooks(taps, hook_for, queries):
        yield recording


@contextmanager
def replace_taps(
    model: nn.Module, replacements: Dict[str, Callable[[torch.Tensor], torch.Tensor]]
) -> Iterator[None]:
    """Make taps return ``replacements[name](value)`` instead of ``value`` inside the block.

    The arch computes with a tap's output, so this changes the network's
    result (e.g. ``{'blocks.3.pi_att': torch.zeros_like}`` switches block
    3's attention branch off). Names are exact tap names.

    Raises:
        UserError: A name that is no tap of ``model``.
    """
    every = _taps(model)
    unknown = sorted(set(replacements) - set(every))
    if unknown:
        raise UserError(f'no tap named {", ".join(unknown)} in {type(model).__name__}')
    taps = {name: every[name] for name in replacements}

    def hook_for(name):
        def hook(module, args, output):
            return replacements[name](output)

        return hook

    with _hooks(taps, hook_for, None):
        yield
