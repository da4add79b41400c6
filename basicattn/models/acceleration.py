"""Memory format and ``torch.compile`` of a generator, written once.

The options ``train.channels_last`` / ``val.channels_last`` and
``train.compile`` / ``val.compile`` end here; :class:`~basicattn.models.
sr_model.SRModel` (so ``tools/train.py``, ``tools/test.py``, ``tools/infer.py``
and :class:`~basicattn.models.video_sr_model.VideoSRModel`) calls
:func:`prepare_generator` once when it is built.

Memory format
    ``channels_last`` stores the 4-D weights and the 4-D inputs as NHWC, so
    oneDNN (CPU) and cuDNN (GPU) run convolutions without reordering to and
    from their own layouts. ``val.channels_last: null`` (the default) takes
    the arch's measured preference, its class attribute
    ``preferred_memory_format`` (``'channels_last'`` where it was measured
    faster, see ``docs/ops.md``). Video archs take ``(N, T, C, H, W)`` windows,
    which stay as they are: the archs fold the frames into the batch, and a
    convolution whose weight is channels_last returns a channels_last result,
    so every layer after the first runs NHWC. Outputs are returned in the
    usual contiguous NCHW layout.

Compilation
    ``compile: true`` or ``{mode, dynamic, backend}`` compiles the generator
    in place with ``nn.Module.compile`` (``fullgraph=False``: graph breaks
    are allowed). The module and its parameter names stay the same, so
    checkpoints, EMA (a deep copy of a compiled module is an eager one),
    multi-stage freezing by parameter name and resuming are unaffected.
    ``train.compile`` is used while the generator is in training mode,
    ``val.compile`` in eval mode; the first call of each logs one line with
    the number of graph breaks and their reasons.
"""

import dataclasses
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn

from basicattn.config.compile_settings import CompileSettings, check_compiler
from basicattn.errors import OptionError

__all__ = [
    'CHANNELS_LAST',
    'apply_memory_format',
    'compile_generator',
    'input_memory_format',
    'prepare_generator',
    'resolve_channels_last',
    'training_channels_last',
]

#: The value of an arch's ``preferred_memory_format`` that turns it on.
CHANNELS_LAST = 'channels_last'


def prefers_channels_last(module: nn.Module) -> bool:
    """Whether the arch was measured faster in channels_last (its class attribute)."""
    return getattr(module, 'preferred_memory_format', None) == CHANNELS_LAST


def resolve_channels_last(module: nn.Module, setting: Optional[bool]) -> bool:
    """``setting`` when given, else the arch's preference (:func:`prefers_channels_last`)."""
    return prefers_channels_last(module) if setting is None else bool(setting)


def training_channels_last(
    train_value: Any,
    val_value: Optional[bool],
    keys: Tuple[str, str] = ('train_cfg.channels_last', 'test_cfg.channels_last'),
) -> bool:
    """The memory format of a training run: ``train_value``; ``val_value`` may only repeat it.

    The network has one memory format, so validation during training runs in
    the training one.

    Raises:
        OptionError: ``train_value`` is not a bool, or ``val_value`` is set
            and differs; naming ``keys`` (training key, test-time key).
    """
    if not isinstance(train_value, bool):
        raise OptionError(f'{keys[0]}: must be true or false, got {train_value!r}')
    if val_value is not None and val_value != train_value:
        raise OptionError(
            f'{keys[1]}: {val_value} contradicts {keys[0]}: {train_value}; the network has '
            'one memory format and a training run validates in the training one (leave '
            f'{keys[1]} null there; it is for testing)'
        )
    return train_value


def apply_memory_format(module: nn.Module, channels_last: bool) -> nn.Module:
    """Store ``module``'s 4-D weights and buffers channels_last (or NCHW), in place.

    Returns:
        nn.Module: ``module`` itself.
    """
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return module.to(memory_format=fmt)


def input_memory_format(x: Tensor, channels_last: bool) -> Tensor:
    """A 4-D ``x`` in channels_last when asked; other tensors as they are.

    A 5-D video window is left alone (its frames reach the convolutions
    folded into the batch; the channels_last weights make the layers run
    NHWC, see the module docstring).
    """
    if channels_last and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


