"""create_lmdb --overwrite killed at every step of the swap: the database is
never lost, and the next run (or a dataset opening it) repairs and reports."""

import glob
import os
import os.path as osp
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from basicattn.data import lmdb_swap
from basicattn.data.lmdb_builder import build_lmdb_from_folder, verify_lmdb
from basicattn.data.lmdb_io import read_meta_info, require_lmdb
from basicattn.data.lmdb_swap import COMPLETE_MARKER, exchange_paths, recover_interrupted_swap
from basicattn.utils.img_util import imwrite

# Kill points, in order; from 'marked' on the new database is complete.
EXCHANGE_STEPS = ['built', 'marked', 'exchanged', 'new_in_place', 'old_removed']
RENAME_STEPS = ['built', 'marked', 'moved_old', 'new_in_place', 'old_removed']
OLD_SHAPE, NEW_SHAPE = (8, 8, 3), (6, 10, 3)

_KILLED_BUILD = textwrap.dedent("""
    import os, sys
    from basicattn.data import lmdb_swap
    from basicattn.data.lmdb_builder import build_lmdb_from_folder
    src, dst, step, exchange = sys.argv[1:5]
    def step_hook(name):
        if name == step:
            os._exit(9)  # as abrupt as kill -9: no cleanup runs
    lmdb_swap._step = step_hook
    if exchange == '0':
        lmdb_swap.exchange_paths = lambda a, b: False
    build_lmdb_from_folder(src, dst, overwrite=True, progress=False,
                           num_workers=0)
    sys.exit(3)  # the kill point was never reached
""")


def _folder(path, shape, rng):
    for i in range(3):
        imwrite(osp.join(path, f'im{i}.png'), (rng.random(shape) * 255).astype(np.uint8))
    return path


@pytest.fixture
def two_sources(tmp_path, rng):
    return (
        _folder(str(tmp_path / 'old_src'), OLD_SHAPE, rng),
        _folder(str(tmp_path / 'new_src'), NEW_SHAPE, rng),
    )


def _leftovers(dst):
    return glob.glob(dst + '.tmp-*') + glob.glob(dst + '.old-*')


def _killed_build(src, dst, step, exchange):
    result = subprocess.run(
        [sys.executable, '-c', _KILLED_BUILD, src, dst, step, '1' if exchange else '0'],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 9, result.stderr


def _shape_at(dst):
    verify_lmdb(dst, progress=False)
    assert not osp.exists(osp.join(dst, COMPLETE_MARKER))
    return read_meta_info(dst)[0][1]


def test_exchange_works_here(tmp_path):
    a, b = tmp_path / 'a', tmp_path / 'b'
    a.mkdir()
    b.mkdir()
    (a / 'x').write_text('a')
    assert exchange_paths(str(a), str(b))  # Linux ext4 / tmpfs: renameat2
    assert (b / 'x').read_text() == 'a' and not list(a.iterdir())


@pytest.mark.parametrize(
    'exchange,step', [(True, s) for s in EXCHANGE_STEPS] + [(False, s) for s in RENAME_STEPS]
)
def test_killed_overwrite_recovers(two_sources, tmp_path, exchange, step):
    old_src, new_src = two_sources
    dst = str(tmp_path / 'x.lmdb')
    build_lmdb_from_folder(old_src, dst, progress=False, num_workers=0)
    _killed_build(new_src, dst, step, exchange)
    lines = []
    recover_interrupted_swap(dst, report=lines.append)
    expected = OLD_SHAPE if step == 'built' else NEW_SHAPE
    assert _shape_at(dst) == expected
    assert not _leftovers(dst)
    left = [p for p in os.listdir(tmp_path) if p.startswith('x.lmdb')]
    assert left == ['x.lmdb']
    # every leftover that was there is named in one reported line
    if step != 'old_removed':
        assert lines and all(line.startswith('LMDB recovery: ') for line in lines)
    # the next run works and finds nothing more to repair
    build_lmdb_from_folder(old_src, dst, overwrite=True, progress=False, num_workers=0)
    assert _shape_at(dst) == OLD_SHAPE and not _leftovers(dst)


@pytest.mark.parametrize('step', ['built', 'moved_old', 'exchanged'])
def test_next_build_run_recovers_first(two_sources, tmp_path, capsys, step):
    old_src, new_src = two_sources
    dst = str(tmp_path / 'x.lmdb')
    build_lmdb_from_folder(old_src, dst, progress=False, num_workers=0)
    _killed_build(new_src, dst, step, exchange=step != 'moved_old')
    # without --overwrite: the repaired database is there, so it is refused
    with pytest.raises(FileExistsError, match='--overwrite'):
        build_lmdb_from_folder(new_src, dst, progress=False, num_workers=0)
    err = capsys.readouterr().err
    assert 'LMDB recovery: ' in err and '.lmdb.' in err
    assert _shape_at(dst) in (OLD_SHAPE, NEW_SHAPE) and not _leftovers(dst)


def test_dataset_open_restores_missing_database(two_sources, tmp_path, capsys):
    old_src, new_src = two_sources
    dst = str(tmp_path / 'x.lmdb')
    build_lmdb_from_folder(old_src, dst, progress=False, num_workers=0)
    _killed_build(new_src, dst, 'moved_old', exchange=False)
    assert not osp.exists(dst)
    assert require_lmdb(dst) == dst
    assert 'was missing' in capsys.readouterr().err
    assert _shape_at(dst) == NEW_SHAPE and not _leftovers(dst)


def test_live_or_foreign_leftovers_are_reported_not_touched(tmp_path):
    dst = str(tmp_path / 'x.lmdb')
    os.makedirs(dst)
    live = f'{dst}.tmp-{os.getppid()}'  # our parent is alive
    os.makedirs(live)
    foreign = f'{dst}.tmp-999999'
    os.makedirs(foreign)
    with open(osp.join(foreign, lmdb_swap.OWNER_FILE), 'w') as f:
        f.write('another-host 999999\n')
    foreign_old = f'{dst}.old-999999'  # the same foreign run's old copy
    os.makedirs(foreign_old)
    os.rmdir(dst)  # as between the two renames of the fallback swap
    lines = recover_interrupted_swap(dst, report=lambda line: None)
    assert osp.isdir(live) and osp.isdir(foreign) and osp.isdir(foreign_old)
    assert not osp.exists(dst)
    assert len(lines) == 3
    assert any('running process' in line and live in line for line in lines)
    assert any('another-host' in line and foreign in line for line in lines)


def test_incomplete_tmp_of_dead_process_removed_without_database(tmp_path):
    dst = str(tmp_path / 'x.lmdb')
    dead = f'{dst}.tmp-{os.getpid()}'  # our own pid: a run starting now
    os.makedirs(dead)
    lines = recover_interrupted_swap(dst, report=lambda line: None)
    assert not osp.exists(dead) and not osp.exists(dst)
    assert len(lines) == 1 and 'not a finished' in lines[0]
