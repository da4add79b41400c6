"""Write files so that a crash never leaves a torn or half-written one.

Data goes to a temporary file in the destination's folder, is flushed to
disk, and the temporary file is renamed over the destination (atomic on
POSIX). Readers see the old file or the new one, never a mix.
"""
import os
import os.path as osp
import uuid
from contextlib import contextmanager


@contextmanager
def atomic_open(path):
    """Open a binary file for writing that replaces ``path`` only on success.

    Args:
        path (str | os.PathLike): Destination; its folder is created if needed.

    Yields:
        file: Writable binary file object (a temporary file beside ``path``).
    """
    path = os.fspath(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(folder, f'.{osp.basename(path)}.{uuid.uuid4().hex}.tmp')
    # mode 0o666 through os.open honours the umask (mkstemp would force 0o600)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_BINARY', 0), 0o666)
    try:
        with os.fdopen(fd, 'wb') as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_bytes(data, path):
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`).

    Returns:
        str: ``path``.
    """
    with atomic_open(path) as f:
        f.write(data)
    return os.fspath(path)
