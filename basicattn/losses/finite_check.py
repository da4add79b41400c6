"""A loss term that is NaN or inf stops training before the backward pass.

:func:`check_losses` is what the model calls on its loss terms; it raises
:class:`NonFiniteTraining`, which :mod:`basicattn.engine.nan_guard` (the
``train.nan_policy`` hook) turns into a stop or a rollback.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import torch

from basicattn.errors import NonFiniteError
from basicattn.utils.finite import describe_values

__all__ = ['ADVICE', 'NonFiniteTraining', 'check_losses']

#: What to do, at the end of a stop message.
ADVICE = (
    'lower train.optim_g.lr (or set train.clip_grad_norm, train.warmup_iter), '
    'or set train.nan_policy: rollback'
)


class NonFiniteTraining(NonFiniteError):
    """Something of the training state is NaN or inf.

    Args:
        what (str): What was not finite, e.g. ``"the loss train.losses.pixel
            (loss_pixel) is inf"``.
        iteration (int, optional): The 1-based iteration (as logged); the train
            loop sets it.
    """

    def __init__(self, what: str, iteration: Optional[int] = None):
        self.what, self.iteration = what, iteration
        self.outcome, self.advice = '', ADVICE
        super().__init__(self.message())

    def message(self, outcome: Optional[str] = None, advice: Optional[str] = None) -> str:
        """One line: what, when, the outcome and the advice."""
        when = f' at iteration {self.iteration}' if self.iteration is not None else ''
        outcome = self.outcome if outcome is None else outcome
        advice = self.advice if advice is None else advice
        return '; '.join(p for p in (f'training diverged: {self.what}{when}', outcome, advice) if p)

    def completed(
        self,
        iteration: Optional[int] = None,
        outcome: Optional[str] = None,
        advice: Optional[str] = None,
    ) -> NonFiniteTraining:
        """Set the iteration, outcome and advice that are known; return ``self``."""
        if iteration is not None:
            self.iteration = iteration
        if outcome is not None:
            self.outcome = outcome
        if advice is not None:
            self.advice = advice
        self.args = (self.message(),)
        return self


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def check_losses(losses: Mapping[str, Any]) -> None:
    """Raise :class:`NonFiniteTraining` naming the first loss term that is not finite.

    Called before the backward pass, so a non-finite loss never reaches the
    weights. With several processes the verdict is shared (one all-reduce of
    a flag per term), so every process stops or rolls back together.

    Args:
        losses (Mapping[str, Tensor | list[Tensor]]): ``{'loss_<name>': value}``
            as the model's ``'loss'`` mode returns it.
    """
    names, values = [], []
    for name, value in losses.items():
        if isinstance(value, torch.Tensor):
            values.append(value.detach().float().mean())
        elif isinstance(value, (list, tuple)) and value and torch.is_tensor(value[0]):
            values.append(sum(v.detach().float().mean() for v in value))
        else:
            continue
        names.append(name)
    if not values:
        return
    stacked = torch.stack(values)
    finite = torch.isfinite(stacked)
    if _distributed():
        flags = finite.to(torch.int32)
        torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MIN)
        finite = flags.bool()
    if bool(finite.all()):
        return
    index = int(torch.nonzero(~finite)[0])
    name = names[index]
    key = name[len('loss_') :] if name.startswith('loss_') else name
    here = stacked[index]
    what = describe_values(here) if not torch.isfinite(here) else 'not finite on another process'
    raise NonFiniteTraining(f'the loss train.losses.{key} ({name}) is {what}')
