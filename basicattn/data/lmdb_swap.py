"""Put a newly built LMDB folder in place, and repair swaps cut short.

A database ``X`` is built in ``X.tmp-<pid>``. When every record and
``meta_info.txt`` are on disk the builder writes the marker file
:data:`COMPLETE_MARKER` into it (last, and synced), then
:func:`swap_into_place` moves it to ``X``:

* no ``X`` yet: one :func:`os.rename`;
* an ``X`` to replace, where the OS can (Linux ``renameat2`` with
  ``RENAME_EXCHANGE``): the two folders are exchanged in one atomic step,
  the old database (now at ``X.tmp-<pid>``) is renamed ``X.old-<pid>`` and
  removed;
* elsewhere: ``X -> X.old-<pid>``, ``X.tmp-<pid> -> X``, remove the old one.

At every instant either ``X`` holds a database or a leftover of a dead
process holds one. :func:`recover_interrupted_swap` runs at the start of every
build and whenever a dataset finds ``X`` missing; for leftovers of processes
that are no longer alive it puts a database back at ``X`` (the complete new
one, else the old one), removes what is safe to remove, and reports each
action in one line.
"""

import ctypes
import errno
import glob
import os
import os.path as osp
import re
import shutil
import socket
import sys

__all__ = [
    'COMPLETE_MARKER',
    'OWNER_FILE',
    'exchange_paths',
    'mark_complete',
    'recover_interrupted_swap',
    'swap_into_place',
    'write_owner',
]

#: Written into ``X.tmp-<pid>`` last, once the database there is complete.
COMPLETE_MARKER = '.basicattn-complete'
#: ``host pid`` of the process building ``X.tmp-<pid>``.
OWNER_FILE = '.basicattn-owner'

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_NO_EXCHANGE = {errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV}
_LEFTOVER = re.compile(r'\.(?P<kind>tmp|old)-(?P<pid>\d+)$')


def _step(name):
    """A point of the swap; tests replace this to simulate a kill there."""


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_synced(path, text):
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def write_owner(folder):
    """Record this host and process as the builder of ``folder``."""
    _write_synced(osp.join(folder, OWNER_FILE), f'{socket.gethostname()} {os.getpid()}\n')


def mark_complete(folder):
    """Mark the database in ``folder`` as complete (call after it is synced)."""
    _write_synced(osp.join(folder, COMPLETE_MARKER), 'complete\n')
    _fsync_dir(folder)


def _is_complete(folder):
    return osp.isfile(osp.join(folder, COMPLETE_MARKER))


def exchange_paths(a, b):
    """Exchange two existing paths atomically (Linux ``renameat2``).

    Args:
        a (str): A file or folder.
        b (str): Another one, on the same file system.

    Returns:
        bool: True if they were exchanged; False if this OS or file system
        cannot do it (nothing was changed then).

    Raises:
        OSError: The exchange was possible but failed (names both paths).
    """
    if not sys.platform.startswith('linux'):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in _NO_EXCHANGE:
        return False
    raise OSError(err, os.strerror(err), a, None, b)


def _remove_tree(path):
    if osp.isdir(path) and not osp.islink(path):
        shutil.rmtree(path)
    elif osp.lexists(path):
        os.remove(path)


def _drop_build_files(dst):
    """Remove the builder's marker and owner files from a database in place."""
    for name in (COMPLETE_MARKER, OWNER_FILE):
        try:
            os.remove(osp.join(dst, name))
        except FileNotFoundError:
            pass


def swap_into_place(tmp, dst):
    """Move the complete database ``tmp`` to ``dst``, replacing any there.

    ``tmp`` must hold :data:`COMPLETE_MARKER`. An existing ``dst`` is removed
    only once the new database is at ``dst``; a kill at any point leaves a
    state that :func:`recover_interrupted_swap` repairs.

    Args:
        tmp (str): ``dst + '.tmp-<pid>'``.
        dst (str): The database path.
    """
    parent = osp.dirname(osp.abspath(dst))
    if not osp.lexists(dst):
        os.rename(tmp, dst)
        _step('renamed')
    else:
        old = f'{dst}.old-{os.getpid()}'
        if osp.lexists(old):
            _remove_tree(old)  # a leftover of a dead process that had our pid
        if osp.isdir(dst):  # the old database must not pass for a new one
            _drop_build_files(dst)
            _fsync_dir(dst)
        if exchange_paths(tmp, dst):
            _step('exchanged')
            os.rename(tmp, old)
        else:
            os.rename(dst, old)
            _step('moved_old')
            try:
                os.rename(tmp, dst)
            except BaseException:
                os.rename(old, dst)  # put the previous database back
                raise
        _step('new_in_place')
        _fsync_dir(parent)
        shutil.rmtree(old, ignore_errors=True)  # what is left: next run's job
        _step('old_removed')
    _drop_build_files(dst)
    _fsync_dir(parent)


def _pid_alive(pid):
    if pid == os.getpid():
        return False  # a run of ours starting now: what has our pid is stale
    if os.name != 'posix':
        return True  # cannot tell: leave it alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True


