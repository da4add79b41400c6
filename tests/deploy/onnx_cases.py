"""Tiny networks for the ONNX deployment tests (a helper module, not a conftest).

The archs' tiny keyword arguments come from ``tests/archs/arch_cases.py``.
"""

import os
import sys

import torch

from basicattn.archs.build import build_network

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'archs'))
from arch_cases import ARCH_CASES  # noqa: E402

EXTRA = "onnx / onnxruntime not installed: pip install -e '.[export]' (tools/setup_env.sh does)"


def tiny_config(name, **changes):
    """The arch config of ``name``'s tiny case, with ``changes``."""
    return dict(type=name, **dict(ARCH_CASES[name]['kwargs'], **changes))


def tiny(name, seed=0, **changes):
    """``(net in eval mode, LR (h, w))`` of ``name``'s tiny case, weights from ``seed``."""
    torch.manual_seed(seed)
    net = build_network(tiny_config(name, **changes)).eval()
    return net, tuple(ARCH_CASES[name]['input'][-2:])


def random_clip(frames, size, seed=0):
    """``frames`` random LR frames ``(3, h, w)`` in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(3, *size, generator=generator) for _ in range(frames)]
