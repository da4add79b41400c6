"""The non-finite training guard: ``train.nan_policy`` (``stop`` | ``rollback``).

A learning rate that is far too large makes the loss inf, then NaN; left
alone, training goes on, every later checkpoint holds NaN weights and the
images they produce are black. Three checks find it as early as possible,
each before anything is written:

* the loss terms, before the backward pass (:func:`check_losses`, called by
  :meth:`basicattn.models.sr_model.SRModel.parse_losses`): names the term
  (``train.losses.pixel``);
* the gradients, just before the optimizer applies them (a step pre-hook on
  the optimizer): names the parameter. With ``train.amp: fp16`` the loss
  scaler skips a step whose gradients overflowed and lowers its scale, which
  is how fp16 training works: the optimizer is then not called, so this check
  does not see those gradients and they are not failures;
* the weights after each iteration, before any checkpoint of it can be saved,
  and every checkpoint's weights (``state_dict``, ``ema_state_dict``) just
  before it is written (:class:`NonFiniteGuardHook`).

A failure is a :class:`NonFiniteTraining`; the train loop
(:class:`~basicattn.engine.loops.ResumableIterBasedTrainLoop`) adds the
iteration and hands it to :meth:`NonFiniteGuardHook.handle`, which acts per
``train.nan_policy``:

* ``stop`` (default): one ``error:`` line naming what was not finite, the
  iteration and what to do, exit code 2. Nothing of the failing iteration is
  saved, so ``last_checkpoint`` still names the last good checkpoint.
* ``rollback``: reload the last good checkpoint (``last_checkpoint``; model,
  optimizer, EMA, schedulers, stage and data position, as ``--auto-resume``
  does), multiply the learning rate by ``train.nan_rollback.lr_factor`` (every
  parameter group and the schedulers' base values, so the schedule continues
  scaled) and go on. Before the first checkpoint of the run there is no file
  to reload: the run goes back to the state it started from (fresh weights or
  ``path.pretrain_network_g``, iteration 0; or the resumed checkpoint), kept in
  memory at the start for this. After ``train.nan_rollback.max_times``
  rollbacks, the next failure stops the run as ``stop`` does. The number of
  rollbacks and the learning-rate scale in effect are stored in every
  checkpoint (``nan_guard``), so a resumed run keeps counting. A stage of
  ``train.stages`` that sets its own ``lr`` sets it as written, unscaled.
"""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log

from basicattn.checkpoint import work_dir as experiment_folder
from basicattn.checkpoint.state import unwrap_model
from basicattn.losses.finite_check import (
    NonFiniteTraining,
)
from basicattn.registry import HOOKS
from basicattn.utils.finite import first_non_finite

if TYPE_CHECKING:
    from mmengine.runner import Runner

#: ``train.nan_policy`` values.
POLICIES = ('stop', 'rollback')


def check_weights(named: Any, what: str) -> None:
    """Raise :class:`NonFiniteTraining` when a tensor of ``named`` is not finite.

    Args:
        named: ``(name, tensor)`` pairs.
        what (str): The kind of tensors, for the message (``'the weights'``).
    """
    found = first_non_finite(named)
    if found is not None:
        raise NonFiniteTraining(f'{what} are not finite ({found[0]} holds {found[1]})')


def scale_learning_rate(runner: Runner, factor: float) -> float:
    """Multiply the learning rate of every parameter group and schedule by ``factor``.

    The schedulers' base values (and a cosine's ``eta_min``) are scaled too, so
    that the schedule continues from the scaled rate rather than jumping back.

    Returns:
        float: The first group's new learning rate.
    """
    optimizer = runner.optim_wrapper.optimizer
    for group in optimizer.param_groups:
        group['lr'] *= factor
        if 'initial_lr' in group:
            group['initial_lr'] *= factor
    schedulers = runner.param_schedulers or []
    if isinstance(schedulers, dict):
        schedulers = [s for group in schedulers.values() for s in group]
    for scheduler in schedulers:
        if getattr(scheduler, 'param_name', 'lr') != 'lr':
            continue
        scheduler.base_values = [v * factor for v in scheduler.base_values]
        if getattr(scheduler, '_last_value', None):
            scheduler._last_value = [v * factor for v in scheduler._last_value]
        for attr in ('eta_min', 'floor'):
            value = getattr(scheduler, attr, None)
            if isinstance(value, float) and value:
                setattr(scheduler, attr, value * factor)
    return float(optimizer.param_groups[0]['lr'])