def _owner_elsewhere(folder):
    """The ``host pid`` of a builder on another machine, or None."""
    try:
        with open(osp.join(folder, OWNER_FILE), encoding='utf-8') as f:
            host = f.read().split()[0]
    except (OSError, IndexError):
        return None
    return None if host == socket.gethostname() else host


def _leftovers(dst):
    found = []
    for path in sorted(glob.glob(glob.escape(dst) + '.*-*')):
        match = _LEFTOVER.search(path[len(dst) :])
        if match is not None and path[len(dst) :] == match.group(0):
            found.append((match.group('kind'), int(match.group('pid')), path))
    return found


class _DirLock:
    """An exclusive ``flock`` on a folder (serialises recoveries)."""

    def __init__(self, folder):
        self.folder = folder
        self.fd = None

    def __enter__(self):
        try:
            import fcntl

            self.fd = os.open(self.folder, os.O_RDONLY)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except (ImportError, OSError):
            if self.fd is not None:
                os.close(self.fd)
            self.fd = None
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)  # releases the lock
        return False


def _default_report(line):
    print(line, file=sys.stderr, flush=True)


def recover_interrupted_swap(dst, report=None):
    """Repair what an interrupted build or swap of ``dst`` left behind.

    Looks at ``dst.tmp-<pid>`` and ``dst.old-<pid>`` whose process is no
    longer alive (on this host; folders owned by a builder on another host,
    or by a live process, are only reported). When ``dst`` is missing it is
    restored: from a complete ``.tmp`` (the swap is completed) or else from
    an ``.old`` copy (the previous database comes back). A complete ``.tmp``
    whose swap never started replaces ``dst`` as its run was asked to (with
    the same atomic swap); ``.old`` copies and incomplete ``.tmp`` folders
    are removed once ``dst`` is in place.

    Args:
        dst (str | os.PathLike): The database path.
        report (callable, optional): Called with one line per action;
            defaults to printing on stderr.

    Returns:
        list[str]: The lines reported.
    """
    dst = os.fspath(dst).rstrip('/\\') or os.fspath(dst)
    lines = []

    def say(text):
        lines.append(text)
        (report or _default_report)(f'LMDB recovery: {text}')

    parent = osp.dirname(osp.abspath(dst))
    if osp.isdir(dst):
        _drop_build_files(dst)  # a swap killed just before its last step
    if not osp.isdir(parent) or not _leftovers(dst):
        return lines
    with _DirLock(parent):
        stale = []
        leftovers = _leftovers(dst)
        # the owner file of X.tmp-<pid> also speaks for X.old-<pid>
        hosts = {pid: _owner_elsewhere(path) for kind, pid, path in leftovers if kind == 'tmp'}
        for kind, pid, path in leftovers:
            host = hosts.get(pid)
            if host is not None:
                say(
                    f'{path} is being built (or was left) by process {pid} on '
                    f'{host}; left alone (delete it if that build is dead)'
                )
            elif _pid_alive(pid):
                say(f'{path} belongs to running process {pid}; left alone')
            else:
                stale.append((kind, pid, path))
        if not osp.lexists(dst):
            _restore(dst, stale, say)
        for kind, pid, path in stale:
            if osp.lexists(path):
                _settle_leftover(dst, kind, pid, path, say)
        if osp.isdir(dst):
            _drop_build_files(dst)
    return lines


def _settle_leftover(dst, kind, pid, path, say):
    """Remove (or keep and report) one leftover of a dead process."""
    if kind == 'tmp' and _is_complete(path) and osp.isdir(dst):
        swap_into_place(path, dst)
        say(
            f'completed the interrupted swap of process {pid}: its finished '
            f'database {path} replaced {dst}'
        )
    elif kind == 'tmp' and _is_complete(path):
        say(
            f'{path} holds a complete database built by process {pid}, but '
            f'{dst} is not a folder; kept both for you to sort out'
        )
    elif kind == 'tmp':
        _remove_tree(path)
        say(f'removed {path}, left by dead process {pid} (not a finished new database)')
    elif osp.lexists(dst):
        _remove_tree(path)
        say(f'removed {path}, the database replaced by dead process {pid}; {dst} is in place')
    else:
        say(
            f'{path}, left by dead process {pid}, is not a usable database '
            f'and {dst} is missing; kept it for you to inspect'
        )


def _restore(dst, stale, say):
    """Put a database back at the missing ``dst`` from ``stale`` leftovers."""
    complete = [(p, path) for kind, p, path in stale if kind == 'tmp' and _is_complete(path)]
    olds = [
        (p, path)
        for kind, p, path in stale
        if kind == 'old' and osp.isfile(osp.join(path, 'data.mdb'))
    ]
    if complete:
        pid, path = complete[0]
        done = (
            f'completed the interrupted swap of process {pid} '
            f'(moved its finished database {path} into place)'
        )
    elif olds:
        pid, path = olds[0]
        done = (
            f'restored the previous database from {path} '
            f'(the rebuild by process {pid} had not finished)'
        )
    else:
        return
    os.rename(path, dst)
    say(f'{dst} was missing: {done}')
    _fsync_dir(osp.dirname(osp.abspath(dst)))
