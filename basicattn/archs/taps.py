"""Attention taps: named places where an arch forms an attention quantity.

An arch puts a :class:`Tap` where it computes something worth looking at (an
attention map, a branch weight, the attention of a few query pixels) and
passes the quantity through it: ``gate = self.attention_map(torch.sigmoid(y))``.
A tap is the identity, holds no parameters and so changes neither outputs nor
state dicts; its name is its module path (``blocks.3.pi_att``), which forward
hooks can find. The recording API lives in :mod:`basicattn.analysis.taps`, a
layer above the archs.

Each arch declares its taps in a class attribute ``TAPS``: a dict from the
name pattern (``{i}`` for a block index) to a one-line meaning, repeated in
its docstring and doc page.

Quantities that cost extra work to form (the attention of chosen query pixels
over a whole frame) are computed only while somebody listens:
``if self.query_attention.listening: self.query_attention(expensive())``.
"""

from torch import nn


class Tap(nn.Module):
    """Identity that names an attention quantity for forward hooks."""

    @property
    def listening(self) -> bool:
        """True while a forward hook is registered on this tap (a recorder is on)."""
        return bool(self._forward_hooks)

    def forward(self, x):
        return x
