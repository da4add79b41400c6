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
import shutil
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
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_BINARY', 0), 0o666)
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


class StagedFolder:
    """Files that appear in a folder all together, or not at all.

    Outputs are written into a hidden folder beside ``path``
    (``.<name>.part-<pid>``, see :meth:`stage`); :meth:`commit` moves them
    into ``path`` (the whole folder in one rename when ``path`` does not
    exist yet, else file by file, each move atomic, replacing files of the
    same name) and :meth:`abort` removes only the hidden folder, so that a
    run failing half-way leaves ``path`` exactly as it was.

    Args:
        path (str | os.PathLike): The destination folder.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        parent, base = osp.split(osp.abspath(self.path))
        self.part = osp.join(parent, f'.{base}.part-{os.getpid()}')
        self._started = False

    def stage(self, rel):
        """Where to write the output whose final path is ``path/rel``.

        Args:
            rel (str): Path relative to the destination folder.

        Returns:
            str: A path inside the hidden folder (its parents exist).
        """
        if not self._started:
            if osp.isdir(self.part):
                shutil.rmtree(self.part)  # left by a dead run that had our pid
            os.makedirs(self.part)
            self._started = True
        staged = osp.join(self.part, rel)
        os.makedirs(osp.dirname(staged), exist_ok=True)
        return staged

    def target(self, staged):
        """The final path of a staged path."""
        return osp.join(self.path, osp.relpath(staged, self.part))

    @contextmanager
    def writing(self, rel):
        """Yield :meth:`stage` ``(rel)``; an OSError about it names ``path/rel``.

        So that a full disk reads ``out/x.png: No space left on device``, not
        the hidden staged path.
        """
        staged = self.stage(rel)
        try:
            yield staged
        except OSError as err:
            if err.errno is None or err.filename != staged:
                raise
            raise OSError(err.errno, err.strerror, self.target(staged)) from err

    def commit(self):
        """Move every staged file into the destination folder."""
        if not self._started:
            return
        if not osp.lexists(self.path):
            os.rename(self.part, self.path)
        else:
            for dirpath, dirnames, filenames in os.walk(self.part):
                dirnames.sort()
                dest = self.target(dirpath)
                os.makedirs(dest, exist_ok=True)
                for name in sorted(filenames):
                    os.replace(osp.join(dirpath, name), osp.join(dest, name))
            shutil.rmtree(self.part)
        self._started = False

    def abort(self):
        """Remove the hidden folder; the destination is left untouched."""
        if self._started:
            shutil.rmtree(self.part, ignore_errors=True)
            self._started = False
