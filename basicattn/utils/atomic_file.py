"""Write files so that a crash never leaves a torn or half-written one.

Data goes to a temporary file in the destination's folder, is flushed to
disk, and the temporary file is renamed over the destination (atomic on
POSIX). Readers see the old file or the new one, never a mix. When the write
fails (disk full, quota, no permission ...) the temporary file is removed,
the previous file is left intact, and the ``OSError`` names the destination
(not the hidden temporary file), so the tools can print it in one line.
"""
import os
import os.path as osp
import uuid
from contextlib import contextmanager


def _naming(err, path, tmp):
    """``err`` with its ``filename`` set to ``path`` (the destination).

    An error that already names another file (not our temporary one) is
    returned as it is.
    """
    if err.errno is None or err.filename not in (None, tmp):
        return err
    # OSError(errno, ...) picks the matching subclass (FileNotFoundError ...)
    return OSError(err.errno, err.strerror or os.strerror(err.errno), path)


def _remove_quietly(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


@contextmanager
def atomic_open(path):
    """Open a binary file for writing that replaces ``path`` only on success.

    Args:
        path (str | os.PathLike): Destination; its folder is created if needed.

    Yields:
        file: Writable binary file object (a temporary file beside ``path``).

    Raises:
        OSError: Writing, flushing, syncing or renaming failed; its
            ``filename`` is ``path``. The previous ``path`` is intact and no
            temporary file is left.
    """
    path = os.fspath(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(folder, f'.{osp.basename(path)}.{uuid.uuid4().hex}.tmp')
    # mode 0o666 through os.open honours the umask (mkstemp would force 0o600)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_BINARY', 0),
                     0o666)
    except OSError as err:
        named = _naming(err, path, tmp)
        if named is err:
            raise
        raise named from err
    try:
        with os.fdopen(fd, 'wb') as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        _remove_quietly(tmp)
        named = _naming(err, path, tmp)
        if named is err:
            raise
        raise named from err
    except BaseException:
        _remove_quietly(tmp)
        raise


def atomic_write_bytes(data, path):
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`).

    Returns:
        str: ``path``.

    Raises:
        OSError: The write failed (names ``path``; the old file is intact).
    """
    with atomic_open(path) as f:
        f.write(data)
    return os.fspath(path)
