"""Reading LMDB image databases in BasicSR's layout.

An image LMDB is a folder (by convention named ``*.lmdb``) holding LMDB's
``data.mdb`` plus a ``meta_info.txt``. Each record maps a key to the PNG
bytes of one image. The key is the image's path relative to the dataset root
without its extension, with ``/`` separators, so keys never collide and may
contain dots (``0801x2``, ``00001/0001/im4``, ``a.b/c.d``). Every line of
``meta_info.txt`` reads ``<key>.png (h,w,c) <compress_level>``, which is the
format BasicSR writes, so databases built by BasicSR can be read as they are.

The same key convention is used for image folders on disk, so that the disk
and LMDB backends of a dataset name their samples identically; the folder
scan that produces those keys lives here too.
"""

import errno
import os
import os.path as osp
import re
import sys
import threading
import weakref

import lmdb

from basicattn.errors import DataError
from basicattn.utils.text_file import read_text_lines

from .lmdb_swap import recover_interrupted_swap

__all__ = [
    'IMG_SUFFIXES',
    'META_INFO_NAME',
    'SUPPORTED_BACKENDS',
    'LmdbKeyError',
    'LmdbReader',
    'check_unique_keys',
    'is_lmdb',
    'lmdb_failure',
    'read_meta_info',
    'require_lmdb',
    'scan_images',
]


class LmdbKeyError(DataError, KeyError):
    """A record the data needs is not in the LMDB (the message names both).

    A :class:`~basicattn.errors.DataError` for the tools, and a ``KeyError``
    for code that looks records up.
    """

    __str__ = BaseException.__str__  # the message as is, not its repr


#: What to tell the user about a damaged database.
REBUILD_HINT = 'the database is damaged or not an LMDB; rebuild it with tools/create_lmdb.py'

#: Name of the text file, beside ``data.mdb``, that lists keys and shapes.
META_INFO_NAME = 'meta_info.txt'

#: The ``io_backend`` values of the datasets: image files or LMDBs.
SUPPORTED_BACKENDS = ('disk', 'lmdb')

#: File suffixes treated as images (compared case-insensitively).
IMG_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')

# "<name> (h,w,c) <level>"; the name may hold spaces, dots and slashes.
_META_LINE = re.compile(
    r'^(?P<name>\S.*?)\s+'
    r'\(\s*(?P<h>\d+)\s*,\s*(?P<w>\d+)\s*,\s*(?P<c>\d+)\s*\)'
    r'\s+(?P<level>-?\d+)$'
)


def is_lmdb(path):
    """Tell whether ``path`` names an LMDB database folder.

    Args:
        path (str | os.PathLike): A path, which need not exist.

    Returns:
        bool: True if the path ends in ``.lmdb`` (the naming convention) or is
        a folder holding a ``data.mdb`` file.
    """
    path = os.fspath(path)
    if path.rstrip('/\\').endswith('.lmdb'):
        return True
    return osp.isfile(osp.join(path, 'data.mdb'))


def read_meta_info(path):
    """Parse a BasicSR LMDB ``meta_info.txt``.

    Each non-blank line must read ``<key>.png (h,w,c) <compress_level>``.
    Only the final ``.png`` is removed from the name, so keys keep their inner
    dots and slashes (``a.b/c.d.png`` gives the key ``a.b/c.d``).

    Args:
        path (str | os.PathLike): The ``meta_info.txt`` file, or the LMDB
            folder that holds it.

    Returns:
        list[tuple[str, tuple[int, int, int], int]]: One
        ``(key, (h, w, c), compress_level)`` per line, in file order.

    Raises:
        FileNotFoundError: If the file does not exist.
        DataError: If a line is malformed or a key appears twice; the
            message names the file and the line number.
    """
    path = os.fspath(path)
    if osp.isdir(path):
        path = osp.join(path, META_INFO_NAME)
    if not osp.isfile(path):
        raise FileNotFoundError(f'LMDB meta info file not found: {path}')
    entries = []
    seen = {}
    for lineno, raw in enumerate(read_text_lines(path, 'LMDB meta info file'), start=1):
        line = raw.strip()
        if not line:
            continue
        match = _META_LINE.match(line)
        if match is None:
            raise DataError(
                f'{path}, line {lineno}: malformed meta info line '
                f'{line!r}; expected "<key>.png (h,w,c) <compress_level>"'
            )
        name = match.group('name')
        key = name[: -len('.png')] if name.endswith('.png') else name
        if not key:
            raise DataError(f'{path}, line {lineno}: empty key in line {line!r}')
        if key in seen:
            raise DataError(
                f'{path}, line {lineno}: key {key!r} already listed on line {seen[key]}'
            )
        seen[key] = lineno
        shape = (int(match.group('h')), int(match.group('w')), int(match.group('c')))
        entries.append((key, shape, int(match.group('level'))))
    return entries


