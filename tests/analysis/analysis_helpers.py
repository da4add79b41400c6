"""Helpers of the analysis tests: tiny inputs and checkpoints, ``analyze(...)`` in process.

The fixtures are made available by ``tests/analysis/conftest.py``.
"""

import importlib.util
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
import torch

from basicattn.registry import ARCHS

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO_ROOT, 'tests', 'archs'))
from arch_cases import ARCH_CASES  # noqa: E402


def _analyze_module():
    sys.path.insert(0, osp.join(REPO_ROOT, 'tools'))
    try:
        spec = importlib.util.spec_from_file_location(
            '_tool_analyze_under_test', osp.join(REPO_ROOT, 'tools', 'analyze.py')
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    return module


@pytest.fixture(scope='session')
def analyze():
    """``analyze(*argv) -> exit code`` of ``tools/analyze.py`` in this process."""
    main = _analyze_module().main
    return lambda *argv: main([str(a) for a in argv])


def write_images(folder, count, size, seed=0, prefix='im'):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    images = []
    for i in range(count):
        img = cv2.GaussianBlur((rng.random((*size, 3)) * 255).astype(np.uint8), (5, 5), 1)
        cv2.imwrite(osp.join(folder, f'{prefix}{i}.png'), img)
        images.append(img[..., ::-1])
    return images


@pytest.fixture
def tiny_checkpoint(tmp_path):
    """``tiny_checkpoint(arch) -> (path, arch config)``: random tiny weights with meta['arch']."""

    def make(name):
        cfg = dict(type=name, **ARCH_CASES[name]['kwargs'])
        torch.manual_seed(0)
        net = ARCHS.build(dict(cfg))
        path = tmp_path / f'{name}.pth'
        torch.save({'state_dict': net.state_dict(), 'meta': {'arch': dict(cfg)}}, path)
        return str(path), cfg

    return make


def listing(root):
    """Every file and folder under ``root``, relative."""
    found = set()
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            found.add(osp.relpath(osp.join(folder, name), root))
    return found