def _cpu_copy(state: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: v.detach().clone().cpu() if torch.is_tensor(v) else v for k, v in state.items()}


@HOOKS.register_module()
class NonFiniteGuardHook(Hook):
    """Check the training state for NaN and inf and act per ``train.nan_policy``.

    See the module docstring. Runs after the EMA hook and before every hook
    that writes a checkpoint (mmengine's CheckpointHook, ``StopAtIterHook``,
    ``NetworkRecordHook``'s ``net_g_<iter>`` files).

    Args:
        policy (str): ``'stop'`` or ``'rollback'``.
        lr_factor (float): Learning-rate factor of each rollback, in (0, 1).
        max_times (int): Rollbacks allowed; the next failure stops the run.
    """

    priority = 'BELOW_NORMAL'
    # checked by engine.hook_order: it checks the EMA weights, before they are recorded
    runs_after = ('EMAHook',)
    runs_before = ('NetworkRecordHook',)

    def __init__(self, policy: str = 'stop', lr_factor: float = 0.5, max_times: int = 3) -> None:
        if policy not in POLICIES:
            raise ValueError(f'train.nan_policy: {policy!r} is not one of {", ".join(POLICIES)}')
        if not 0 < lr_factor < 1:
            raise ValueError(f'train.nan_rollback.lr_factor: {lr_factor} is not < 1 and > 0')
        if max_times < 1:
            raise ValueError(f'train.nan_rollback.max_times: {max_times} is not >= 1')
        self.policy, self.lr_factor, self.max_times = policy, float(lr_factor), int(max_times)
        #: Rollbacks done so far in this run (resumed runs included).
        self.rollbacks = 0
        #: The factor applied to the options' learning rate by the rollbacks.
        self.lr_scale = 1.0
        self._start: Optional[Dict[str, Any]] = None  # the state the run started from
        self._reloading = False
        self._loaded_scale = 1.0
        self._step_hook = None

    # checks ------------------------------------------------------------------
    def before_train(self, runner: Runner) -> None:
        """Check the gradients at every optimizer step; keep the start state (rollback)."""
        model = unwrap_model(runner.model)
        names = {id(p): n for n, p in model.named_parameters()}

        def check_gradients(optimizer: Any, args: Any, kwargs: Any) -> None:
            grads = (
                (names.get(id(p), 'a parameter'), p.grad)
                for group in optimizer.param_groups
                for p in group['params']
                if p.grad is not None
            )
            check_weights(grads, 'the gradients (the losses were finite)')

        if self._step_hook is None:
            self._step_hook = runner.optim_wrapper.optimizer.register_step_pre_hook(check_gradients)
        check_weights(model.named_parameters(), 'the weights at the start')
        if self.policy == 'rollback':
            self._start = self._capture(runner)

    def after_train_iter(
        self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Check the weights the optimizer step left, before a checkpoint can hold them."""
        check_weights(unwrap_model(runner.model).named_parameters(), 'the weights')

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        """Refuse to write non-finite weights; record the rollback count and lr scale."""
        for key in ('state_dict', 'ema_state_dict'):
            if isinstance(checkpoint.get(key), Mapping):
                check_weights(checkpoint[key].items(), f'the weights to be saved ({key})')
        checkpoint['nan_guard'] = dict(rollbacks=self.rollbacks, lr_scale=self.lr_scale)

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        """On resume, read the count back (on a rollback only the file's lr scale)."""
        if not getattr(runner, '_resume', False):
            return
        state = checkpoint.get('nan_guard') or {}
        self._loaded_scale = float(state.get('lr_scale', 1.0))
        if not self._reloading:
            self.rollbacks = int(state.get('rollbacks', 0))
            self.lr_scale = self._loaded_scale

    # policy ------------------------------------------------------------------
    def handle(self, runner: Runner, error: NonFiniteTraining) -> None:
        """Stop (raise ``error`` with the outcome and advice) or roll back and return."""
        pointer, _ = experiment_folder.read_pointer(runner.work_dir)
        kept = (
            f'the last good checkpoint {experiment_folder.relative_to(pointer, runner.work_dir)} '
            f'is kept ({experiment_folder.POINTER})'
            if pointer
            else 'no checkpoint was saved yet'
        )
        if self.policy == 'stop':
            raise error.completed(
                outcome=f'stopped (train.nan_policy: stop), nothing non-finite was saved, {kept}'
            )
        if self.rollbacks >= self.max_times:
            raise error.completed(
                outcome=f'stopped after {self.rollbacks} rollback(s) '
                f'(train.nan_rollback.max_times: {self.max_times}), nothing non-finite was '
                f'saved, {kept}',
                advice='lower train.optim_g.lr (or set train.clip_grad_norm, '
                'train.warmup_iter) and train afresh, or raise train.nan_rollback.max_times '
                'and resume with --auto-resume',
            )
        self._rollback(runner, error, pointer)

    def _rollback(self, runner: Runner, error: NonFiniteTraining, pointer: Optional[str]) -> None:
        runner.optim_wrapper.zero_grad()
        if pointer:
            self._reloading, resume = True, getattr(runner, '_resume', False)
            load_from = getattr(runner, '_load_from', None)
            runner._resume, runner._load_from = True, pointer  # hooks restore as on a resume
            try:
                runner.resume(pointer)
            finally:
                self._reloading, runner._resume, runner._load_from = False, resume, load_from
            source = experiment_folder.relative_to(pointer, runner.work_dir)
            loaded_scale = self._loaded_scale
        else:
            self._restore(runner, self._start)
            source = 'the start of the run'
            loaded_scale = self._start['lr_scale']
        self.rollbacks += 1
        self.lr_scale *= self.lr_factor
        lr = scale_learning_rate(runner, self.lr_scale / loaded_scale)
        runner.train_loop.restart_data_stream()
        print_log(
            f'{error.message(outcome="", advice="")}; rolled back to {source} '
            f'(iteration {runner.iter}) with the learning rate x{self.lr_scale:g} ({lr:.4g}), '
            f'rollback {self.rollbacks} of {self.max_times} (train.nan_policy: rollback)',
            logger='current',
            level=logging.WARNING,
        )

    def _hook(self, runner: Runner, name: str) -> Any:
        return next((h for h in runner.hooks if type(h).__name__ == name), None)

    def _capture(self, runner: Runner) -> Dict[str, Any]:
        """The state a rollback without a checkpoint returns to (CPU copies)."""
        ema, stages = self._hook(runner, 'EMAHook'), self._hook(runner, 'MultiStageHook')
        schedulers = runner.param_schedulers or []
        return dict(
            iter=runner.iter,
            lr_scale=self.lr_scale,
            model=_cpu_copy(unwrap_model(runner.model).state_dict()),
            ema=_cpu_copy(ema.ema_model.state_dict()) if ema is not None else None,
            optimizer=copy.deepcopy(runner.optim_wrapper.state_dict()),
            schedulers=[copy.deepcopy(s.state_dict()) for s in schedulers],
            stage=getattr(stages, 'applied', None),
        )

    def _restore(self, runner: Runner, state: Dict[str, Any]) -> None:
        unwrap_model(runner.model).load_state_dict(state['model'])
        ema = self._hook(runner, 'EMAHook')
        if ema is not None and state['ema'] is not None:
            ema.ema_model.load_state_dict(state['ema'])
        runner.optim_wrapper.load_state_dict(copy.deepcopy(state['optimizer']))
        for scheduler, saved in zip(runner.param_schedulers or [], state['schedulers']):
            scheduler.load_state_dict(copy.deepcopy(saved))
        stages = self._hook(runner, 'MultiStageHook')
        if stages is not None:
            stages.applied = state['stage']
        runner.train_loop._iter = state['iter']
        runner.message_hub.update_info('iter', state['iter'])
