"""Reduced precision at inference: the ``--precision`` of tools/infer.py and tools/test.py.

Values (:data:`PRECISIONS`):

* ``fp32``: float32, no autocast (the published numbers are float32).
* ``bf16`` / ``fp16``: the network runs under ``torch.autocast`` to that
  dtype; the weights stay float32 and the outputs are converted back to
  float32 before anything is saved or scored. The ops that need float32
  (sampling positions, attention logits and softmax) keep it under autocast
  (docs/ops.md, "Mixed precision"). fp16 runs on CUDA only.
* ``auto``: bf16 where the hardware computes it natively, float32 elsewhere:
  on a CUDA device that supports bf16, or on a CPU with AVX-512 BF16 or AMX
  (the ``avx512_bf16`` / ``amx_bf16`` flags of ``/proc/cpuinfo``;
  :func:`cpu_bf16_flags`). On other CPUs oneDNN emulates bf16 and runs slower
  than float32 (measured 2.5x slower with AVX-512 but no BF16, 6x with AVX2,
  docs/ops.md), so ``auto`` keeps float32 there.

Whether an arch may run in bf16 is a fact of the arch: its class attribute
``BF16_PSNR_DB``, the PSNR of its bf16 output against its float32 output,
measured by ``tests/archs/test_bf16_fidelity.py`` (which also checks that the
value still holds). At or above :data:`BF16_SAFE_DB` (40 dB) bf16 is
allowed. Below it ``bf16`` is refused with one ``error:`` line naming the arch
and its PSNR, and ``auto`` runs float32 with one ``warning:`` line. An arch
without the attribute (one of your own, ``custom_imports``) was never
measured: ``bf16`` runs it with a warning, ``auto`` keeps float32 with a
warning. fp16 is not gated by the measurement (its range ends at 65504: an
overflow gives inf, which both tools refuse or score NaN, never save).

bf16 *weights* (network and input converted to bfloat16) were measured too
and are not used: no faster than autocast for the networks on the CPU, and
further from float32 wherever an arch has float32 parts (A2N x4 57 against
61 dB, AttentionProbe 57 against 81 dB; ``benchmarks/infer_speed.py
--bf16-weights``, docs/ops.md).
"""

import math
import sys
from dataclasses import dataclass
from typing import Any, ContextManager, Mapping, Optional, Tuple, Union

import torch

from basicattn.archs.facts import BF16_SAFE_DB, arch_class, arch_facts
from basicattn.errors import OptionError
from basicattn.models.autocast import autocast_region, check_amp, default_device_type

#: The values of ``--precision``.
PRECISIONS = ('fp32', 'bf16', 'fp16', 'auto')


#: CPU flags (``/proc/cpuinfo``) of native bf16 arithmetic.
NATIVE_BF16_CPU_FLAGS = ('avx512_bf16', 'amx_bf16')

#: The ``val.amp`` / ``test_cfg.amp`` value of each precision.
_AMP = {'fp32': None, 'bf16': 'bf16', 'fp16': 'fp16'}


def cpu_bf16_flags(cpuinfo: str = '/proc/cpuinfo') -> Tuple[str, ...]:
    """The native-bf16 flags (:data:`NATIVE_BF16_CPU_FLAGS`) this CPU has.

    Read from ``cpuinfo`` (Linux); where that file cannot be read, from
    PyTorch's own CPU detection (``torch.cpu._is_avx512_bf16_supported``,
    ``_is_amx_tile_supported``: AMX CPUs have AMX-BF16).
    """
    try:
        with open(cpuinfo, encoding='utf-8', errors='replace') as f:
            words = set(f.read().split())
    except OSError:
        return _torch_cpu_bf16_flags()
    return tuple(flag for flag in NATIVE_BF16_CPU_FLAGS if flag in words)


def _torch_cpu_bf16_flags() -> Tuple[str, ...]:
    checks = (('avx512_bf16', '_is_avx512_bf16_supported'), ('amx_bf16', '_is_amx_tile_supported'))
    found = []
    for flag, name in checks:
        check = getattr(torch.cpu, name, None)
        try:
            if check is not None and check():
                found.append(flag)
        except RuntimeError:
            pass
    return tuple(found)


def native_bf16(device: Union[str, torch.device]) -> Tuple[bool, str]:
    """Whether ``device`` computes bf16 natively, and why (for messages).

    CUDA: ``torch.cuda.is_bf16_supported`` without emulation (Ampere and
    later). CPU: :func:`cpu_bf16_flags`. Other devices: no.
    """
    device = torch.device(device)
    if device.type == 'cuda':
        try:
            native = torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # PyTorch before 2.3
            native = torch.cuda.is_bf16_supported()
        return native, f'{device} {"supports" if native else "does not support"} bf16'
    if device.type == 'cpu':
        flags = cpu_bf16_flags()
        if flags:
            return True, f'the CPU has {" and ".join(flags)}'
        return False, (
            f'the CPU has neither {" nor ".join(NATIVE_BF16_CPU_FLAGS)}: bf16 would be '
            'emulated, slower than float32'
        )
    return False, f'no native bf16 check for {device.type}'


def arch_bf16_psnr(arch: Any) -> Optional[float]:
    """The arch's ``BF16_PSNR_DB`` (bf16 vs float32 PSNR, dB); None where it was not measured."""
    cls = arch_class(arch)
    value = None if cls is None else arch_facts(cls).bf16_psnr_db
    return float(value) if isinstance(value, (int, float)) else None


