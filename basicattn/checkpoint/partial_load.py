"""Partial (transfer) loading of pretrained weights: keep what fits, say what did not.

Transfer learning starts a network from another one's weights: DAN trains
BI x4, BD x3 and DN x3 from its BI x3 model (Zhang et al., Sec. IV-E). The
x3 upsampler has other shapes than the x4 one, so a plain
``load_state_dict`` fails even with ``strict=False``. :func:`partial_load`
keeps every tensor of the checkpoint whose name is selected by the
include/exclude patterns and whose name and shape the network has, leaves
the rest of the network at its initialisation, and returns one line that
says what was loaded and what was skipped (by prefix, with counts).

Option keys (``path.*``, basicattn/config/schema.py):
``partial_load_g: true`` switches it on (``strict_load_g`` is then not
used, and weights recorded for another scale are allowed: that is the
point of a transfer); ``partial_include_g`` / ``partial_exclude_g`` are
shell-style patterns of parameter names (``upsampler.*``), as in
``train.stages``.
"""

from collections import Counter
from fnmatch import fnmatchcase
from typing import Iterable, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from basicattn.checkpoint.state import load_network_weights
from basicattn.errors import CheckpointError, OptionError

#: The option keys, for messages.
INCLUDE_OPTION = 'path.partial_include_g'
EXCLUDE_OPTION = 'path.partial_exclude_g'


def group_by_prefix(names: Iterable[str], limit: int = 6) -> str:
    """``'upsampler.* (4), head.* (2)'``: names counted by their first dotted part.

    Args:
        names (Iterable[str]): Parameter or buffer names.
        limit (int): Groups shown; the rest are counted.
    """
    counts = Counter(n.split('.', 1)[0] + ('.*' if '.' in n else '') for n in names)
    groups = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ', '.join(f'{g} ({c})' for g, c in groups[:limit])
    if len(groups) > limit:
        shown += f', ... ({len(groups) - limit} more prefixes)'
    return shown


def _selected(name: str, include: Optional[Sequence[str]], exclude: Sequence[str]) -> bool:
    if include is not None and not any(fnmatchcase(name, p) for p in include):
        return False
    return not any(fnmatchcase(name, p) for p in exclude)


def check_patterns(
    include: Optional[Sequence[str]], exclude: Sequence[str], names: Iterable[str], source: str
) -> None:
    """Refuse a pattern that names nothing of the checkpoint or the network (a typo).

    Raises:
        OptionError: Naming the option and the pattern.
    """
    names = list(names)
    for option, patterns in ((INCLUDE_OPTION, include or ()), (EXCLUDE_OPTION, exclude)):
        for pattern in patterns:
            if not isinstance(pattern, str):
                raise OptionError(f'{option}: {pattern!r} is not a pattern (a string)')
            if not any(fnmatchcase(n, pattern) for n in names):
                raise OptionError(
                    f'{option}: {pattern!r} matches no tensor of {source} or of the network; '
                    "give shell-style patterns of parameter names such as 'upsampler.*'"
                )


def select_tensors(
    state: Mapping[str, torch.Tensor],
    net_state: Mapping[str, torch.Tensor],
    include: Optional[Sequence[str]] = None,
    exclude: Sequence[str] = (),
) -> Tuple[dict, dict]:
    """Split a checkpoint into the tensors that fit and the reasons for the rest.

    Args:
        state: The checkpoint's weights.
        net_state: The network's ``state_dict()``.
        include: Patterns of the names to load (None: all).
        exclude: Patterns of names never loaded.

    Returns:
        tuple[dict, dict]: The tensors to load, and ``{reason: [names]}`` with
        ``excluded``, ``shape`` (the network's shape differs), ``unexpected``
        (not in the network) and ``missing`` (network tensors left at
        their initialisation).
    """
    kept, skipped = {}, {'excluded': [], 'shape': [], 'unexpected': [], 'missing': []}
    for name, tensor in state.items():
        if not _selected(name, include, exclude):
            skipped['excluded'].append(name)
        elif name not in net_state:
            skipped['unexpected'].append(name)
        elif tuple(net_state[name].shape) != tuple(tensor.shape):
            skipped['shape'].append(name)
        else:
            kept[name] = tensor
    skipped['missing'] = [n for n in net_state if n not in kept]
    return kept, skipped


def partial_load(
    net: nn.Module,
    state: Mapping[str, torch.Tensor],
    source: str,
    include: Optional[Sequence[str]] = None,
    exclude: Sequence[str] = (),
    scale_note: str = '',
) -> str:
    """Load the tensors of ``state`` that fit ``net``; return the one-line report.

    Args:
        net: The network.
        state: The checkpoint's weights (wrapper prefixes removed).
        source: The file, for messages.
        include, exclude: Patterns (see :func:`select_tensors`).
        scale_note: Appended to the report (``x3 weights into an x4 network``).

    Returns:
        str: ``Partial load of FILE into NET: K of N checkpoint tensors loaded;
        skipped ...; left at initialisation ...``.

    Raises:
        OptionError: A pattern that matches nothing.
        CheckpointError: No tensor fits (the wrong file or network), or the
            weights are not finite.
    """
    net_state = net.state_dict()
    check_patterns(include, exclude, list(state) + list(net_state), source)
    kept, skipped = select_tensors(state, net_state, include, exclude)
    if not kept:
        raise CheckpointError(
            f'{source}: no tensor of these weights fits {type(net).__name__} by name and '
            f'shape (checkpoint: {group_by_prefix(state)}; network: '
            f'{group_by_prefix(net_state)}); check the file and network_g'
        )
    load_network_weights(net, kept, False, source)
    parts = [
        f'{label} {len(skipped[key])} [{group_by_prefix(skipped[key])}]'
        for key, label in (
            ('shape', 'other shape'),
            ('excluded', 'excluded'),
            ('unexpected', 'not in the network'),
        )
        if skipped[key]
    ]
    line = (
        f'Partial load of {source} into {type(net).__name__}: {len(kept)} of {len(state)} '
        f'checkpoint tensors loaded; skipped: {"; ".join(parts) or "none"}; left at '
        f'initialisation: {len(skipped["missing"])}'
    )
    if skipped['missing']:
        line += f' [{group_by_prefix(skipped["missing"])}]'
    return line + (f' ({scale_note})' if scale_note else '')
