"""Nothing is overwritten or removed that the run did not write (issue 12, section 2).

* A fresh run into a folder that holds an earlier run's files renames that
  folder to ``<folder>_archived_<timestamp>`` first (train.py and test.py).
* ``last_checkpoint`` is relative to the work dir and resolved inside it, and
  mmengine's remembered best checkpoint is rebased: a copied experiment
  folder resumes from its own files and leaves the original untouched.
* A weights-only file given as ``path.resume_state`` is refused in one line.
"""

import glob
import hashlib
import os
import os.path as osp
import shutil

import pytest
import torch

from basicattn.checkpoint.io import safe_load


@pytest.fixture
def tool(forked_tool):
    """These runs need no fresh interpreter: fork them (conftest.forked_tool)."""
    return forked_tool


def snapshot(folder):
    """{relative path: (size, mtime_ns, sha256 or link target)} of every entry."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = osp.join(root, name)
            rel = osp.relpath(path, folder)
            st = os.lstat(path)
            if osp.islink(path):
                out[rel] = ('link', os.readlink(path), st.st_mtime_ns)
            elif osp.isfile(path):
                with open(path, 'rb') as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
                out[rel] = (st.st_size, st.st_mtime_ns, digest)
            else:
                out[rel] = ('dir',)
    return out


def _ok(out):
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


def test_second_fresh_run_archives_the_first(tiny_experiment, tool):
    opt = tiny_experiment('twice')
    exp = osp.join(tiny_experiment.root, 'twice')
    short = ['--set', 'train.total_iter=3']
    _ok(tool('tools/train.py', '-opt', opt, *short))
    first = snapshot(exp)
    assert {'iter_3.pth', 'last_checkpoint', 'latest.pth'} <= set(first)
    with open(osp.join(exp, 'last_checkpoint')) as f:
        assert f.read() == 'iter_3.pth'  # relative to the work dir
    log = _ok(tool('tools/train.py', '-opt', opt, *short))
    archived = glob.glob(exp + '_archived_*')
    assert len(archived) == 1, os.listdir(tiny_experiment.root)
    assert f'moved them to {archived[0]}' in log
    assert snapshot(archived[0]) == first  # names, sizes, mtimes, contents
    assert osp.isfile(osp.join(exp, 'iter_3.pth'))  # the new run wrote its own


def test_copied_folder_resumes_from_its_own_checkpoint(tiny_experiment, tool):
    root = tiny_experiment.root
    orig_opt = tiny_experiment('orig')
    copy_opt = tiny_experiment('copy')  # the same options, work dir <root>/copy
    orig, copy = osp.join(root, 'orig'), osp.join(root, 'copy')
    _ok(tool('tools/train.py', '-opt', orig_opt, '--stop-at', '3'))
    assert glob.glob(osp.join(orig, 'best_*iter_3.pth')), os.listdir(orig)  # save_best is on
    shutil.copytree(orig, copy, symlinks=True)
    # as mmengine wrote it before: the original's absolute path
    with open(osp.join(copy, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(orig, 'iter_3.pth'))
    before = snapshot(orig)
    log = _ok(tool('tools/train.py', '-opt', copy_opt, '--auto-resume'))
    assert f'resuming from {osp.join(copy, "iter_3.pth")}' in log
    assert f'from path: {osp.join(copy, "iter_3.pth")}' in log  # mmengine's load line
    best = osp.basename(glob.glob(osp.join(orig, 'best_*iter_3.pth'))[0])
    assert f'best_ckpt: {osp.join(orig, best)} is taken as {osp.join(copy, best)}' in log
    assert snapshot(orig) == before, 'the original folder changed'
    assert osp.isfile(osp.join(copy, 'iter_6.pth'))
    with open(osp.join(copy, 'last_checkpoint')) as f:
        assert f.read() == 'iter_6.pth'
    info = safe_load(osp.join(copy, 'iter_6.pth'))['message_hub']['runtime_info']
    assert info['best_ckpt'].startswith(copy + os.sep), info['best_ckpt']
    assert osp.isfile(info['best_ckpt'])


def test_weights_only_resume_state_is_refused(tiny_experiment, tool, tmp_path):
    weights = tmp_path / 'weights.pth'
    torch.save({'state_dict': {'w': torch.ones(1)}}, weights)
    opt = tiny_experiment('weights')
    out = tool('tools/train.py', '-opt', opt, '--set', f'path.resume_state={weights}')
    assert out.returncode == 2, out.stderr[-3000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) < 10 and 'Traceback' not in out.stderr, out.stderr
    assert str(weights) in lines[-1] and 'path.pretrain_network_g' in lines[-1]
    assert 'KeyError' not in out.stderr


def test_test_tool_archives_earlier_results(tiny_experiment, tool):
    opt = tiny_experiment('evaluated')
    results = osp.join(tiny_experiment.root, 'results')
    args = ('tools/test.py', '-opt', opt, '--set', f'path.experiments_root={results}')
    _ok(tool(*args))
    first = snapshot(results)
    assert 'metrics.json' in first
    log = _ok(tool(*args))
    archived = glob.glob(results + '_archived_*')
    assert len(archived) == 1 and f'moved them to {archived[0]}' in log
    assert snapshot(archived[0]) == first
    assert osp.isfile(osp.join(results, 'metrics.json'))


# issue 22, point 3: one run per folder, and auto-resume from what is there


def _holder(folder):
    """A second process holding the run lock of ``folder`` (tests/checkpoint/test_run_lock.py)."""
    import sys

    sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'engine'))
    try:
        from test_run_lock import start_holder, stop
    finally:
        sys.path.pop(0)
    return start_holder(folder), stop


def _refused(out):
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-3000:]
    lines = out.stderr.strip().splitlines()
    assert 'Traceback' not in out.stderr and lines[-1].startswith('error: '), out.stderr
    return lines[-1]


@pytest.mark.parametrize('script', ['train.py', 'test.py'])
def test_run_into_a_folder_in_use_is_refused_before_anything_moves(script, tiny_experiment, tool):
    opt = tiny_experiment('busy')
    exp = osp.join(tiny_experiment.root, 'busy')
    os.makedirs(exp)
    with open(osp.join(exp, 'iter_3.pth'), 'wb') as f:
        f.write(b'an earlier run')  # a fresh run would archive the folder
    child, stop = _holder(exp)
    try:
        before = snapshot(exp)
        line = _refused(tool(f'tools/{script}', '-opt', opt))
        assert f'is in use by another run (pid {child.pid} on host ' in line, line
        assert exp in line
        assert snapshot(exp) == before
        assert not glob.glob(exp + '_archived_*')
    finally:
        stop(child)


def test_auto_resume_takes_the_newest_valid_checkpoint(tiny_experiment, tool):
    opt = tiny_experiment('resumed')
    exp = osp.join(tiny_experiment.root, 'resumed')
    _ok(tool('tools/train.py', '-opt', opt, '--stop-at', '2'))
    # a --stop-at the resumed run has already passed would never stop it
    line = _refused(tool('tools/train.py', '-opt', opt, '--auto-resume', '--stop-at', '2'))
    assert '--stop-at 2: the run resumes after iteration 2' in line, line
    with open(osp.join(exp, 'iter_5.pth'), 'wb') as f:
        f.write(b'torn')  # newer, but not loadable
    with open(osp.join(exp, 'last_checkpoint'), 'w') as f:
        f.write('iter_4.pth')  # deleted
    log = _ok(tool('tools/train.py', '-opt', opt, '--auto-resume'))
    assert (
        'last_checkpoint names iter_4.pth, but '
        f'{osp.join(exp, "iter_4.pth")} does not exist; the newest valid checkpoint is '
        f'iter_2.pth; resuming from {osp.join(exp, "iter_2.pth")}'
    ) in log
    assert not glob.glob(exp + '_archived_*')
    assert safe_load(osp.join(exp, 'iter_6.pth'))['meta']['iter'] == 6
    assert not osp.exists(osp.join(exp, '.basicattn_run.lock'))  # removed at the end


def test_auto_resume_without_a_valid_checkpoint_is_refused(tiny_experiment, tool):
    opt = tiny_experiment('broken')
    exp = osp.join(tiny_experiment.root, 'broken')
    os.makedirs(exp)
    with open(osp.join(exp, 'iter_3.pth'), 'wb') as f:
        f.write(b'torn')
    torch.save({'state_dict': {'w': torch.ones(1)}}, osp.join(exp, 'iter_2.pth'))
    with open(osp.join(exp, 'last_checkpoint'), 'w') as f:
        f.write('iter_9.pth')
    before = snapshot(exp)
    line = _refused(tool('tools/train.py', '-opt', opt, '--auto-resume'))
    assert line.startswith(f'error: --auto-resume: no checkpoint in {exp} can resume the run')
    assert 'iter_3.pth (' in line and 'iter_2.pth (' in line and 'weights only' in line
    assert snapshot(exp) == before and not glob.glob(exp + '_archived_*')
