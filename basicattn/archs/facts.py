"""What is known about an arch, stated on its class and read from here.

A fact about an arch lives with the arch: each registered class sets the class
attributes below, and tests, tools and the feature table in
``docs/features.md`` read them through :func:`arch_facts` (never from a list
of their own). Adding a method is then its arch file, its option files, its
doc page and one tiny test case (``tests/archs/arch_cases.py``).

``PAPER_PARAMS`` (default None)
    ``(kwargs, count)``: the keyword arguments of the model the paper
    describes (the defaults: ``{}``) and its exact parameter count, asserted
    by ``tests/archs/test_all_archs.py``. None only where no such count exists.
``TAKES_FRAMES`` (default False)
    The input is a window of frames ``(N, T, C, H, W)``; the output is the
    centre frame (sliding-window archs have ``num_frames``; recurrent ones take
    ``state`` and ``return_state``).
``ONNX_DYNAMIC_HW`` (default False)
    ``tools/export.py --dynamic`` gives a graph whose height and width are
    free; where it is False the class docstring says why.
``preferred_memory_format`` (default None)
    ``'channels_last'`` where inference was measured faster in NHWC
    (``docs/ops.md``); the default of ``val.channels_last: null``.
``BF16_PSNR_DB`` (default None)
    The PSNR of the arch's bf16 output against its float32 output, measured
    (``tests/archs/test_bf16_fidelity.py``); below :data:`BF16_SAFE_DB` the
    arch refuses bf16 (:mod:`basicattn.models.inference_precision`).
``TAPS`` (default ``{}``)
    The attention taps an analysis can record (:mod:`basicattn.archs.taps`).
"""

import inspect
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from basicattn.registry import ARCHS

__all__ = ['BF16_SAFE_DB', 'ArchFacts', 'arch_class', 'arch_facts', 'is_recurrent', 'takes_frames']

#: bf16 inference is used for an arch only when its output stays this close (dB) to float32.
BF16_SAFE_DB = 40.0


@dataclass(frozen=True)
class ArchFacts:
    """The facts one arch class states (see the module docstring)."""

    name: str
    paper_params: Optional[Tuple[Dict[str, Any], int]] = None
    takes_frames: bool = False
    recurrent: bool = False
    onnx_dynamic_hw: bool = False
    channels_last: bool = False
    bf16_psnr_db: Optional[float] = None
    taps: Dict[str, Any] = field(default_factory=dict)

    @property
    def bf16_safe(self) -> bool:
        """Whether bf16 inference keeps the output within :data:`BF16_SAFE_DB` of float32."""
        return self.bf16_psnr_db is not None and self.bf16_psnr_db >= BF16_SAFE_DB


def arch_class(arch: Any) -> Optional[type]:
    """The arch class of ``arch``: a module (compiled or not), a class or a registered
    name; None for a name that is not registered."""
    if isinstance(arch, str):
        try:
            return ARCHS.get(arch)
        except KeyError:
            return None
    if isinstance(arch, type):
        return arch
    return type(getattr(arch, '_orig_mod', arch))  # torch.compile wraps the module


def is_recurrent(arch: Any) -> bool:
    """Whether the arch carries a state from frame to frame (its forward takes ``return_state``)."""
    forward = getattr(arch_class(arch), 'forward', None)
    try:
        return forward is not None and 'return_state' in inspect.signature(forward).parameters
    except (TypeError, ValueError):  # builtin forwards
        return False


def takes_frames(arch: Any) -> bool:
    """Whether the arch (a class, an instance or a registered name) takes frame windows."""
    return bool(getattr(arch_class(arch), 'TAKES_FRAMES', False))


def arch_facts(arch: Any) -> ArchFacts:
    """The facts of an arch: a class, an instance or a registered name."""
    cls = arch_class(arch)
    return ArchFacts(
        name=cls.__name__,
        paper_params=getattr(cls, 'PAPER_PARAMS', None),
        takes_frames=takes_frames(cls),
        recurrent=is_recurrent(cls),
        onnx_dynamic_hw=bool(getattr(cls, 'ONNX_DYNAMIC_HW', False)),
        channels_last=getattr(cls, 'preferred_memory_format', None) == 'channels_last',
        bf16_psnr_db=getattr(cls, 'BF16_PSNR_DB', None),
        taps=dict(getattr(cls, 'TAPS', {}) or {}),
    )
