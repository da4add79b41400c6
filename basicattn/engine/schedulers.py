"""BasicSR's restart schedulers as mmengine learning-rate schedulers.

BasicSR option files name ``CosineAnnealingRestartLR`` and
``MultiStepRestartLR`` (``basicsr/models/lr_scheduler.py``); basicattn
trains with mmengine's ``ParamSchedulerHook``, so both are written here on
mmengine's ``_ParamScheduler`` and registered in basicattn's
``PARAM_SCHEDULERS``. Their values are BasicSR's closed forms:

* ``MultiStepRestartLR``: at a restart ``r`` the rate becomes
  ``base_lr * restart_weights[r]``; each milestone after the latest restart
  multiplies it by ``gamma`` (a milestone listed twice twice). A milestone at
  a restart iteration is not applied (the restart wins), as in BasicSR.
* ``CosineAnnealingRestartLR``: in period ``i`` (periods follow one another,
  the ``k``-th step of a period of length ``T`` with weight ``w``) the rate is
  ``eta_min + w * (base_lr - eta_min) * (1 + cos(pi * k / T)) / 2``; after
  the last period it stays at ``eta_min``, where BasicSR would fail.

Each step applies the ratio of consecutive closed-form values to the current
rate (mmengine's chainable form), so a warm-up ``LinearLR`` running at the
same time multiplies with them instead of being overwritten; alone, the rate
equals the closed form at every iteration. Where the previous value is zero
(the end of a cosine period with ``eta_min=0``) the closed form is taken
directly. ``eta_min`` is subtracted before the ratio and added back, so the
cosine floor is exact.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence

from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler

from basicattn.errors import OptionError
from basicattn.registry import PARAM_SCHEDULERS

__all__ = ['CosineAnnealingRestartLR', 'MultiStepRestartLR']


class _ClosedFormRestartLR(_ParamScheduler):
    """An LR scheduler defined by ``closed_form(base_lr, step)``; see the module text."""

    floor = 0.0  # subtracted before the ratio, added back after (cosine's eta_min)

    def __init__(self, optimizer, begin, end, last_step, by_epoch, verbose):
        super().__init__(
            optimizer,
            'lr',
            begin=begin,
            end=end,
            last_step=last_step,
            by_epoch=by_epoch,
            verbose=verbose,
        )

    def closed_form(self, base_lr: float, step: int) -> float:
        """The learning rate at ``step`` of a group whose initial rate is ``base_lr``."""
        raise NotImplementedError

    def _get_value(self) -> list[float]:
        step, values = self.last_step, []
        for base, group in zip(self.base_values, self.optimizer.param_groups):
            now = self.closed_form(base, step) - self.floor
            before = (base if step == self.begin else self.closed_form(base, step - 1)) - self.floor
            if before == 0 or (step != self.begin and self._restarts_at(step)):
                values.append(now + self.floor)
            else:
                values.append((group[self.param_name] - self.floor) * now / before + self.floor)
        return values

    def _restarts_at(self, step: int) -> bool:
        """Whether the rate jumps to a restart value at ``step`` (taken directly)."""
        return False


def _check_weights(name: str, weights: Sequence[float], count: int, what: str) -> None:
    if len(weights) != count:
        raise OptionError(
            f'train.scheduler: {name} has {count} {what} but {len(weights)} '
            f'restart_weights; give one weight per {what[:-1]}'
        )


@PARAM_SCHEDULERS.register_module()
class MultiStepRestartLR(_ClosedFormRestartLR):
    """BasicSR's multi-step decay with restarts (iterations).

    Args:
        optimizer: The optimizer (or mmengine optim wrapper); set by basicattn.
        milestones (list[int]): Iterations at which the rate is multiplied by
            ``gamma``.
        gamma (float): Decay factor. Default: 0.1.
        restarts (list[int]): Iterations at which the rate restarts at
            ``base_lr * weight``. Default: (0,).
        restart_weights (list[float]): One weight per restart. Default: (1,).
        begin, end, last_step, by_epoch, verbose: mmengine's scheduler
            arguments; basicattn sets them.
    """

    def __init__(
        self,
        optimizer,
        milestones: Sequence[int],
        gamma: float = 0.1,
        restarts: Sequence[int] = (0,),
        restart_weights: Sequence[float] = (1,),
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ):
        _check_weights('MultiStepRestartLR', restart_weights, len(restarts), 'restarts')
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = gamma
        order = sorted(range(len(restarts)), key=lambda i: restarts[i])
        self.restarts = [int(restarts[i]) for i in order]
        self.restart_weights = [float(restart_weights[i]) for i in order]
        super().__init__(optimizer, begin, end, last_step, by_epoch, verbose)

    def _restarts_at(self, step: int) -> bool:
        return step in self.restarts

    def closed_form(self, base_lr: float, step: int) -> float:
        latest = bisect_right(self.restarts, step) - 1  # the last restart at or before step
        if latest >= 0:
            since, weight = self.restarts[latest], self.restart_weights[latest]
            first = bisect_right(self.milestones, since)  # milestones strictly after it
        else:
            weight, first = 1.0, 0
        decays = bisect_right(self.milestones, step) - first
        return base_lr * weight * self.gamma ** max(decays, 0)


@PARAM_SCHEDULERS.register_module()
class CosineAnnealingRestartLR(_ClosedFormRestartLR):
    """BasicSR's cosine annealing with restarts (iterations).

    Args:
        optimizer: The optimizer (or mmengine optim wrapper); set by basicattn.
        periods (list[int]): Length of each cosine cycle; the first starts at
            iteration 0.
        restart_weights (list[float]): Peak of each cycle as a fraction of the
            initial rate, one per period. Default: (1,).
        eta_min (float): The rate at the end of every cycle. Default: 0.
        begin, end, last_step, by_epoch, verbose: mmengine's scheduler
            arguments; basicattn sets them.
    """

    def __init__(
        self,
        optimizer,
        periods: Sequence[int],
        restart_weights: Sequence[float] = (1,),
        eta_min: float = 0.0,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ):
        _check_weights('CosineAnnealingRestartLR', restart_weights, len(periods), 'periods')
        if any(int(p) < 1 for p in periods):
            raise OptionError(
                f'train.scheduler: CosineAnnealingRestartLR periods must be positive, got '
                f'{list(periods)}'
            )
        self.periods = [int(p) for p in periods]
        self.restart_weights = [float(w) for w in restart_weights]
        self.eta_min = self.floor = float(eta_min)
        self.ends = [sum(self.periods[: i + 1]) for i in range(len(self.periods))]
        super().__init__(optimizer, begin, end, last_step, by_epoch, verbose)

    def _period(self, step: int) -> int | None:
        """Index of the period holding ``step`` (a period ends on its last step), or None."""
        index = bisect_left(self.ends, step)
        return index if index < len(self.ends) else None

    def _restarts_at(self, step: int) -> bool:
        return step > 0 and step - 1 in self.ends and self._period(step) is not None

    def closed_form(self, base_lr: float, step: int) -> float:
        index = self._period(step)
        if index is None:
            return self.eta_min
        start = self.ends[index - 1] if index else 0
        progress = math.pi * (step - start) / self.periods[index]
        weight = self.restart_weights[index]
        return self.eta_min + weight * 0.5 * (base_lr - self.eta_min) * (1 + math.cos(progress))
