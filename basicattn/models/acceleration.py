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
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn

from basicattn.errors import OptionError
from basicattn.utils.bounds import Bound

__all__ = [
    'CHANNELS_LAST',
    'COMPILE_VALUE',
    'CompileSettings',
    'apply_memory_format',
    'check_compile',
    'check_compiler',
    'compile_generator',
    'compile_settings',
    'input_memory_format',
    'prepare_generator',
    'resolve_channels_last',
    'training_channels_last',
]

#: The value of an arch's ``preferred_memory_format`` that turns it on.
CHANNELS_LAST = 'channels_last'
#: ``torch.compile`` modes (``mode: null`` is PyTorch's default).
COMPILE_MODES = ('default', 'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs')
_COMPILE_KEYS = ('mode', 'dynamic', 'backend')


@dataclass(frozen=True)
class CompileSettings:
    """The arguments given to ``torch.compile`` (always ``fullgraph=False``).

    Attributes:
        mode: One of :data:`COMPILE_MODES`, or None for PyTorch's default.
        dynamic: ``torch.compile``'s ``dynamic`` (None: static shapes first,
            dynamic after a shape changes).
        backend: A dynamo backend; ``inductor`` (the default) generates C++ /
            Triton code and needs a C++ compiler, ``aot_eager`` and ``eager``
            need none (and do not speed anything up).
    """

    mode: Optional[str] = None
    dynamic: Optional[bool] = None
    backend: str = 'inductor'


def _backends() -> List[str]:
    import torch._dynamo

    return sorted(torch._dynamo.list_backends(exclude_tags=()))


def _compile_problem(value: Any) -> Optional[str]:
    """What is wrong with a ``compile`` option value, or None."""
    if isinstance(value, bool):
        return None
    if not isinstance(value, Mapping):
        return f'must be true, false or a mapping {{mode, dynamic, backend}}, got {value!r}'
    unknown = sorted(str(k) for k in value if k not in _COMPILE_KEYS)
    if unknown:
        return f'unknown key(s) {unknown}; allowed: {list(_COMPILE_KEYS)}'
    mode = value.get('mode')
    if mode is not None and mode not in COMPILE_MODES:
        return f'mode: {mode!r} is not one of {list(COMPILE_MODES)} or null'
    dynamic = value.get('dynamic')
    if dynamic is not None and not isinstance(dynamic, bool):
        return f'dynamic: must be true, false or null, got {dynamic!r}'
    backend = value.get('backend', 'inductor')
    if not isinstance(backend, str) or backend not in _backends():
        return f'backend: {backend!r} is not a torch.compile backend; one of {_backends()}'
    return None


class CompileValue(Bound):
    """The rule of a ``compile`` option value, where the schema keeps bounds.

    The option validator and :class:`~basicattn.models.test_config.TestConfig`
    ask a key's bound for :meth:`problem` and the generated docs print
    :meth:`describe`; this one checks a bool or a ``{mode, dynamic, backend}``
    mapping instead of a number.
    """

    def allows(self, value: Any) -> bool:
        """Whether ``value`` is a valid ``compile`` setting."""
        return _compile_problem(value) is None

    def describe(self) -> str:
        """The rule in words, for docs/options.md."""
        return 'dict keys `mode`, `dynamic`, `backend`'

    def problem(self, value: Any) -> Optional[str]:
        """The message for a bad value (without the key), else None."""
        return _compile_problem(value)


#: The one instance the option schema and the test config use.
COMPILE_VALUE = CompileValue()


def compile_settings(value: Any, key: str) -> Optional[CompileSettings]:
    """``torch.compile`` arguments of a ``compile`` value (None: do not compile).

    Raises:
        OptionError: A bad value, naming ``key``.
    """
    problem = _compile_problem(value)
    if problem:
        raise OptionError(f'{key}: {problem}')
    if value is False:
        return None
    if value is True:
        return CompileSettings()
    return CompileSettings(**{k: value[k] for k in _COMPILE_KEYS if k in value})


def check_compiler(key: str) -> None:
    """Raise an OptionError when inductor finds no working C++ compiler.

    Asks inductor itself (``cpp_builder.get_cpp_compiler``: ``$CXX`` or
    inductor's configured names, each run with ``--version``), so the answer
    is the one the first compiled call would get, minutes later.

    Raises:
        OptionError: Naming ``key``, in one line.
    """
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        get_cpp_compiler()
    except Exception as err:  # InvalidCxxCompiler, or an inductor that does not import
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise OptionError(
            f"{key}: torch.compile's inductor backend found no working C++ compiler "
            f'({reason[:120]}); install one (e.g. apt install g++, or set $CXX), or turn '
            f'{key} off (or use backend: aot_eager, which needs no compiler)'
        ) from None


def check_compile(value: Any, key: str) -> Optional[CompileSettings]:
    """:func:`compile_settings`, and for inductor :func:`check_compiler`."""
    settings = compile_settings(value, key)
    if settings is not None and settings.backend == 'inductor':
        check_compiler(key)
    return settings


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