def scan_images(root, suffixes=IMG_SUFFIXES):
    """List the images under a folder, recursively, with their keys.

    The key of an image is its path relative to ``root`` without the
    extension, with ``/`` separators. Folders and files are visited in sorted
    order and the result is sorted by relative path, so it is
    deterministic. Two files mapping to the same key
    (``x.png`` and ``x.jpg``) are *not* detected here; see
    :func:`check_unique_keys`.

    Links to folders are followed at most once per real folder (its
    ``(st_dev, st_ino)``): a link into the scanned tree (``self -> .``), to a
    folder holding it (``loop -> ..``) or to a folder listed already is
    skipped with one ``warning:`` line on stderr, so a loop can neither hang
    the scan nor list the same images again under other keys. Links to
    files are kept (each is its own key: a clip may repeat a frame that way).

    Args:
        root (str | os.PathLike): The folder to scan.
        suffixes (Sequence[str]): File suffixes to keep, compared
            case-insensitively. Defaults to :data:`IMG_SUFFIXES`.

    Returns:
        list[tuple[str, str]]: ``(key, path)`` pairs sorted by relative path.

    Raises:
        FileNotFoundError: If ``root`` is not an existing folder.
    """
    root = os.fspath(root)
    if not osp.isdir(root):
        raise FileNotFoundError(f'image folder not found: {root}')
    suffixes = tuple(s.lower() for s in suffixes)
    found = []
    for dirpath, filenames in _walk_each_folder_once(root):
        for filename in sorted(filenames):
            stem, ext = osp.splitext(filename)
            if not stem or ext.lower() not in suffixes:
                continue
            path = osp.join(dirpath, filename)
            rel = osp.relpath(path, root).replace(os.sep, '/')
            found.append((rel, osp.splitext(rel)[0], path))
    # One global order of relative paths, whatever the folder nesting.
    found.sort()
    return [(key, path) for _, key, path in found]


def _folder_identity(path):
    st = os.stat(path)  # follows links: the real folder
    return st.st_dev, st.st_ino


def _within(path, folder):
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _walk_each_folder_once(root):
    """Yield ``(dirpath, filenames)`` like ``os.walk(followlinks=True)``, each real folder once.

    A link to a folder inside the scanned tree (it is listed under its own
    path) or to one that holds the tree (a loop) is skipped; a link out of
    the tree is followed unless its real folder was listed already.
    """
    real_root = osp.realpath(root)
    seen = {_folder_identity(root)}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        keep = []
        for name in sorted(dirnames):
            path = osp.join(dirpath, name)
            try:
                identity = _folder_identity(path)
            except OSError:  # vanished or unreadable: os.walk would skip it too
                continue
            if osp.islink(path):
                target = osp.realpath(path)
                if _within(target, real_root) or _within(real_root, target):
                    why = 'inside' if _within(target, real_root) else 'holding'
                    _skip(path, f'links to {target}, a folder {why} the scanned tree')
                    continue
            if identity in seen:
                _skip(path, 'leads to a folder listed already')
                continue
            seen.add(identity)
            keep.append(name)
        dirnames[:] = keep
        yield dirpath, filenames


def _skip(path, why):
    print(
        f'warning: {path} {why}; skipped (each folder is listed once)',
        file=sys.stderr,
        flush=True,
    )


def check_unique_keys(items):
    """Raise if two files of a scan map to the same key.

    Args:
        items (Iterable[tuple[str, str]]): ``(key, path)`` pairs, e.g. from
            :func:`scan_images`.

    Returns:
        dict[str, str]: The mapping key -> path.

    Raises:
        DataError: Naming both files of the first collision found.
    """
    mapping = {}
    for key, path in items:
        if key in mapping:
            raise DataError(
                f'two files map to the same key {key!r}: {mapping[key]} and '
                f'{path}; keys are paths without the extension, so keep '
                'only one of them'
            )
        mapping[key] = path
    return mapping


