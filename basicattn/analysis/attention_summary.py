"""Statistics of every tap over a set of inputs (``tools/analyze.py attention``).

For each input the command runs one forward under
:func:`~basicattn.analysis.taps.record_taps` with :meth:`TapSummary.reduce`,
which turns every recorded tensor into a few numbers and small maps at once
(so that 16 full-size A2N feature maps are never held together):

* a *scalar* tap (one value per image, e.g. A2N's ``pi_att``) keeps its value;
* a *map* tap keeps, per image, the mean, standard deviation, minimum and
  maximum of all its elements, and a ``H x W`` map for the figures: the
  channel mean of ``(N, C, H, W)`` maps, the maximum over the slots of
  MANA's ``(N, H, W, slots)`` memory attention (how concentrated a pixel's
  read is), the full tensor of query-pixel taps;
* Table 1 (:mod:`basicattn.analysis.highpass`): for a block that has both
  ``attention_input`` and ``attention_map`` taps, their high-pass
  correlations.

:meth:`TapSummary.statistics` then gives ``attention.json``: per tap
``mean``, ``std``, ``min``, ``max`` over the inputs and the per-input
``values`` (for map taps: the per-input means; ``std`` is over every
element of every input).
"""

import math
from typing import Any, Dict, List, Optional

import torch

from .highpass import FILTERS, highpass_correlation

__all__ = ['TapSummary']

_INPUT, _GATE = '.attention_input', '.attention_map'


def _summary(flat: torch.Tensor) -> torch.Tensor:
    flat = flat.double()
    return torch.stack(
        [flat.mean(1), flat.std(1, unbiased=False), flat.amin(1), flat.amax(1)], dim=1
    )


class TapSummary:
    """Collects per-input numbers and maps of every tap.

    Args:
        keep_maps (int): Inputs whose maps are kept for the figures (the first ones).
    """

    def __init__(self, keep_maps: int = 5):
        self.keep_maps = keep_maps
        self.inputs: List[str] = []
        self.scalars: Dict[str, List[float]] = {}
        self.maps: Dict[str, List[torch.Tensor]] = {}  # per tap: per input (4,) summary, numel
        self.shapes: Dict[str, List[int]] = {}
        self.numel: Dict[str, List[int]] = {}
        self.figure_maps: List[Dict[str, torch.Tensor]] = []  # per kept input
        self.highpass: Dict[str, Dict[str, List[float]]] = {}  # block prefix -> filter -> values
        self._pending: Dict[str, torch.Tensor] = {}

    # -- during the forward ------------------------------------------------
    def reduce(self, name: str, t: torch.Tensor) -> Dict[str, Any]:
        """The ``reduce`` of :func:`record_taps`: what to keep of ``t`` (batch of one)."""
        t = t.detach()
        flat = t.reshape(t.shape[0], -1)
        if flat.shape[1] == 1:
            return {'scalar': flat[:, 0].double()}
        out: Dict[str, Any] = {'summary': _summary(flat), 'shape': list(t.shape[1:])}
        if name.endswith('query_attention'):
            out['map'] = t.float()
        elif name.endswith('slot_attention'):
            out['map'] = t.float().amax(dim=-1)
        elif t.dim() == 4 and t.shape[-1] > 1 and t.shape[-2] > 1:
            out['map'] = t.float().mean(dim=1)
        if name.endswith(_INPUT):
            self._pending[name[: -len(_INPUT)]] = t.float().clone()
        elif name.endswith(_GATE) and name[: -len(_GATE)] in self._pending:
            feature = self._pending.pop(name[: -len(_GATE)])
            out['highpass'] = highpass_correlation(t.float(), feature)
        return out

    def add(self, name: str, recorded: Dict[str, Dict[str, Any]]) -> None:
        """Add one input's recording (tap name -> what :meth:`reduce` returned)."""
        self._pending.clear()
        self.inputs.append(name)
        keep = len(self.figure_maps) < self.keep_maps
        maps = {}
        for tap, value in recorded.items():
            if 'scalar' in value:
                self.scalars.setdefault(tap, []).append(float(value['scalar'][0]))
                continue
            self.maps.setdefault(tap, []).append(value['summary'][0])
            self.numel.setdefault(tap, []).append(math.prod(value['shape']))
            self.shapes.setdefault(tap, value['shape'])
            if 'highpass' in value:
                block = self.highpass.setdefault(tap[: -len(_GATE)], {f: [] for f in FILTERS})
                for f in FILTERS:
                    block[f].append(float(value['highpass'][f][0]))
            if keep and 'map' in value:
                maps[tap] = value['map'][0]
        if keep:
            self.figure_maps.append(maps)

    # -- afterwards ----------------------------------------------------------
    def statistics(self) -> Dict[str, Dict[str, Any]]:
        """Per tap: ``mean``, ``std``, ``min``, ``max`` and per-input ``values`` (module doc)."""
        stats: Dict[str, Dict[str, Any]] = {}
        for tap, values in self.scalars.items():
            v = torch.tensor(values, dtype=torch.float64)
            stats[tap] = dict(
                kind='scalar',
                mean=float(v.mean()),
                std=float(v.std(unbiased=False)),
                min=float(v.min()),
                max=float(v.max()),
                values=dict(zip(self.inputs, values)),
            )
        for tap, rows in self.maps.items():
            s = torch.stack(rows)  # (inputs, 4): mean, std, min, max
            n = torch.tensor(self.numel[tap], dtype=torch.float64)
            mean = float((s[:, 0] * n).sum() / n.sum())
            second = float(((s[:, 1] ** 2 + s[:, 0] ** 2) * n).sum() / n.sum())
            stats[tap] = dict(
                kind='map',
                shape=self.shapes[tap],
                mean=mean,
                std=math.sqrt(max(second - mean * mean, 0.0)),
                min=float(s[:, 2].min()),
                max=float(s[:, 3].max()),
                values=dict(zip(self.inputs, s[:, 0].tolist())),
            )
        return stats

    def table1(self) -> Optional[Dict[str, Dict[str, float]]]:
        """Block -> filter -> correlation averaged over the inputs (None without pairs)."""
        if not self.highpass:
            return None
        table = {}
        for block, per_filter in self.highpass.items():
            row = {}
            for f, values in per_filter.items():
                finite = [v for v in values if math.isfinite(v)]
                row[f] = sum(finite) / len(finite) if finite else math.nan
            table[block] = row
        return table
