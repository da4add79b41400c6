"""Shared fixtures: where the real test data lives, tiny images, a work dir."""

import os
import os.path as osp
import subprocess

import numpy as np
import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def testdata_root():
    """The folder named by ``BASICATTN_TESTDATA`` (default ``../shared/data``)."""
    default = osp.join(REPO_ROOT, '..', 'shared', 'data')
    return osp.abspath(os.environ.get('BASICATTN_TESTDATA', default))


def require_testdata(*parts):
    """Return the path of a real-data file or folder, or skip (fail under CI).

    CI sets ``CI=true``; there a missing data folder is an error, not a skip,
    so that a broken data mount can never turn the real-data checks green.
    """
    path = osp.join(testdata_root(), *parts)
    if not osp.exists(path):
        reason = f'test data {path} not found: set BASICATTN_TESTDATA to the shared data folder'
        if os.environ.get('CI', '').lower() == 'true':
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture
def testdata():
    """Callable fixture: ``testdata('Set5', 'X2')`` -> path (skip/fail if absent)."""
    return require_testdata


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def tiny_image_folder(tmp_path, rng):
    """Write 4 small random-ish RGB PNGs (HR 24x32) and their x2 LR; return paths."""
    import cv2

    hr_dir = tmp_path / 'HR'
    lr_dir = tmp_path / 'LR'
    hr_dir.mkdir()
    lr_dir.mkdir()
    for i in range(4):
        hr = (rng.random((24, 32, 3)) * 255).astype(np.uint8)
        hr = cv2.GaussianBlur(hr, (5, 5), 1.0)
        lr = cv2.resize(hr, (16, 12), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(hr_dir / f'img_{i:03d}.png'), hr)
        cv2.imwrite(str(lr_dir / f'img_{i:03d}.png'), lr)
    return str(hr_dir), str(lr_dir)


@pytest.fixture
def small_disk(tmp_path):
    """Callable fixture: ``small_disk('64k')`` -> the path of a tmpfs of that size.

    For real full-disk checks; skips where mounting is not allowed (it needs
    root). Every disk made is unmounted at the end of the test.
    """
    mounted = []

    def make(size='64k'):
        folder = tmp_path / f'disk{len(mounted)}-{size}'
        folder.mkdir()
        result = subprocess.run(
            ['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(folder)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            pytest.skip(f'cannot mount a tmpfs here: {result.stderr.strip()}')
        mounted.append(folder)
        return str(folder)

    yield make
    for folder in mounted:
        subprocess.run(['umount', str(folder)], check=False)


@pytest.fixture(autouse=True, scope='session')
def safe_checkpoint_io():
    """Route mmengine's checkpoint I/O through basicattn, as every tool's entry point does
    (tools/train.py, test.py, analyze.py call ``checkpoint.io.install()`` first); tests
    that build runners in-process get the same atomic writes and safe loads."""
    from basicattn.checkpoint.io import install

    install()
