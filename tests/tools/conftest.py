"""A tiny but complete SR experiment (data + option file) for the tool tests."""

import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import yaml

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _write_images(folder, count, size, rng):
    import cv2

    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        img = (rng.random((size, size, 3)) * 255).astype(np.uint8)
        cv2.imwrite(osp.join(folder, f'im{i}.png'), cv2.GaussianBlur(img, (7, 7), 2))


def tiny_options(root, **changes):
    """Options of a 6-iteration EDSR x2 run on generated 48x48 images."""
    opt = {
        'name': 'tiny',
        'scale': 2,
        'manual_seed': 1,
        'datasets': {
            'train': {
                'type': 'PairedImageDataset',
                'dataroot_gt': osp.join(root, 'train'),
                'gt_size': 16,
                'use_hflip': True,
                'use_rot': True,
                'batch_size_per_gpu': 2,
                'num_worker_per_gpu': 0,
            },
            'val': {
                'name': 'tinyval',
                'type': 'PairedImageDataset',
                'dataroot_gt': osp.join(root, 'val'),
            },
        },
        'network_g': {'type': 'EDSR', 'num_feat': 8, 'num_block': 1},
        'path': {'experiments_root': osp.join(root, 'exp')},
        'train': {
            'optim_g': {'type': 'Adam', 'lr': 1e-3},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [3], 'gamma': 0.5},
            'total_iter': 6,
            'warmup_iter': 2,
            'ema_decay': 0.9,
            'losses': {'pixel': {'type': 'L1Loss'}},
        },
        'val': {
            'val_freq': 3,
            'save_img': True,
            'metrics': {
                'psnr': {'type': 'PSNR', 'crop_border': 2, 'test_y_channel': True},
                'ssim': {'type': 'SSIM', 'crop_border': 2, 'test_y_channel': True},
            },
        },
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 3, 'use_tb_logger': True},
    }
    for path, value in changes.items():
        node = opt
        keys = path.split('.')
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return opt


@pytest.fixture
def tiny_experiment(tmp_path):
    """Return ``make(name, **changes) -> option file path`` over shared tiny data."""
    rng = np.random.default_rng(0)
    _write_images(str(tmp_path / 'train'), 6, 48, rng)
    _write_images(str(tmp_path / 'val'), 2, 48, rng)

    def make(name='tiny', **changes):
        opt = tiny_options(str(tmp_path), **changes)
        opt['name'] = name
        opt['path']['experiments_root'] = str(tmp_path / name)
        path = tmp_path / f'{name}.yml'
        path.write_text(yaml.safe_dump(opt, sort_keys=False))
        return str(path)

    make.root = str(tmp_path)
    return make


def tool_module(name):
    """Import ``tools/<name>.py`` as a module (tools/ on the path for its ``_bootstrap``)."""
    import importlib.util

    sys.path.insert(0, osp.join(REPO_ROOT, 'tools'))
    try:
        path = osp.join(REPO_ROOT, 'tools', f'{name}.py')
        spec = importlib.util.spec_from_file_location(f'_tool_{name}_under_test', path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    return module


def run_tool(*args, timeout=300, env=None):
    """Run a tools/ script in a fresh process; return CompletedProcess (text)."""
    full_env = dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS='1')
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def tool():
    return run_tool


class _Outcome:
    """What a forked run returns: the fields of ``subprocess.CompletedProcess`` we read."""

    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture(scope='session')
def forked_tool(tmp_path_factory):
    """Like ``tool``, but each run is forked from a process that has done the imports.

    Each run is still a process of its own with its own stdout, stderr and exit
    code (see ``fork_server.py``); it only skips the ~3 s of importing torch,
    mmengine and basicattn. Tests that check a tool's start-up use ``tool``.
    """
    from fork_server import ForkServer

    env = dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS='1')
    server = ForkServer(sys.executable, env, str(tmp_path_factory.mktemp('forked_runs')))

    def run(*args, timeout=300, env=None):
        return _Outcome(*server.run(args[0], *args[1:], cwd=REPO_ROOT, env=env, timeout=timeout))

    yield run
    server.close()
