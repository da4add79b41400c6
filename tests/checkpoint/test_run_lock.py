"""run_lock: one run per experiment folder, a dead holder's lock taken over (issue 22, 3).

The holder is a real second process that takes the lock with the same code
and sleeps; the kernel frees its ``flock`` when it is killed.
"""

import os
import os.path as osp
import signal
import socket
import subprocess
import sys

import pytest

from basicattn.checkpoint import run_lock
from basicattn.checkpoint import work_dir as experiment_folder
from basicattn.checkpoint.run_lock import LOCK_NAME, FolderLockedError, lock_run_folder, release

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# run_lock.py loaded on its own (it imports no torch): the child starts in a blink
HOLDER = (
    'import importlib.util, sys, time\n'
    f'spec = importlib.util.spec_from_file_location("run_lock", {run_lock.__file__!r})\n'
    'module = importlib.util.module_from_spec(spec)\n'
    'spec.loader.exec_module(module)\n'
    'module.lock_run_folder(sys.argv[1])\n'
    'print("locked", flush=True)\n'
    'time.sleep(120)\n'
)


def start_holder(folder):
    """A child process that holds the lock of ``folder`` until killed."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS='1')
    child = subprocess.Popen(
        [sys.executable, '-c', HOLDER, str(folder)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = child.stdout.readline()
    assert line.strip() == 'locked', child.stderr.read()
    return child


def stop(child):
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    child.stderr.close()


@pytest.fixture
def holder(tmp_path):
    folder = tmp_path / 'exp'
    child = start_holder(folder)
    yield folder, child
    if child.poll() is None:
        stop(child)


def test_second_process_is_refused_with_pid_and_host(holder):
    folder, child = holder
    with pytest.raises(FolderLockedError) as info:
        lock_run_folder(str(folder))
    message = str(info.value)
    assert f'pid {child.pid} on host {socket.gethostname()}' in message
    assert str(folder) in message and '\n' not in message


def test_lock_of_a_killed_process_is_taken_over(holder):
    folder, child = holder
    stop(child)  # SIGKILL: no clean-up ran, the stale file stays
    path = osp.join(folder, LOCK_NAME)
    with open(path) as f:
        assert f.read().startswith(f'pid {child.pid} ')
    try:
        assert lock_run_folder(str(folder)) == osp.join(osp.realpath(folder), LOCK_NAME)
        with open(path) as f:
            assert f.read().startswith(f'pid {os.getpid()} ')
    finally:
        release(str(folder), remove=True)
    assert not osp.exists(path)


def test_relocking_in_the_same_process_is_a_no_op(tmp_path):
    folder = str(tmp_path / 'exp')
    try:
        first = lock_run_folder(folder)
        assert lock_run_folder(folder) == first
    finally:
        release(folder)


def test_archiving_keeps_the_lock_and_leaves_the_lock_file_out(tmp_path):
    folder = str(tmp_path / 'exp')
    lock_run_folder(folder)
    try:
        with open(osp.join(folder, 'iter_2.pth'), 'wb') as f:
            f.write(b'earlier run')
        assert experiment_folder.holds_files(folder)
        archived = experiment_folder.archive_existing(folder)
        run_lock.relock_after_archive(folder, archived, 'experiment folder')
        assert os.listdir(archived) == ['iter_2.pth']
        assert os.listdir(folder) == [LOCK_NAME]
        assert not experiment_folder.holds_files(folder)  # the lock alone is no earlier run
        child = subprocess.run(
            [sys.executable, '-c', HOLDER, folder],
            env=dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS='1'),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert child.returncode == 1 and 'FolderLockedError' in child.stderr
        assert f'pid {os.getpid()} ' in child.stderr
    finally:
        release(folder, remove=True)
