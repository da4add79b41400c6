"""Multi-stage training schedules as data: :class:`MultiStageHook`.

Some methods train in stages: MANA first trains everything but its memory
bank on L1, then only the memory bank on its quantisation loss, then all of
it again; EDVR-style recipes freeze parts of the network for a warm-up. An
option file states the stages under ``train.stages``::

    train:
      total_iter: 150000
      losses:
        pixel: {type: L1Loss}
        quant: {type: AuxiliaryLoss, term: quant}
      stages:
        - {name: base,   until_iter: 90000,  frozen: ['memory.*'], losses: [pixel]}
        - {name: memory, until_iter: 120000, trainable: ['memory.*'], losses: [quant]}
        - {name: all,    until_iter: 150000, losses: [pixel], lr: 1.0e-5}

A stage runs while the iteration count is below its ``until_iter``. At its
first iteration the hook sets which generator parameters train
(``trainable`` patterns, default all, minus ``frozen`` patterns; shell-style
patterns on the generator's parameter names), which of ``train.losses`` are
summed (``losses``, default all), the learning rate (``lr``, default: keep)
and, with ``reset_optimizer`` (default true), clears the optimizer's state so
that the stage starts with a fresh optimizer, as the papers do.

Everything follows from the iteration count and from which stage was last
set up, which is stored in every checkpoint, so a run resumed in the middle
of a stage continues it (optimizer state kept) and a run resumed exactly at
a boundary sets the next stage up as an uninterrupted run would.
"""

from fnmatch import fnmatchcase
from typing import Any, List, Optional, Sequence

from mmengine.hooks import Hook
from mmengine.logging import print_log

from basicattn.checkpoint.state import unwrap_model
from basicattn.registry import HOOKS


def trainable_mask(
    names: Sequence[str],
    trainable: Optional[Sequence[str]] = None,
    frozen: Optional[Sequence[str]] = None,
) -> List[bool]:
    """Which parameter names train under ``trainable`` minus ``frozen``.

    Args:
        names (Sequence[str]): Parameter names.
        trainable (list[str], optional): Patterns; None means every name.
        frozen (list[str], optional): Patterns removed afterwards.

    Returns:
        list[bool]: One flag per name.

    Raises:
        ValueError: A pattern that matches no name (named, with examples).
    """
    for kind, patterns in (('trainable', trainable), ('frozen', frozen)):
        for pattern in patterns or []:
            if not any(fnmatchcase(n, pattern) for n in names):
                examples = ', '.join(list(names)[:6])
                raise ValueError(
                    f'stage {kind} pattern {pattern!r} matches no '
                    f'parameter of the network (e.g. {examples})'
                )
    flags = []
    for n in names:
        on = trainable is None or any(fnmatchcase(n, p) for p in trainable)
        flags.append(on and not any(fnmatchcase(n, p) for p in frozen or []))
    return flags


@HOOKS.register_module()
class MultiStageHook(Hook):
    """Apply ``train.stages`` from the iteration count (see module docstring).

    Args:
        stages (list[dict]): ``train.stages`` as the option validator
            passed them (:mod:`basicattn.config.stages`): each with
            ``until_iter`` and optionally ``name``, ``trainable``,
            ``frozen``, ``losses``, ``lr`` and ``reset_optimizer`` (default True).
    """

    priority = 'HIGH'

    def __init__(self, stages: List[dict]):
        self.stages = [dict(stage) for stage in stages]
        self.applied = None  # index of the stage last set up

    def stage_index(self, iteration: int) -> int:
        """The stage that iteration ``iteration`` (0-based) belongs to."""
        for i, stage in enumerate(self.stages):
            if iteration < stage['until_iter']:
                return i
        return len(self.stages) - 1

    def before_train(self, runner: Any) -> None:
        """Set up the stage of the starting iteration (fresh, resumed inside or at a boundary)."""
        target = self.stage_index(runner.iter)
        if self.applied == target:  # resumed inside the stage
            self._apply(runner, target, new_stage=False)
        else:  # a fresh run, or resumed exactly at a stage boundary
            self._apply(runner, target, new_stage=self.applied is not None)

    def before_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Optional[dict] = None
    ) -> None:
        """Set up the next stage at its first iteration."""
        target = self.stage_index(runner.iter)
        if target != self.applied:
            self._apply(runner, target, new_stage=True)

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        """Store which stage was last set up."""
        checkpoint['stage_hook'] = dict(applied=self.applied)

    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        """On resume, read back which stage was last set up."""
        if getattr(runner, '_resume', False):
            self.applied = checkpoint.get('stage_hook', {}).get('applied')

    def _apply(self, runner, index, new_stage):
        """Set up stage ``index``; ``new_stage``: reset/lr as at its start."""
        stage = self.stages[index]
        model = unwrap_model(runner.model)
        params = list(model.generator.named_parameters())
        flags = trainable_mask([n for n, _ in params], stage.get('trainable'), stage.get('frozen'))
        for (_, param), flag in zip(params, flags):
            param.requires_grad_(flag)
        model.use_losses(stage.get('losses'))
        optimizer = runner.optim_wrapper.optimizer
        if new_stage and stage.get('reset_optimizer', True):
            optimizer.state.clear()
        if stage.get('lr') is not None and (new_stage or self.applied is None):
            for group in optimizer.param_groups:
                group['lr'] = float(stage['lr'])
                group['initial_lr'] = float(stage['lr'])
        self.applied = index
        n_train = sum(p.numel() for (_, p), f in zip(params, flags) if f)
        print_log(
            f'stage {index + 1}/{len(self.stages)} '
            f'{stage.get("name") or ""} from iteration {runner.iter} to '
            f'{stage["until_iter"]}: {n_train:,} trainable parameters, '
            f'losses {model.active_losses or "all"}, lr '
            f'{optimizer.param_groups[0]["lr"]:g}'
            + (', optimizer reset' if new_stage and stage.get('reset_optimizer', True) else ''),
            logger='current',
        )
