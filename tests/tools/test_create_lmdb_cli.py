"""tools/create_lmdb.py: as a subprocess (as users run it) and in-process."""

import hashlib
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from basicattn.data.lmdb_io import LmdbReader, read_meta_info
from basicattn.utils.img_util import imfrombytes, imread, imwrite

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO_ROOT, 'tools', 'create_lmdb.py')


def run_cli(*args):
    """Run the script in a fresh interpreter, without PYTHONPATH."""
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)  # runnable from the repo without install
    return subprocess.run(
        [sys.executable, SCRIPT, *map(str, args)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope='module')
def cli():
    """The script's ``main`` for fast in-process runs."""
    spec = importlib.util.spec_from_file_location('create_lmdb_cli', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _digest(folder):
    h = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        with open(osp.join(folder, name), 'rb') as f:
            h.update(name.encode() + f.read())
    return h.hexdigest()


@pytest.fixture
def video_folder(tmp_path, rng):
    """A Vimeo-90K-like and a REDS-like nested layout in one tree."""
    src = tmp_path / 'video'
    rels = [
        'sequences/00001/0001/im1.png',
        'sequences/00001/0001/im4.png',
        'sequences/00002/0003/im4.png',
        'REDS/000/00000000.png',
        'REDS/000/00000001.png',
    ]
    for rel in rels:
        imwrite(str(src / rel), (rng.random((6, 8, 3)) * 255).astype(np.uint8))
    return str(src), [r[: -len('.png')] for r in rels]


def test_subprocess_build_verify_refuse(video_folder, tmp_path):
    src, keys = video_folder
    dst = str(tmp_path / 'video.lmdb')
    result = run_cli(src, dst, '--verify', '--no-progress', '--workers', '0')
    assert result.returncode == 0, result.stderr
    assert 'wrote 5 images' in result.stdout and dst in result.stdout
    assert 'verified 5 images' in result.stdout
    assert [k for k, _, _ in read_meta_info(dst)] == sorted(keys)
    reader = LmdbReader(dst)
    np.testing.assert_array_equal(
        imfrombytes(reader.get('sequences/00002/0003/im4')),
        imread(osp.join(src, 'sequences/00002/0003/im4.png')),
    )
    reader.close()

    before = _digest(dst)
    result = run_cli(src, dst, '--no-progress')
    assert result.returncode == 2
    assert '--overwrite' in result.stderr and dst in result.stderr
    assert 'Traceback' not in result.stderr
    assert _digest(dst) == before

    result = run_cli('--verify-only', dst, '--no-progress')
    assert result.returncode == 0, result.stderr
    assert 'verified 5 images' in result.stdout


def test_overwrite_in_process(cli, tiny_image_folder, tmp_path, capsys):
    hr, lr = tiny_image_folder
    dst = str(tmp_path / 'hr.lmdb')
    assert cli([hr, dst, '--no-progress', '--workers', '0']) == 0
    assert (
        cli([lr, dst, '--no-progress', '--overwrite', '--workers', '0', '--compress-level', '0'])
        == 0
    )
    assert read_meta_info(dst)[0] == ('img_000', (12, 16, 3), 0)
    assert sorted(os.listdir(tmp_path)) == ['HR', 'LR', 'hr.lmdb']
    assert 'wrote 4 images' in capsys.readouterr().out


def test_expected_errors_exit_2(cli, tiny_image_folder, tmp_path, capsys):
    hr, _ = tiny_image_folder
    assert cli([str(tmp_path / 'nope'), str(tmp_path / 'x.lmdb')]) == 2
    assert 'nope' in capsys.readouterr().err
    bad = osp.join(hr, 'img_002.png')
    with open(bad, 'wb') as f:
        f.write(b'garbage')
    dst = tmp_path / 'hr.lmdb'
    assert cli([hr, str(dst), '--no-progress', '--workers', '0']) == 2
    err = capsys.readouterr().err
    assert bad in err and err.startswith('error: ')
    assert not dst.exists()
    assert cli(['--verify-only', str(tmp_path / 'missing.lmdb')]) == 2
    assert 'missing.lmdb' in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli([hr])  # usage error
    assert info.value.code == 2
    assert 'usage' in capsys.readouterr().err


def test_a_folder_loop_is_skipped_not_followed(cli, tiny_image_folder, tmp_path, capsys):
    """`ln -s .. HR/loop` and `self -> .` once hung the scan or stored every image many times."""
    hr, _ = tiny_image_folder
    os.symlink('..', osp.join(hr, 'loop'))
    os.symlink('.', osp.join(hr, 'self'))
    dst = str(tmp_path / 'hr.lmdb')
    assert cli([hr, dst, '--no-progress', '--workers', '0']) == 0
    captured = capsys.readouterr()
    assert 'wrote 4 images' in captured.out
    assert [key for key, _, _ in read_meta_info(dst)] == [f'img_{i:03d}' for i in range(4)]
    warnings = [line for line in captured.err.splitlines() if line.startswith('warning: ')]
    assert len(warnings) == 2 and 'loop' in warnings[0] + warnings[1]
