"""Optimizer wrappers for ``train.amp`` (mixed precision) and ``train.accumulate``.

mmengine's ``AmpOptimWrapper`` refuses to be built without a GPU and its
``autocast`` allows only bfloat16 on the CPU. :class:`MixedPrecisionOptimWrapper`
keeps its behaviour (the loss scaler in ``backward``/``step``, unscaling
before gradient clipping, the scaler's state in checkpoints) and runs on the
device the Runner trains on, CPU included:

* ``bf16``: autocast to bfloat16, no loss scaling (bfloat16 has float32's
  exponent range, so gradients do not underflow); the scaler is a disabled
  ``torch.amp.GradScaler`` whose state is empty;
* ``fp16``: autocast to float16 with a dynamic ``torch.amp.GradScaler`` of the
  device (its scale is saved in checkpoints and restored on resume).

:func:`check_amp` tells up front, as an :class:`~basicattn.errors.OptionError`
naming the option, when the installed PyTorch cannot autocast to the type on
this machine.

With gradient accumulation an iteration of basicattn's train loop is one
optimizer step over ``accumulative_counts`` batches, while mmengine's
wrappers count batches; both wrappers here translate the Runner's iteration
counts (:class:`OptimizerStepCounts`).
"""

from contextlib import contextmanager
from typing import Any, Iterator, Optional, Union

import torch
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from torch import nn

from basicattn.models.autocast import (
    _grad_scaler,
    amp_dtype,
    check_amp,
    default_device_type,
)
from basicattn.registry import OPTIM_WRAPPERS


class OptimizerStepCounts:
    """Mixin: the Runner's iteration counts are optimizer steps, not batches.

    mmengine calls ``initialize_count_status(model, iter, max_iters)`` once
    before training; with ``accumulative_counts`` N the wrapper counts
    ``train_step`` calls, N per iteration, so both are multiplied by N (a
    resumed run then continues at the first batch of an optimizer step).
    """

    #: Read by the train loop: the counts need no translation there.
    counts_optimizer_steps = True

    def initialize_count_status(self, model: nn.Module, init_counts: int, max_counts: int) -> None:
        """mmengine's count set-up, in batches (``counts * accumulative_counts``)."""
        n = self._accumulative_counts
        super().initialize_count_status(model, init_counts * n, max_counts * n)


@OPTIM_WRAPPERS.register_module()
class AccumulatingOptimWrapper(OptimizerStepCounts, OptimWrapper):
    """mmengine's ``OptimWrapper`` whose counts are optimizer steps (``train.accumulate``)."""


@OPTIM_WRAPPERS.register_module()
class MixedPrecisionOptimWrapper(OptimizerStepCounts, AmpOptimWrapper):
    """mmengine's ``AmpOptimWrapper`` for ``train.amp``, on CPU or GPU.

    Args:
        amp (str): ``'bf16'`` or ``'fp16'``.
        device_type (str, optional): Device of autocast and the loss scaler
            (default: the one the Runner trains on, see
            :func:`default_device_type`).
        **kwargs: :class:`mmengine.optim.OptimWrapper`'s arguments
            (``optimizer``, ``accumulative_counts``, ``clip_grad``).

    Raises:
        OptionError: ``amp`` cannot run here (see :func:`check_amp`).
    """

    def __init__(self, amp: str = 'bf16', device_type: Optional[str] = None, **kwargs: Any):
        # AmpOptimWrapper.__init__ asserts a GPU; the rest of it is rebuilt here.
        OptimWrapper.__init__(self, **kwargs)
        self.amp = amp
        self.device_type = device_type or default_device_type()
        check_amp(amp, 'train.amp', self.device_type)
        self.cast_dtype: Union[torch.dtype, None] = amp_dtype(amp)
        self._scale_update_param = None
        self.loss_scaler = _grad_scaler(self.device_type, amp == 'fp16')

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """The forward pass of a training step: mmengine's context (no gradient
        sync while accumulating) and autocast to :attr:`cast_dtype`."""
        with OptimWrapper.optim_context(self, model):
            with torch.autocast(device_type=self.device_type, dtype=self.cast_dtype):
                yield
