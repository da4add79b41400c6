"""Attention taps: named places where an arch forms an attention quantity.

An arch puts a :class:`Tap` where it computes something worth looking at (an
attention map, a branch weight, the attention of a few query pixels) and
passes the quantity through it: ``gate = self.attention_map(torch.sigmoid(y))``.
A tap is the identity, holds no parameters and so changes neither outputs nor
state dicts; its name is its module path (``blocks.3.pi_att``), which forward
hooks can find. The recording API lives in :mod:`basicattn.analysis.taps`, a
layer above the archs. An arch uses the tap's *output*, so a forward hook that
returns a replacement changes what the arch computes with (the
block-importance analysis forces A2N's ``pi_att`` this way).

Each arch declares its taps in a class attribute ``TAPS``: a dict from the
name pattern (``{i}`` for a block index) to a one-line meaning, repeated in
its docstring and doc page. A pattern is present when the arch is built with
the part it names (DASAA's mask only with ``use_mask=True`` ...).

Quantities that cost extra work to form (the attention of chosen query pixels
over a whole frame) are computed only while somebody listens:
``if self.query_attention.listening: self.query_attention(expensive())``.
Which pixels: :attr:`Tap.queries`, set by the recorder, read by the arch
through :meth:`Tap.query_index` (one mechanism for every arch).
"""

from typing import Optional, Sequence, Tuple

import torch
from torch import nn


class Tap(nn.Module):
    """Identity that names an attention quantity for forward hooks.

    Attributes:
        queries (sequence[tuple[int, int]] | None): ``(y, x)`` query pixels,
            on the grid of the arch's input (the LR frame), for taps that
            record the attention of chosen pixels; None: the centre pixel.
            Set by the recorder, read by the arch only while listening.
    """

    def __init__(self):
        super().__init__()
        self.queries: Optional[Sequence[Tuple[int, int]]] = None

    @property
    def listening(self) -> bool:
        """True while a forward hook is registered on this tap (a recorder is on)."""
        return bool(self._forward_hooks)

    def query_index(self, height: int, width: int, device=None) -> torch.Tensor:
        """Row-major indices ``y * width + x`` of the query pixels on an ``H x W`` grid.

        Raises:
            ValueError: A query pixel outside the grid.
        """
        points = self.queries if self.queries is not None else [(height // 2, width // 2)]
        for y, x in points:
            if not (0 <= y < height and 0 <= x < width):
                raise ValueError(f'query pixel (y={y}, x={x}) is outside the {height}x{width} grid')
        return torch.tensor([y * width + x for y, x in points], dtype=torch.long, device=device)

    def forward(self, x):
        return x
