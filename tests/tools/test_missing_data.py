"""A run whose data is not prepared stops at once with one line naming the key
and the resolved path, and creates nothing (issue 14, point 4)."""

import os
import os.path as osp
import time

import pytest
from conftest import REPO_ROOT

from basicattn.data.data_check import check_dataset_paths, dataset_paths
from basicattn.errors import DataError


def _one_error_line(result):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith('error: '), result.stderr
    assert 'datasets/README.md' in lines[0]
    return lines[0]


@pytest.mark.parametrize('script', ['tools/train.py', 'tools/test.py'])
def test_missing_dataroot_stops_before_anything_is_built(tiny_experiment, forked_tool, script):
    relative = 'datasets/not_prepared_yet/HR'  # relative to the tools' cwd (the repo root)
    option_file = tiny_experiment(
        'missing', **{'datasets.train.dataroot_gt': relative, 'datasets.val.dataroot_gt': relative}
    )
    start = time.monotonic()
    result = forked_tool(script, '-opt', option_file)
    elapsed = time.monotonic() - start
    line = _one_error_line(result)
    key = 'datasets.train.dataroot_gt' if script == 'tools/train.py' else 'datasets.val.dataroot_gt'
    shown = f'{relative} (= {osp.join(REPO_ROOT, relative)}; relative to the current directory)'
    assert line.startswith(f'error: {key}: {shown} does not exist')
    assert not osp.exists(osp.join(tiny_experiment.root, 'missing'))  # experiments_root
    assert elapsed < 10, f'{elapsed:.1f} s: something was built before the check'


def test_missing_meta_info_file_of_a_val_set(tiny_experiment, forked_tool):
    absent = osp.join(tiny_experiment.root, 'no_list.txt')
    option_file = tiny_experiment('nolist', **{'datasets.val.meta_info_file': absent})
    line = _one_error_line(forked_tool('tools/train.py', '-opt', option_file))
    assert line == (
        f'error: datasets.val.meta_info_file: {absent} does not exist; '
        'prepare the data as datasets/README.md describes'
    )
    assert not osp.exists(osp.join(tiny_experiment.root, 'nolist'))


def _opt(**sets):
    return {'datasets': {name: dict(block) for name, block in sets.items()}}


def test_only_the_sets_a_run_reads_are_checked(tmp_path):
    present = str(tmp_path)
    (tmp_path / 'list.txt').write_text('clip\n')
    opt = _opt(
        train={'dataroot_gt': str(tmp_path / 'absent'), 'dataroot_lq': None},
        val={'dataroot_gt': present},
        test_a={'dataroot_gt': present, 'meta_info_file': str(tmp_path / 'list.txt')},
    )
    check_dataset_paths(opt, 'test')  # the training set is not read by a test run
    with pytest.raises(DataError, match=r'^datasets\.train\.dataroot_gt: .*absent does not exist'):
        check_dataset_paths(opt, 'train')
    keys = [key for key, _, _ in dataset_paths(opt, 'test')]
    assert keys == [
        'datasets.val.dataroot_gt',
        'datasets.test_a.dataroot_gt',
        'datasets.test_a.meta_info_file',
    ]


def test_all_missing_paths_are_counted_in_the_one_line(tmp_path):
    opt = _opt(train={'dataroot_gt': str(tmp_path / 'a'), 'dataroot_lq': str(tmp_path / 'b')})
    with pytest.raises(DataError) as info:
        check_dataset_paths(opt, 'train')
    text = str(info.value)
    assert '\n' not in text and text.endswith('; 1 more missing: datasets.train.dataroot_lq')


def test_an_lmdb_root_needs_data_mdb(tmp_path):
    folder = tmp_path / 'gt.lmdb'
    folder.mkdir()
    opt = _opt(train={'dataroot_gt': str(folder), 'io_backend': {'type': 'lmdb'}})
    with pytest.raises(DataError, match='has no data.mdb'):
        check_dataset_paths(opt, 'train')
    (folder / 'data.mdb').write_bytes(b'')
    check_dataset_paths(opt, 'train')
    os.remove(folder / 'data.mdb')
    opt['datasets']['train']['io_backend'] = 'disk'  # a plain folder is fine on disk
    check_dataset_paths(opt, 'train')


def test_relative_paths_in_errors_name_what_they_resolved_to(tool):
    """A relative option file that is not there: the error names its absolute path too."""
    missing = 'options/test/not_a_file.yml'
    result = tool('tools/test.py', '-opt', missing)
    assert result.returncode == 2 and result.stderr.strip().count('\n') == 0, result.stderr
    assert result.stderr.strip() == (
        f'error: {missing} (= {osp.join(REPO_ROOT, missing)}; relative to the current '
        'directory): No such file or directory'
    )