def _arch_name(arch: Any) -> str:
    if isinstance(arch, str):
        return arch
    cls = arch_class(arch)
    return cls.__name__ if cls is not None else type(arch).__name__


@dataclass(frozen=True)
class InferencePrecision:
    """What ``--precision`` resolved to.

    Attributes:
        name (str): ``'fp32'``, ``'bf16'`` or ``'fp16'``: what runs.
        requested (str): What was asked for (one of :data:`PRECISIONS`).
        reason (str): Why ``auto`` chose ``name`` ('' otherwise).
    """

    name: str
    requested: str
    reason: str = ''

    @property
    def amp(self) -> Optional[str]:
        """The ``val.amp`` / ``test_cfg.amp`` value: None (float32), ``'bf16'``, ``'fp16'``."""
        return _AMP[self.name]

    def autocast(self, device: Union[str, torch.device]) -> ContextManager[None]:
        """Autocast to this precision on ``device`` (a no-op for fp32)."""
        return autocast_region(torch.device(device).type, self.amp)

    def describe(self) -> str:
        """One phrase for the tools' output, e.g. ``'bf16 (auto: the CPU has avx512_bf16)'``."""
        if self.requested == 'auto':
            return f'{self.name} (auto: {self.reason})'
        return self.name


def _warn(message: str) -> None:
    print(f'warning: {message}', file=sys.stderr, flush=True)


def resolve_precision(
    requested: str,
    arch: Any,
    device: Union[str, torch.device],
    flag: str = '--precision',
) -> InferencePrecision:
    """What ``requested`` runs for ``arch`` on ``device`` (see the module docstring).

    Prints one ``warning:`` line on stderr where ``auto`` falls back to
    float32 for an arch, or ``bf16`` runs an arch never measured.

    Args:
        requested (str): One of :data:`PRECISIONS`.
        arch: The network (a module), its class or its registered name.
        device: Where it runs.
        flag (str): The option's name in messages.

    Returns:
        InferencePrecision: The precision to run.

    Raises:
        OptionError: fp16 off CUDA; bf16 for an arch whose ``BF16_PSNR_DB`` is
            below :data:`BF16_SAFE_DB`; a precision this PyTorch cannot
            autocast to on ``device``; an unknown value.
    """
    device = torch.device(device)
    if requested not in PRECISIONS:
        raise OptionError(f'{flag} {requested!r}: choose one of {", ".join(PRECISIONS)}')
    name = _arch_name(arch)
    psnr = arch_bf16_psnr(arch)
    if requested == 'fp16' and device.type != 'cuda':
        raise OptionError(
            f'{flag} fp16: float16 inference runs on CUDA only, and the device is {device}; '
            f'use {flag} bf16 (or auto) here'
        )
    if requested == 'bf16' and psnr is not None and psnr < BF16_SAFE_DB:
        raise OptionError(
            f'{flag} bf16: {name} measured {psnr:.1f} dB PSNR in bfloat16 against float32 '
            f'({name}.BF16_PSNR_DB, below the {BF16_SAFE_DB:g} dB needed); use {flag} fp32'
        )
    if requested == 'bf16' and psnr is None:
        _warn(
            f'{flag} bf16: {name} has no bf16 measurement (BF16_PSNR_DB); compare its '
            f'output with {flag} fp32'
        )
    if requested != 'auto':
        check_amp(_AMP[requested], flag, device.type)
        return InferencePrecision(requested, requested)
    native, why = native_bf16(device)
    if not native:
        return InferencePrecision('fp32', 'auto', why)
    if psnr is None or psnr < BF16_SAFE_DB:
        measured = 'has no bf16 measurement (BF16_PSNR_DB)'
        if psnr is not None:
            measured = (
                f'measured {psnr:.1f} dB PSNR in bfloat16 against float32 '
                f'(BF16_PSNR_DB, below {BF16_SAFE_DB:g} dB)'
            )
        _warn(f'{flag} auto: {name} runs in float32: it {measured}')
        return InferencePrecision('fp32', 'auto', f'{name} {measured}')
    check_amp('bf16', flag, device.type)
    return InferencePrecision('bf16', 'auto', f'{why}; {name}: {psnr:.0f} dB of float32 in bf16')


def set_test_precision(
    opt: dict, requested: Optional[str], flag: str = '--precision'
) -> Optional[InferencePrecision]:
    """Apply tools/test.py's ``--precision`` to read options: set ``val.amp``.

    ``requested`` None leaves the option file's ``val.amp`` as it is (float32
    unless the file sets it). The arch is ``network_g.type``; the device is
    the one the Runner tests on
    (:func:`~basicattn.models.autocast.default_device_type`).

    Returns:
        InferencePrecision | None: What runs, None when ``requested`` is None.

    Raises:
        OptionError: See :func:`resolve_precision`.
    """
    if requested is None:
        return None
    network = opt.get('network_g') or {}
    arch = network.get('type', 'the network') if isinstance(network, Mapping) else 'the network'
    precision = resolve_precision(requested, arch, default_device_type(), flag)
    if opt.get('val') is None:
        opt['val'] = {}
    opt['val']['amp'] = precision.amp
    return precision


def psnr_db(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB) of ``a`` against ``b`` for [0, 1] values, in float64; inf when equal."""
    mse = float(((a.double() - b.double()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)
