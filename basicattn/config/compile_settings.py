"""The rule of a ``compile`` option value (``train.compile`` / ``val.compile``).

Written once here: the option schema and the test-time settings
(:mod:`basicattn.config.test_settings`) bound their ``compile`` keys with
:data:`COMPILE_VALUE`, and :mod:`basicattn.models.acceleration` compiles the
generator with the :class:`CompileSettings` that :func:`check_compile` returns.
"""

from dataclasses import dataclass
from typing import Any, List, Mapping, Optional

from basicattn.errors import OptionError
from basicattn.utils.bounds import Bound

__all__ = [
    'COMPILE_MODES',
    'COMPILE_VALUE',
    'CompileSettings',
    'check_compile',
    'check_compiler',
    'compile_settings',
]

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

    The option validator and :class:`~basicattn.config.test_settings.TestConfig`
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
