"""Training and evaluation loops.

* :class:`ResumableIterBasedTrainLoop`: mmengine's iteration loop, except that a
  resumed run moves the sampler to the right sample instead of replaying
  every batch already trained on, and that with gradient accumulation
  (``train.accumulate: N``) one iteration is one optimizer step over N batches.
* :class:`MultiSetValLoop` / :class:`MultiSetTestLoop`: evaluate several sets
  (e.g. Set5, Set14, Urban100) in one pass, each with its own metrics whose
  names carry the set's name (``Set5/psnr_y_crop4``), with a progress bar
  per set (:class:`~basicattn.engine.progress.SetProgress`).
"""

import logging
from typing import Any, Dict, Optional, Sequence, Union

import torch
from mmengine.logging import print_log
from mmengine.runner.loops import BaseLoop, IterBasedTrainLoop, _InfiniteDataloaderIterator

from basicattn.engine.hooks import GeneratorLoadHook
from basicattn.engine.nan_guard import NonFiniteGuardHook
from basicattn.engine.progress import SetProgress
from basicattn.errors import NonFiniteError
from basicattn.losses.finite_check import NonFiniteTraining
from basicattn.metrics.per_clip import scalar_results
from basicattn.registry import LOOPS
from basicattn.utils.finite import describe_values, is_finite
from basicattn.utils.path_util import safe_path_component


@LOOPS.register_module()
class ResumableIterBasedTrainLoop(IterBasedTrainLoop):
    """Iteration-based training whose resume skips seen data in O(1).

    When the train sampler has ``set_start`` (see ``ResumableInfiniteSampler``)
    the loop starts it after ``iter * accumulate * batch_size`` samples; with
    any other sampler it falls back to mmengine's replay, with a warning.

    Gradient accumulation: with the optimizer wrapper's
    ``accumulative_counts`` N > 1, an iteration reads N batches and runs
    ``train_step`` on each (the wrapper sums their gradients, each loss
    divided by N, and steps the optimizer after the N-th), then calls the
    ``*_train_iter`` hooks once with the batches' mean losses. So an iteration
    is always one optimizer step: ``max_iters``, the schedulers, EMA, stages,
    validation, logging and checkpoints count optimizer steps, and a
    checkpoint never falls inside an accumulation (resume stays exact).
    """

    @property
    def accumulate(self) -> int:
        """Batches per iteration: the optimizer wrapper's ``accumulative_counts``."""
        return int(getattr(self.runner.optim_wrapper, '_accumulative_counts', 1) or 1)

    def _skip_seen_batches(self) -> None:
        sampler = self.dataloader.sampler
        batch_sampler = getattr(self.dataloader, 'batch_sampler', None)
        batch_size = self.dataloader.batch_size or getattr(batch_sampler, 'batch_size', None)
        batches = self._iter * self.accumulate
        if hasattr(sampler, 'set_start') and batch_size:
            sampler.set_start(batches * batch_size)
            self.dataloader_iterator = _InfiniteDataloaderIterator(self.dataloader)
            print_log(
                f'Resumed the data stream at iteration {self._iter} '
                f'({batches * batch_size} samples per rank) without replay.',
                logger='current',
            )
            return
        print_log(
            f'{type(sampler).__name__} cannot jump ahead: replaying {batches} '
            'batches to reach the resumed position.',
            logger='current',
            level=logging.WARNING,
        )
        for _ in range(batches):
            next(self.dataloader_iterator)

    def run_iter(self, data_batch: Any) -> None:
        """One optimizer step over ``accumulate`` batches (``data_batch`` the first)."""
        if self.accumulate == 1:
            super().run_iter(data_batch)
            return
        self.runner.call_hook('before_train_iter', batch_idx=self._iter, data_batch=data_batch)
        logs = []
        for index in range(self.accumulate):
            if index:
                data_batch = next(self.dataloader_iterator)
            logs.append(
                self.runner.model.train_step(data_batch, optim_wrapper=self.runner.optim_wrapper)
            )
        outputs = {key: sum(log[key] for log in logs) / len(logs) for key in logs[0]}
        self.runner.call_hook(
            'after_train_iter', batch_idx=self._iter, data_batch=data_batch, outputs=outputs
        )
        self._iter += 1

    def _initialize_counts(self) -> None:
        """Tell the optimizer wrapper where the run is (after a resume or a rollback)."""
        wrapper = self.runner.optim_wrapper
        if self.accumulate > 1 and not getattr(wrapper, 'counts_optimizer_steps', False):
            # A plain mmengine wrapper counts batches; the loop counts optimizer steps.
            wrapper.initialize_count_status(
                self.runner.model, self._iter * self.accumulate, self._max_iters * self.accumulate
            )
        else:
            wrapper.initialize_count_status(self.runner.model, self._iter, self._max_iters)

    def restart_data_stream(self) -> None:
        """Continue the data and the optimizer counts from ``self._iter`` (a rollback)."""
        self._initialize_counts()
        self._skip_seen_batches()

    def _non_finite(self, error: Exception, iteration: int) -> None:
        """Hand a non-finite loss, gradient or weight to ``train.nan_policy``'s hook."""

        error.completed(iteration=iteration)
        guard = next((h for h in self.runner.hooks if isinstance(h, NonFiniteGuardHook)), None)
        if guard is None:
            raise error
        guard.handle(self.runner, error)

    def run(self) -> Any:
        """Train until ``max_iters``, validating every ``val_interval``; return the model.

        A :class:`~basicattn.engine.nan_guard.NonFiniteTraining` raised in an
        iteration (a loss, gradient or weight that is NaN or inf) goes to the
        :class:`~basicattn.engine.nan_guard.NonFiniteGuardHook`, which stops
        the run or rolls it back (``train.nan_policy``).
        """

        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')
        wrapper = self.runner.optim_wrapper
        if self.accumulate > 1 and not getattr(wrapper, 'counts_optimizer_steps', False):
            self._initialize_counts()  # mmengine's Runner counted batches
        if self._iter > 0:
            self._skip_seen_batches()
        while self._iter < self._max_iters and not self.stop_training:
            iteration = self._iter + 1
            try:
                self.runner.model.train()
                self.run_iter(next(self.dataloader_iterator))
                self._decide_current_val_interval()
                due = self._iter % self.val_interval == 0 or self._iter == self._max_iters
                if self.runner.val_loop is not None and self._iter >= self.val_begin and due:
                    self.runner.val_loop.run()
            except NonFiniteTraining as error:
                self._non_finite(error, iteration)
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model