# Environments opened by this process, by identity of their data file. py-lmdb
# refuses to open the same environment twice in one process, so every reader
# of one database shares one environment; it is closed when the last reader
# drops it. Entries inherited through fork belong to the parent and are
# closed in the child before it opens its own.
_SHARED_ENVS = weakref.WeakValueDictionary()
_SHARED_PIDS = {}
_SHARED_LOCK = threading.RLock()


def lmdb_failure(err, db_path, key=None, writing=False):
    """The error to raise for an ``lmdb.Error`` met while using ``db_path``.

    A full disk becomes an ``OSError(ENOSPC)`` naming the database folder,
    as does any failure while ``writing`` (LMDB reports a full disk as an
    I/O error on commit); anything else (``MDB_CORRUPTED``, ``MDB_INVALID``
    ...) a :class:`~basicattn.errors.DataError` naming the folder, the key if
    one, and telling to rebuild the database.

    Args:
        err (lmdb.Error): What py-lmdb raised.
        db_path (str): The LMDB folder.
        key (str | bytes, optional): The record being read.
        writing (bool): The database was being written (built).

    Returns:
        Exception: To be raised ``from err``.
    """
    if isinstance(err, lmdb.DiskError):
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), db_path)
    if isinstance(err, lmdb.ReadonlyError) and 'denied' in str(err).lower():
        return OSError(errno.EACCES, os.strerror(errno.EACCES), db_path)
    if writing:
        return OSError(
            errno.EIO, f'cannot write the LMDB: {err} (is the disk full? see df)', db_path
        )
    where = f'LMDB {db_path}'
    if key is not None:
        if isinstance(key, bytes):
            key = key.decode('utf-8', 'replace')
        where += f', key {key!r}'
    text = str(err)
    if text.startswith(f'{db_path}: '):
        text = text[len(db_path) + 2 :]
    return DataError(f'{where}: {text}; {REBUILD_HINT}')


def require_lmdb(db_path, role='LMDB'):
    """Check that ``db_path`` is an LMDB folder, repairing an interrupted swap.

    When ``data.mdb`` is missing, an overwrite of the database that was cut
    short may have left it at ``db_path.old-<pid>`` / ``db_path.tmp-<pid>``;
    :func:`~basicattn.data.lmdb_swap.recover_interrupted_swap` puts it back
    (and says so) before giving up.

    Args:
        db_path (str | os.PathLike): The LMDB folder.
        role (str): What the database is (``'GT LMDB'``), for the message.

    Returns:
        str: ``db_path``.

    Raises:
        FileNotFoundError: No ``data.mdb`` in ``db_path`` (names it).
    """
    db_path = os.fspath(db_path)
    data_file = osp.join(db_path, 'data.mdb')
    if not osp.isfile(data_file):
        recover_interrupted_swap(db_path)
    if not osp.isfile(data_file):
        raise FileNotFoundError(f'{role} database not found: {db_path} has no data.mdb')
    return db_path


def _open_shared_env(db_path):
    """Open (or reuse) this process's read-only environment of ``db_path``."""
    data_file = osp.join(db_path, 'data.mdb')
    try:
        st = os.stat(data_file)
    except OSError:
        raise FileNotFoundError(f'LMDB database not found: {db_path} has no data.mdb') from None
    ident = (st.st_dev, st.st_ino) if st.st_ino else osp.realpath(data_file)
    pid = os.getpid()
    with _SHARED_LOCK:
        stale = [k for k, p in _SHARED_PIDS.items() if p != pid]
        for k in stale:
            env = _SHARED_ENVS.pop(k, None)
            del _SHARED_PIDS[k]
            if env is not None:
                # Inherited through fork: closing only unmaps this process's
                # view (lock=False, so there are no locks to release).
                env.close()
        env = _SHARED_ENVS.get(ident)
        if env is None:
            try:
                env = lmdb.open(
                    db_path, readonly=True, lock=False, readahead=False, meminit=False, subdir=True
                )
            except lmdb.Error as err:
                raise lmdb_failure(err, db_path) from err
            _SHARED_ENVS[ident] = env
            _SHARED_PIDS[ident] = pid
            weakref.finalize(env, _forget_shared, ident, pid)
        return env


