"""One run at a time in an experiment (or results) folder.

Imports nothing heavy (no torch, no mmengine) at module level.

``tools/train.py`` and ``tools/test.py`` hold an exclusive lock on their work
dir for the life of the process: the file ``<work dir>/.basicattn_run.lock``,
locked with :func:`fcntl.flock` on a file descriptor that stays open until
the process ends. A second run into the same folder finds the lock taken and
stops with one line naming the holder (the pid and host written into the
file) before it reads, moves or archives anything.

* A crashed or killed run leaves the file but not the lock: the kernel drops
  a ``flock`` when its process dies, so the next run takes the lock over
  without any clean-up (the file's old pid and host are simply replaced).
* The lock follows the folder, not its name: after :func:`lock_run_folder`
  takes it, the file is checked to be still the one at that path (another
  run may have archived the folder in between); if not, it locks again.
* When a fresh run archives its folder (``work_dir.archive_existing``), the
  locked file is moved from the archived folder into the new one
  (:func:`relock_after_archive`) without ever being unlocked.
* A run that ends normally removes the file (:class:`~basicattn.engine.hooks.RunLockHook`), so an
  archived folder holds only the run's own files.
* Only the main process of a distributed run locks; its verdict is shared
  with the other ranks (:func:`lock_for_run`), so all of them stop together.
* Within one process, locking a folder it already holds does nothing (a
  script that trains, then resumes in the same process).

``flock`` is advisory and local to one machine on some network file systems
(NFS before Linux 2.6.12 emulates it with ``fcntl`` locks, which work across
clients); runs of basicattn all take it, so they exclude each other.
"""

from __future__ import annotations

import os
import os.path as osp
import socket
from typing import Dict

from basicattn.errors import UserError

LOCK_NAME = '.basicattn_run.lock'

# realpath of a locked folder -> the open, locked file descriptor
_HELD: Dict[str, int] = {}


class FolderLockedError(UserError):
    """Another live run holds the folder's lock."""


def _holder(path: str) -> str:
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read().strip()
    except OSError:
        text = ''
    return text or 'pid unknown (it is starting)'


def _still_there(fd: int, path: str) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def lock_run_folder(folder: str, what: str = 'experiment folder') -> str:
    """Take the lock of ``folder`` (creating it) for the life of this process.

    Args:
        folder (str): The work dir of the run.
        what (str): How to call the folder in the message.

    Returns:
        str: The lock file.

    Raises:
        FolderLockedError: Another live process holds the lock.
    """
    import fcntl

    os.makedirs(folder, exist_ok=True)
    key = osp.realpath(folder)
    path = osp.join(key, LOCK_NAME)
    held = _HELD.get(key)
    if held is not None:
        if _still_there(held, path):
            return path
        release(folder)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FolderLockedError(
                f'{what} {folder} is in use by another run ({_holder(path)}; lock file '
                f'{path}); wait for it to finish, or give this run another name or '
                'path.experiments_root'
            ) from None
        if _still_there(fd, path):  # not archived or replaced meanwhile
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f'pid {os.getpid()} on host {socket.gethostname()}\n'.encode())
    _HELD[key] = fd
    return path


def release(folder: str, remove: bool = False) -> None:
    """Give up this process's lock of ``folder`` (if it holds it).

    Args:
        folder (str): The locked folder.
        remove (bool): Also delete the lock file (a run that ended normally),
            while still holding the lock; a process waiting on the same file
            then sees that it was replaced and locks afresh.
    """
    key = osp.realpath(folder)
    fd = _HELD.pop(key, None)
    if fd is None:
        return
    path = osp.join(key, LOCK_NAME)
    if remove and _still_there(fd, path):
        os.remove(path)
    os.close(fd)  # closing the last descriptor drops the flock


def relock_after_archive(folder: str, archived: str, what: str) -> None:
    """Bring the lock back after ``folder`` was renamed to ``archived`` (archive on restart).

    The lock file went with the old folder; it is hard-linked into the new
    ``folder`` (created here) and removed from ``archived``, so the lock
    (which belongs to the file, not its name) is never let go and the
    archived folder keeps only the earlier run's files.

    Raises:
        FolderLockedError: Another run created and locked the new folder in
            the moment between the rename and the link.
    """
    key = osp.realpath(archived)
    old_path = osp.join(key, LOCK_NAME)
    fd = _HELD.get(osp.realpath(folder))
    os.makedirs(folder, exist_ok=True)
    new_path = osp.join(osp.realpath(folder), LOCK_NAME)
    if fd is None or not _still_there(fd, old_path):  # not ours: just lock the new folder
        lock_run_folder(folder, what)
        return
    try:
        os.link(old_path, new_path)
    except FileExistsError:
        _HELD.pop(osp.realpath(folder), None)
        os.close(fd)
        raise FolderLockedError(
            f'{what} {folder} was taken by another run ({_holder(new_path)}) while this run '
            f'archived the earlier files to {archived}; wait for it, or give this run another '
            'name or path.experiments_root'
        ) from None
    os.remove(old_path)


def lock_for_run(folder: str, what: str) -> None:
    """Lock ``folder`` on the main process; every rank raises if that failed.

    Raises:
        FolderLockedError: Another run holds the folder (on every rank).
    """
    import torch.distributed as torch_dist
    from mmengine.dist import is_main_process

    message = None
    if is_main_process():
        try:
            lock_run_folder(folder, what)
        except FolderLockedError as err:
            message = str(err)
    if torch_dist.is_available() and torch_dist.is_initialized():
        from mmengine.dist import broadcast_object_list

        shared = [message]
        broadcast_object_list(shared, src=0)
        message = shared[0]
    if message:
        raise FolderLockedError(message)