class _MultiSetLoop(BaseLoop):
    """Run several (name, dataloader, evaluator) sets as one evaluation epoch.

    Args:
        runner: The mmengine Runner.
        dataloader: The first set's dataloader (or its config).
        evaluator: The first set's evaluator (or its config).
        set_name: The first set's name (default ``'val'``).
        extra_sets: More sets, each ``dict(name, dataloader, evaluator)``.
    """

    phase = 'val'

    def __init__(
        self,
        runner: Any,
        dataloader: Any,
        evaluator: Union[dict, list, Any],
        set_name: Optional[str] = None,
        extra_sets: Sequence[Dict[str, Any]] = (),
    ):
        super().__init__(runner, dataloader)
        first = safe_path_component(set_name or 'val')  # set names become folders
        self.sets = [(first, self.dataloader, self._build_evaluator(evaluator))]
        for extra in extra_sets:
            loader = runner.build_dataloader(extra['dataloader'], seed=runner.seed)
            self.sets.append(
                (
                    safe_path_component(extra['name']),
                    loader,
                    self._build_evaluator(extra['evaluator']),
                )
            )
        self.current_set: Optional[str] = None
        self._non_finite_keys: list = []  # keys of the current set's non-finite outputs

    @property
    def set_names(self) -> list:
        """The names of the sets, in evaluation order."""
        return [name for name, _, _ in self.sets]

    def _build_evaluator(self, evaluator: Any) -> Any:
        return self.runner.build_evaluator(evaluator)

    def run(self) -> Dict[str, Any]:
        """Evaluate every set.

        Returns:
            ``{'<set>/<metric>': value}``, including the per-clip dicts
            ``'<set>/<metric>/per_clip'`` of video metrics
            (:mod:`basicattn.metrics.per_clip`). The ``after_*_epoch`` hooks
            get the scalars only (log, ``scalars.json``, best checkpoint).
        """
        hook = self.runner.call_hook
        hook(f'before_{self.phase}')
        hook(f'before_{self.phase}_epoch')
        self.runner.model.eval()
        merged: Dict[str, Any] = {}
        for name, loader, evaluator in self.sets:
            self.current_set = name
            self._non_finite_keys = []
            progress = SetProgress(self.phase, name, _num_samples(loader), evaluator)
            try:
                for idx, data_batch in enumerate(loader):
                    progress.update(self._run_iter(idx, data_batch, evaluator))
            finally:
                progress.close()
            merged.update(evaluator.evaluate(len(loader.dataset)))
            self._report_non_finite(name, len(loader.dataset))
        self.current_set = None
        hook(f'after_{self.phase}_epoch', metrics=scalar_results(merged))
        hook(f'after_{self.phase}')
        return merged

    @torch.no_grad()
    def _run_iter(self, idx: int, data_batch: Any, evaluator: Any) -> int:
        """Evaluate one batch; return its number of images."""
        hook = self.runner.call_hook
        hook(f'before_{self.phase}_iter', batch_idx=idx, data_batch=data_batch)
        step = getattr(self.runner.model, f'{self.phase}_step')
        outputs = step(data_batch)  # the model autocasts itself (val.amp)
        self._check_outputs(outputs)
        evaluator.process(data_samples=outputs, data_batch=data_batch)
        hook(f'after_{self.phase}_iter', batch_idx=idx, data_batch=data_batch, outputs=outputs)
        return len(outputs) if isinstance(outputs, (list, tuple)) else 1

    def _check_outputs(self, outputs: Any) -> None:
        """Find outputs with NaN or inf: refused when testing, flagged in validation.

        Raises:
            NonFiniteError: Testing, naming the set, the image and the weights.
        """

        for index, sample in enumerate(outputs if isinstance(outputs, (list, tuple)) else []):
            pred = sample.get('pred') if isinstance(sample, dict) else None
            if not torch.is_tensor(pred) or is_finite(pred):
                continue
            key = str(sample.get('key', index))
            if self.phase == 'test':
                raise NonFiniteError(
                    f'test set {self.current_set}, image {key}: the network output holds '
                    f'{describe_values(pred)}; {_weights_tested(self.runner)} produce no '
                    'image there, so nothing is scored (check the weights and the test-time '
                    'settings val.amp, val.tile)'
                )
            self._non_finite_keys.append(key)

    def _report_non_finite(self, name: str, total: int) -> None:
        """One warning per validation set whose outputs held NaN or inf."""
        keys = self._non_finite_keys
        if not keys:
            return
        shown = ', '.join(keys[:3]) + (', ...' if len(keys) > 3 else '')
        print_log(
            f'validation of {name} at iteration {self.runner.iter}: {len(keys)} of {total} '
            f'outputs hold NaN or inf ({shown}); their metrics are nan, so this validation '
            'ranks no checkpoint best and saves none of their images',
            logger='current',
            level=logging.WARNING,
        )


def _weights_tested(runner: Any) -> str:
    """``'the weights <path>'`` that a test run loaded, for messages."""

    for hook in getattr(runner, 'hooks', []):
        if isinstance(hook, GeneratorLoadHook):
            return f'the weights {hook.path}'
    return 'the weights'


def _num_samples(loader: Any) -> int:
    """Images (or frames) this process evaluates: its sampler's length."""
    sampler = getattr(loader, 'sampler', None)
    try:
        return len(sampler if sampler is not None else loader.dataset)
    except TypeError:
        return len(loader.dataset)


@LOOPS.register_module()
class MultiSetValLoop(_MultiSetLoop):
    """Validation over one or more sets (see module docstring)."""

    phase = 'val'


@LOOPS.register_module()
class MultiSetTestLoop(_MultiSetLoop):
    """Testing over one or more sets (see module docstring)."""

    phase = 'test'