def _forget_shared(ident, pid):
    with _SHARED_LOCK:
        if _SHARED_PIDS.get(ident) == pid and ident not in _SHARED_ENVS:
            del _SHARED_PIDS[ident]


class LmdbReader:
    """Read values from an LMDB database, opening it lazily per process.

    The LMDB environment is opened on the first access (read-only, without
    locking, readahead or meminit, as recommended for random reads of a
    database nobody writes to) and opened again whenever the process id has
    changed, so each DataLoader worker gets its own environment. Readers of
    the same database in one process share one environment (py-lmdb refuses
    to open it twice). The reader pickles without its environment, so it can
    be sent to workers whatever the start method.

    Args:
        db_path (str | os.PathLike): The LMDB folder (holding ``data.mdb``).
    """

    def __init__(self, db_path):
        self.db_path = os.fspath(db_path)
        self._env = None
        self._pid = None
        self._keys = None

    # -- environment -----------------------------------------------------
    def _get_env(self):
        pid = os.getpid()
        if self._env is None or self._pid != pid:
            self._env = None
            self._env = _open_shared_env(self.db_path)
            self._pid = pid
        return self._env

    def close(self):
        """Release this reader's environment.

        The environment is closed once no reader of this process uses it.

        Returns:
            None
        """
        self._env = None
        self._pid = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state['_env'] = None
        state['_pid'] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    # -- access ----------------------------------------------------------
    @staticmethod
    def _encode(key):
        if isinstance(key, bytes):
            return key
        if not isinstance(key, str):
            raise TypeError(f'LMDB key must be str or bytes, got {key!r}')
        return key.encode('utf-8')

    def get(self, key):
        """Return the value stored under ``key``.

        Args:
            key (str | bytes): The record's key.

        Returns:
            bytes: The stored value (never None).

        Raises:
            LmdbKeyError: If the key is absent (a ``KeyError``); the message
                names the key and the database path.
            DataError: The database is damaged (names it and the key).
        """
        env = self._get_env()
        try:
            with env.begin(write=False, buffers=False) as txn:
                value = txn.get(self._encode(key))
        except lmdb.Error as err:
            raise lmdb_failure(err, self.db_path, key) from err
        if value is None:
            raise LmdbKeyError(f'key {key!r} not found in LMDB {self.db_path}')
        return value

    def __contains__(self, key):
        try:
            encoded = self._encode(key)
        except TypeError:
            return False
        env = self._get_env()
        try:
            with env.begin(write=False) as txn:
                return txn.get(encoded) is not None
        except lmdb.Error as err:
            raise lmdb_failure(err, self.db_path, key) from err

    def keys(self):
        """List the database's keys.

        The keys come from ``meta_info.txt`` when it exists (in its order,
        without opening the database), otherwise from a cursor scan (in
        LMDB's byte order).

        Returns:
            list[str]: The keys.
        """
        if self._keys is None:
            meta = osp.join(self.db_path, META_INFO_NAME)
            if osp.isfile(meta):
                self._keys = [key for key, _, _ in read_meta_info(meta)]
            else:
                self._keys = self.scan_keys()
        return list(self._keys)

    def scan_keys(self):
        """List the keys actually stored, by a cursor scan of the database.

        Returns:
            list[str]: The keys in LMDB's byte order (decoded as UTF-8).

        Raises:
            DataError: A key is not valid UTF-8, or the database is damaged
                (names the database).
        """
        env = self._get_env()
        keys = []
        try:
            with env.begin(write=False) as txn:
                for raw in txn.cursor().iternext(keys=True, values=False):
                    keys.append(bytes(raw))
        except lmdb.Error as err:
            raise lmdb_failure(err, self.db_path) from err
        decoded = []
        for raw in keys:
            try:
                decoded.append(raw.decode('utf-8'))
            except UnicodeDecodeError:
                raise DataError(
                    f'LMDB {self.db_path} holds a key that is not UTF-8: {raw!r}; {REBUILD_HINT}'
                ) from None
        return decoded

    def __len__(self):
        return len(self.keys())

    def __repr__(self):
        return f'{type(self).__name__}({self.db_path!r})'
