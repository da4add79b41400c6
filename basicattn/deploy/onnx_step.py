"""A recurrent arch's step as a module with its state as explicit tensors.

DASAA's ConvLSTM carries ``(h, c)`` from one output frame to the next
(``net(lq, state, return_state=True)``). :class:`RecurrentStep` makes that one
call a function of plain tensors, ``(lq, h, c) -> (sr, h', c')``, so the ONNX
exporter writes a *step graph* with the state among its inputs and outputs;
:mod:`basicattn.deploy.onnx_stream` feeds each step the state the previous one
returned. A zero state is the start of a clip: the arch's own ``state=None``
starts from zeros too, so the first step equals ``net(lq)``.
"""

from typing import Sequence, Tuple

import torch
from torch import nn

from basicattn.archs.facts import is_recurrent

__all__ = [
    'STATE_INPUTS',
    'STATE_OUTPUTS',
    'RecurrentStep',
    'has_state',
    'initial_state',
]

#: Graph input names of the state (after ``lq``) and output names (after ``sr``).
STATE_INPUTS = ('state_h', 'state_c')
STATE_OUTPUTS = ('state_h_out', 'state_c_out')


def has_state(net: nn.Module) -> bool:
    """Whether ``net`` carries a state that a step graph can hold.

    :func:`is_recurrent`, and the arch was built with its recurrent part
    (DASAA's ``use_lstm``; without it the forward returns no state): one
    forward of a tiny input tells.
    """
    if not is_recurrent(net):
        return False
    try:
        initial_state(net, example_input(net, (8, 8)))
    except ValueError:
        return False
    return True


class RecurrentStep(nn.Module):
    """``(lq, h, c) -> (sr, h', c')``: one step of a recurrent arch.

    Args:
        net (nn.Module): An arch whose ``forward(x, state, return_state=True)``
            returns ``(output, (h, c))`` (DASAA).
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(
        self, lq: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out, (h, c) = self.net(lq, (h, c), return_state=True)
        return out, h, c


def initial_state(net: nn.Module, lq: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The zero ``(h, c)`` of ``net`` for the input ``lq`` (its shape, from one forward).

    Raises:
        ValueError: ``net`` has no state (e.g. DASAA with ``use_lstm=False``).
    """
    with torch.no_grad():
        _, state = net(lq, None, return_state=True)
    if state is None:
        raise ValueError(f'{type(net).__name__} returns no recurrent state (built without one)')
    return tuple(torch.zeros_like(s) for s in state)


def example_input(
    net: nn.Module, size: Sequence[int], batch: int = 1, seed: int = 0
) -> torch.Tensor:
    """A random input in [0, 1] of LR ``size = (h, w)`` in the layout ``net`` takes.

    Video archs (a ``num_frames`` attribute) get ``(batch, T, 3, h, w)``,
    image archs ``(batch, 3, h, w)``.
    """
    h, w = size
    frames = getattr(net, 'num_frames', None)
    shape = (batch, frames, 3, h, w) if frames else (batch, 3, h, w)
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=generator)