class _CompiledCall:
    """The compiled ``__call__`` of a module: one compiled function per mode.

    ``nn.Module.__call__`` calls it in place of the eager ``_call_impl``; it
    picks the function of the module's current mode (training or eval) and
    runs eagerly in a mode that is not compiled. After the first call of each
    compiled function it reports the graph breaks that call produced.
    """

    def __init__(self, module: nn.Module, name: str, log: Callable[[str], None]):
        self.module = module
        self.name = name
        self.log = log
        self.by_mode: Dict[bool, Callable[..., Any]] = {}
        self.reported: Dict[bool, bool] = {}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        training = self.module.training
        fn = self.by_mode.get(training)
        if fn is None:
            return self.module._call_impl(*args, **kwargs)
        if self.reported.get(training):
            return fn(*args, **kwargs)
        before = _graph_break_counts()
        out = fn(*args, **kwargs)
        self.reported[training] = True
        count, reasons = _new_breaks(before, _graph_break_counts())
        mode = 'training' if training else 'eval'
        why = f' ({"; ".join(reasons)})' if reasons else ''
        self.log(f'compiled {self.name} ({mode}): {count} graph breaks{why}')
        return out


def _graph_break_counts() -> Dict[str, int]:
    from torch._dynamo.utils import counters

    return dict(counters['graph_break'])


def _new_breaks(before: Mapping[str, int], after: Mapping[str, int]) -> Tuple[int, List[str]]:
    """The number of graph breaks between two counter snapshots and their reasons."""
    new = {k: n - before.get(k, 0) for k, n in after.items() if n > before.get(k, 0)}
    reasons = []
    for reason in new:
        first = reason.strip().splitlines()[0] if reason.strip() else '?'
        if first not in reasons:
            reasons.append(first)
    return sum(new.values()), reasons


def _print_log(message: str) -> None:
    from mmengine.logging import print_log

    print_log(message, logger='current')


def compile_generator(
    module: nn.Module,
    settings: CompileSettings,
    training: bool,
    key: str,
    log: Optional[Callable[[str], None]] = None,
) -> nn.Module:
    """Compile ``module`` in place for training-mode or eval-mode calls.

    Args:
        module: The generator.
        settings: ``torch.compile`` arguments (:func:`compile_settings`).
        training: Compile the calls made in training mode (``train.compile``)
            or in eval mode (``val.compile``); the other mode stays eager
            unless compiled by a second call.
        key: The option, for the message when the compiler is missing.
        log: Where the graph-break line goes (None: mmengine's current logger).

    Returns:
        nn.Module: ``module`` itself, same class and parameter names.

    Raises:
        OptionError: inductor and no working C++ compiler.
    """
    if settings.backend == 'inductor':
        check_compiler(key)
    call = module.__dict__.get('_compiled_call_impl')
    if not isinstance(call, _CompiledCall):
        call = _CompiledCall(module, type(module).__name__, log or _print_log)
        # nn.Module.compile() stores torch.compile(self._call_impl) here; ours
        # holds one such function per mode. Module.__getstate__ drops it, so a
        # deep copy (EMA) or a pickled module is eager.
        module._compiled_call_impl = call
    options = dataclasses.asdict(settings)
    call.by_mode[training] = torch.compile(module._call_impl, fullgraph=False, **options)
    call.reported[training] = False
    return module


def prepare_generator(
    module: nn.Module,
    channels_last: bool,
    train_compile: Optional[CompileSettings],
    val_compile: Optional[CompileSettings],
    keys: Tuple[str, str] = ('train_cfg.compile', 'test_cfg.compile'),
    log: Optional[Callable[[str], None]] = None,
) -> nn.Module:
    """Set ``module``'s memory format and compile it, once, in place.

    Args:
        module: The generator.
        channels_last: Store it channels_last (:func:`resolve_channels_last`).
        train_compile: Compile its training-mode calls (None: eager).
        val_compile: Compile its eval-mode calls (None: eager).
        keys: The names of the two compile settings, for messages.
        log: Where the graph-break lines go (None: mmengine's current logger).

    Returns:
        nn.Module: ``module`` itself.
    """
    apply_memory_format(module, channels_last)
    if train_compile is not None:
        compile_generator(module, train_compile, True, keys[0], log)
    if val_compile is not None:
        compile_generator(module, val_compile, False, keys[1], log)
    return module
