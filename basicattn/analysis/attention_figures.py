"""The figures of ``tools/analyze.py attention``, from a :class:`TapSummary`.

* :func:`block_heatmaps` (A2N paper, Fig. 2): per chosen block, the channel
  mean of the feature the attention multiplies, of the gated feature (white
  0, red positive, blue negative) and of the attention map (brighter =
  higher).
* :func:`enhanced_suppressed` (Fig. 7): per input, the channel-mean
  attention maps of the two blocks with the highest ``pi_att`` and the two
  with the lowest, the value and block index under each.
* :func:`scalar_distribution`: every block's value of a per-block scalar tap
  (``pi_att``) over the inputs, one plot.
* :func:`query_attention_figure` (MANA, DASAA): the attention of each query
  pixel drawn over the frames (one shared colour scale per query; the query
  pixel circled on the centre frame).
* :func:`tap_maps` (every other map tap: DKSAN's DKSA maps per level and
  offset lengths, DAN's LEA maps, DASAA's PAB map and mask ...): each map's
  heat map, labelled with the tap name.
"""

import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .plot import column_plot, diverging, grid, heat, labelled, overlay

__all__ = [
    'blocks_of',
    'block_heatmaps',
    'enhanced_suppressed',
    'scalar_distribution',
    'query_attention_figure',
    'tap_maps',
]

#: Default longer side of a panel, px (``--panel-size``).
PANEL = 144


def blocks_of(names, suffix: str) -> List[int]:
    """Indices ``i`` of the names ``blocks.{i}.<suffix>``, sorted."""
    pattern = re.compile(rf'blocks\.(\d+)\.{re.escape(suffix)}\Z')
    return sorted(int(m.group(1)) for m in map(pattern.match, names) if m)


def block_heatmaps(
    maps: Dict[str, torch.Tensor], blocks: Sequence[int], panel: int = PANEL
) -> np.ndarray:
    """Fig. 2: a column per block; rows input feature, gated feature, attention map."""
    rows = []
    for what, title, colour in (
        ('attention_input', 'input feature', diverging),
        ('attention_output', 'output feature', diverging),
        ('attention_map', 'attention map', heat),
    ):
        row = []
        for i in blocks:
            m = maps[f'blocks.{i}.{what}'].numpy()
            row.append(
                labelled(
                    colour(m),
                    f'block {i}: {title}',
                    f'range {m.min():.3g}..{m.max():.3g}',
                    size=panel,
                )
            )
        rows.append(row)
    return grid(rows)


def enhanced_suppressed(
    per_input: Sequence[Tuple[str, Dict[str, torch.Tensor], Dict[int, float]]],
    count: int = 2,
    panel: int = PANEL,
) -> np.ndarray:
    """Fig. 7: per input a row, the ``count`` highest and ``count`` lowest ``pi_att`` blocks.

    Args:
        per_input: ``(name, maps, {block: pi_att})`` for each input.
    """
    rows = []
    for name, maps, pi in per_input:
        order = sorted(pi, key=lambda i: pi[i], reverse=True)
        chosen = order[:count] + order[-count:]
        row = []
        for rank, i in enumerate(chosen):
            kind = 'enhanced' if rank < count else 'suppressed'
            row.append(
                labelled(
                    heat(maps[f'blocks.{i}.attention_map'].numpy()),
                    f'{name}: {kind}',
                    f'block {i}, pi_att={pi[i]:.3f}',
                    size=panel,
                )
            )
        rows.append(row)
    return grid(rows)


def scalar_distribution(stats: Dict[str, dict], suffix: str, inputs: Sequence[str]) -> np.ndarray:
    """Every block's ``suffix`` tap over the inputs (points) and its mean (bar)."""
    blocks = blocks_of(stats, suffix)
    columns = [[[stats[f'blocks.{i}.{suffix}']['values'][n] for n in inputs]] for i in blocks]
    return column_plot(
        columns,
        [str(i) for i in blocks],
        [suffix],
        f'{suffix} per block over {len(inputs)} inputs (x: block index)',
        suffix,
    )


def query_attention_figure(
    frames: Sequence[np.ndarray],
    att: torch.Tensor,
    queries: Sequence[Tuple[int, int]],
    tap: str,
    panel: int = PANEL,
) -> np.ndarray:
    """Query-pixel attention over the frames: a row per query, a panel per frame.

    Args:
        frames: The input frames (uint8 RGB); for a ``(K, H, W)`` attention
            (over one grid: DASAA) the centre frame is used.
        att: ``(K, T, H, W)`` or ``(K, H, W)``.
        queries: The ``(y, x)`` query pixels.
    """
    import cv2

    att = att if att.dim() == 4 else att[:, None]
    t = att.shape[1]
    shown = list(frames) if t == len(frames) else [frames[len(frames) // 2]]
    centre = len(shown) // 2
    rows = []
    for k, (y, x) in enumerate(queries):
        high = float(att[k].max())
        row = []
        for f in range(t):
            img = overlay(shown[f], att[k, f].numpy(), high)
            if f == centre:
                img = np.ascontiguousarray(img)
                cv2.circle(img, (x, y), max(1, img.shape[0] // 40), (0, 255, 0), 1)
            label = f'frame {f - centre:+d}' if t > 1 else 'centre frame'
            row.append(
                labelled(
                    img, f'{tap}: query (y={y}, x={x})', f'{label}, max {high:.3g}', size=panel
                )
            )
        rows.append(row)
    return grid(rows)


def tap_maps(
    maps: Dict[str, torch.Tensor], names: Sequence[str], per_row: int = 6, panel: int = PANEL
) -> Optional[np.ndarray]:
    """The heat map of every named ``H x W`` map, ``per_row`` panels a row."""
    panels = []
    for name in names:
        m = maps[name]
        if m.dim() == 3:  # several maps of one tap (offset length per neighbour)
            panels += [
                labelled(
                    heat(m[j].numpy()),
                    name,
                    f'[{j}] {float(m[j].min()):.3g}..{float(m[j].max()):.3g}',
                    size=panel,
                )
                for j in range(m.shape[0])
            ]
        else:
            panels.append(
                labelled(
                    heat(m.numpy()),
                    name,
                    f'{float(m.min()):.3g}..{float(m.max()):.3g}',
                    size=panel,
                )
            )
    if not panels:
        return None
    return grid([panels[i : i + per_row] for i in range(0, len(panels), per_row)])
