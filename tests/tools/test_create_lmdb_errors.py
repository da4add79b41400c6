"""create_lmdb on damaged databases and after a killed --overwrite: one
``error:`` line naming the database (and key), or a repaired database."""

import importlib.util
import os
import os.path as osp
import shutil
import subprocess
import sys
import textwrap

import lmdb
import numpy as np
import pytest

from basicattn.data.lmdb_builder import build_lmdb_from_folder
from basicattn.data.paired_image_dataset import PairedImageDataset
from basicattn.errors import DataError
from basicattn.utils.img_util import imwrite

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO_ROOT, 'tools', 'create_lmdb.py')


@pytest.fixture(scope='module')
def cli():
    spec = importlib.util.spec_from_file_location('create_lmdb_cli_err', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.fixture
def database(tmp_path, rng):
    """An LMDB of 20 random 40x40 images (values span overflow pages)."""
    src = tmp_path / 'src'
    for i in range(20):
        imwrite(str(src / f'{i:03d}.png'), (rng.random((40, 40, 3)) * 255).astype(np.uint8))
    dst = str(tmp_path / 'x.lmdb')
    build_lmdb_from_folder(str(src), dst, progress=False, num_workers=0)
    return dst


def _one_error_line(capsys, *names):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith('error: '), err
    assert 'Traceback' not in err
    for name in names:
        assert name in lines[0], (name, err)
    return lines[0]


def _smash(db, offset, size=64):
    with open(osp.join(db, 'data.mdb'), 'r+b') as f:
        f.seek(offset)
        f.write(b'\xff' * size)


@pytest.mark.parametrize('offset', [4096 + 16, 2 * 4096, 'middle'])
def test_verify_only_corrupt_data_mdb(cli, database, capsys, offset):
    if offset == 'middle':
        offset = os.path.getsize(osp.join(database, 'data.mdb')) // 2
    _smash(database, offset)
    assert cli(['--verify-only', database, '--no-progress']) == 2
    line = _one_error_line(capsys, database)
    assert 'create_lmdb' in line or 'meta_info' in line or 'decode' in line


def test_verify_only_corrupt_mdb_names_key_and_rebuild(cli, database, capsys):
    _smash(database, 2 * 4096)  # a page of records: MDB_CORRUPTED on get
    assert cli(['--verify-only', database, '--no-progress']) == 2
    line = _one_error_line(capsys, database)
    assert 'MDB_' in line and 'rebuild it with tools/create_lmdb.py' in line


def test_verify_only_missing_meta_info(cli, database, capsys):
    os.remove(osp.join(database, 'meta_info.txt'))
    assert cli(['--verify-only', database, '--no-progress']) == 2
    line = _one_error_line(capsys, database, 'meta_info.txt', 'tools/create_lmdb.py')
    assert line


def test_verify_only_undecodable_record(cli, database, capsys):
    env = lmdb.open(database, subdir=True)
    with env.begin(write=True) as txn:
        txn.put(b'007', b'not a png at all')
    env.close()
    assert cli(['--verify-only', database, '--no-progress']) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and database in err and '007' in err
    assert 'Traceback' not in err


def test_dataset_reading_corrupt_lmdb_names_path(database):
    _smash(database, 4096 + 16)
    shutil.copy(osp.join(database, 'data.mdb'), osp.join(database, 'x'))
    _smash(database, 16)  # both meta pages: not an LMDB any more
    with pytest.raises(DataError, match='rebuild it') as info:
        PairedImageDataset(database, io_backend='lmdb', scale=2)[0]
    assert database in str(info.value)


def test_dataset_reading_corrupt_record_names_key(database):
    _smash(database, 2 * 4096)
    dataset = PairedImageDataset(database, io_backend='lmdb', scale=2)
    with pytest.raises(DataError) as info:
        for i in range(len(dataset)):
            dataset[i]
    assert database in str(info.value)


def test_killed_overwrite_repaired_by_next_cli_run(cli, database, tmp_path, capsys):
    # a kill between the two renames of the fallback swap
    script = textwrap.dedent("""
        import os, sys
        from basicattn.data import lmdb_swap
        from basicattn.data.lmdb_builder import build_lmdb_from_folder
        lmdb_swap.exchange_paths = lambda a, b: False
        lmdb_swap._step = lambda name: os._exit(9) if name == 'moved_old' else None
        build_lmdb_from_folder(sys.argv[1], sys.argv[2], overwrite=True,
                               progress=False, num_workers=0)
    """)
    src = str(tmp_path / 'src')
    result = subprocess.run(
        [sys.executable, '-c', script, src, database], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 9, result.stderr
    assert not osp.exists(database)
    assert cli(['--verify-only', database, '--no-progress']) == 0
    captured = capsys.readouterr()
    assert 'LMDB recovery: ' in captured.err and 'was missing' in captured.err
    assert 'verified 20 images' in captured.out
    assert sorted(os.listdir(tmp_path)) == ['src', 'x.lmdb']
