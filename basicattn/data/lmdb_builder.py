"""Build and verify LMDB image databases (BasicSR's layout).

:func:`build_lmdb_from_folder` turns a folder of images (any depth) into an
LMDB whose keys are the images' relative paths without extension and whose
values are PNG bytes of the RGB image, with a ``meta_info.txt`` beside
``data.mdb``. The build never damages what is already there: it writes into
a temporary sibling folder and only swaps it into place once every image has
been read and stored. :func:`verify_lmdb` decodes every record and checks it
against ``meta_info.txt``.
"""

import math
import multiprocessing
import os
import os.path as osp
import shutil
import time

import lmdb

from basicattn.errors import DataError
from basicattn.utils.img_util import imencode_png, imfrombytes
from basicattn.utils.output_guard import overlap
from basicattn.utils.path_util import not_found

from . import lmdb_swap
from .lmdb_io import (
    IMG_SUFFIXES,
    META_INFO_NAME,
    REBUILD_HINT,
    LmdbReader,
    check_unique_keys,
    lmdb_failure,
    read_meta_info,
    scan_images,
)
from .lmdb_swap import mark_complete, recover_interrupted_swap, swap_into_place, write_owner

__all__ = ['LmdbBuildError', 'LmdbVerifyError', 'build_lmdb_from_folder', 'verify_lmdb']

# How many bad paths / keys an error message spells out before summarising.
_MAX_LISTED = 100
# ... and how many further bad keys a verification error lists.
_MAX_LISTED_VERIFY = 8
# Buffered records are written in one transaction once they reach this size.
_BATCH_BYTES = 64 * 1024 * 1024
_BATCH_ITEMS = 1000
# Default starting map size; it grows as needed while writing.
_DEFAULT_MAP_SIZE = 256 * 1024 * 1024
# LMDB's default (and BasicSR's) largest key, in bytes.
_MAX_KEY_BYTES = 511
# Spare pages kept free beyond the estimate (branch pages, meta, free list).
_MARGIN_PAGES = 64


class LmdbBuildError(DataError):
    """Some input images could not be read; nothing was written.

    Attributes:
        bad_paths (list[tuple[str, str]]): ``(path, reason)`` of every image
            that failed.
    """

    def __init__(self, message, bad_paths=()):
        super().__init__(message)
        self.bad_paths = list(bad_paths)


class LmdbVerifyError(DataError):
    """An LMDB database does not match its ``meta_info.txt``.

    Attributes:
        bad_keys (list[tuple[str, str]]): ``(key, reason)`` of every
            record at fault.
    """

    def __init__(self, message, bad_keys=()):
        super().__init__(message)
        self.bad_keys = list(bad_keys)


def _list_problems(items, limit=_MAX_LISTED):
    lines = [f'  {name}: {reason}' for name, reason in items[:limit]]
    if len(items) > limit:
        lines.append(f'  ... and {len(items) - limit} more')
    return '\n'.join(lines)


def _progress_bar(total, desc, enabled):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit='img', disable=not enabled, dynamic_ncols=True)


def _worker_init():
    # Each pool process decodes one image at a time; keep OpenCV from
    # starting a thread pool per process on top of that.
    try:
        import cv2

        cv2.setNumThreads(1)
    except Exception:  # pragma: no cover - cv2 is a dependency
        pass


def _pool_context():
    """A multiprocessing context whose workers do not inherit our threads.

    Forking a process that has used OpenCV's (or another library's) thread
    pool can leave the child blocked forever on a lock held by a thread that
    does not exist in it. ``forkserver`` forks workers from a clean
    single-threaded server instead (``spawn`` where it is unavailable).
    """
    methods = multiprocessing.get_all_start_methods()
    if 'forkserver' in methods:
        ctx = multiprocessing.get_context('forkserver')
        ctx.set_forkserver_preload([__name__])
        return ctx
    return multiprocessing.get_context('spawn')


def _load_and_encode(task):
    """Read one image file, decode it to RGB and encode it as PNG.

    Args:
        task (tuple[str, int]): ``(path, compress_level)``.

    Returns:
        tuple: ``(png_bytes, (h, w, c), None)`` on success or
        ``(None, None, reason)`` when the file cannot be read or decoded.
    """
    path, compress_level = task
    try:
        with open(path, 'rb') as f:
            buf = f.read()
        img = imfrombytes(buf, path)
        if img.ndim == 2:
            img = img[:, :, None]
        h, w, c = img.shape
        return imencode_png(img, compress_level=compress_level), (h, w, c), None
    except Exception as err:  # noqa: BLE001 - reported with the path
        return None, None, f'{type(err).__name__}: {err}'


def _entry_bytes(key, value, page_size):
    """Estimate the map space one record takes (page-rounded, generous)."""
    # A value larger than a page lives in its own overflow pages; the leaf
    # node holding the key and a pointer to it costs a share of a leaf page.
    node = len(key) + 64
    if len(value) + node > page_size // 2:
        pages = math.ceil((len(value) + 16) / page_size)
        return pages * page_size + 2 * node
    return 2 * (len(value) + node)


class _GrowingWriter:
    """Write record batches into an LMDB env, growing its map on demand."""

    def __init__(self, path, map_size, name=None):
        self.name = name or path  # the database being built, for messages
        try:
            self.env = lmdb.open(
                path,
                map_size=max(int(map_size), 4096),
                subdir=True,
                readahead=False,
                meminit=False,
                max_dbs=0,
            )
        except lmdb.Error as err:
            raise lmdb_failure(err, self.name, writing=True) from err
        self.page_size = self.env.stat()['psize']
        self.map_size = self.env.info()['map_size']
        self.num_grows = 0
        self.num_retries = 0

    def _used_bytes(self):
        return (self.env.info()['last_pgno'] + 1) * self.page_size

    def _grow_to(self, needed):
        new_size = max(int(needed), 2 * self.map_size)
        # Round to whole pages; LMDB wants a multiple of the page size.
        new_size = math.ceil(new_size / self.page_size) * self.page_size
        # No transaction is open here: every batch commits or aborts before.
        self.env.set_mapsize(new_size)
        self.map_size = self.env.info()['map_size']
        self.num_grows += 1

    def write(self, batch, estimate=None):
        """Store ``batch`` (list of (key bytes, value bytes)) in one txn."""
        if not batch:
            return
        estimate = estimate if estimate is not None else _entry_bytes
        batch_bytes = sum(estimate(k, v, self.page_size) for k, v in batch)
        # Copy-on-write: pages touched by the txn are copied, and pages freed
        # in a txn are not reused before it commits; keep plenty of margin.
        needed = self._used_bytes() + 2 * batch_bytes + _MARGIN_PAGES * self.page_size
        if needed > self.map_size:
            self._grow_to(needed + needed // 2)
        while True:
            try:
                with self.env.begin(write=True) as txn:
                    for key, value in batch:
                        txn.put(key, value)
                return
            except lmdb.MapFullError:
                # Last resort: the txn was aborted by the with-block; grow
                # the map and write the whole batch again.
                self.num_retries += 1
                self._grow_to(2 * self.map_size)
            except lmdb.Error as err:
                raise lmdb_failure(err, self.name, writing=True) from err

    def close(self):
        if self.env is not None:
            try:
                self.env.sync(True)
            except lmdb.Error as err:
                raise lmdb_failure(err, self.name, writing=True) from err
            self.env.close()
            self.env = None


def _check_keys(items):
    """Refuse keys LMDB cannot store or meta_info.txt cannot list."""
    for key, path in items:
        if len(key.encode('utf-8')) > _MAX_KEY_BYTES:
            raise DataError(
                f'key {key!r} of {path} is longer than LMDB allows '
                f'({_MAX_KEY_BYTES} bytes); shorten the folder or file names'
            )
        if any(ch in key for ch in '\r\n'):
            raise DataError(
                f'key {key!r} of {path} holds a line break, which meta_info.txt cannot list'
            )


def _remove_tree(path):
    if osp.lexists(path):
        if osp.isdir(path) and not osp.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)


def _write_meta_info(folder, lines):
    """Write and sync ``meta_info.txt``; an OSError names the file."""
    path = osp.join(folder, META_INFO_NAME)
    try:
        with open(path, 'w', encoding='utf-8') as f:
            f.writelines(lines)
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        if err.filename is None:
            err.filename = path
        raise


def _check_destination(src, dst, overwrite):

    relation = overlap(dst, src)
    if relation is not None:  # the one output-over-input rule of every tool
        raise DataError(
            f'destination {dst} {relation} the source folder {src}; an output never '
            'replaces an input (not even with --overwrite): choose another path for the LMDB'
        )
    if not osp.lexists(dst):
        parent = osp.dirname(osp.abspath(dst))
        if not osp.isdir(parent):
            raise FileNotFoundError(f'parent folder of the destination does not exist: {parent}')
        return
    if not overwrite:
        raise FileExistsError(
            f'destination {dst} already exists; pass --overwrite (overwrite=True) to replace it'
        )
    if not osp.isdir(dst) or osp.islink(dst):
        raise FileExistsError(
            f'destination {dst} exists and is not a folder; refusing to '
            'replace it even with --overwrite'
        )
    if os.listdir(dst) and not osp.isfile(osp.join(dst, 'data.mdb')):
        raise FileExistsError(
            f'destination {dst} exists and is not an LMDB database (no '
            'data.mdb); refusing to replace it even with --overwrite'
        )


def build_lmdb_from_folder(
    src,
    dst,
    *,
    overwrite=False,
    compress_level=1,
    num_workers=None,
    suffixes=IMG_SUFFIXES,
    progress=True,
    _initial_map_size=None,
    _estimate=None,
):
    """Pack every image under ``src`` into an LMDB database at ``dst``.

    Images are found recursively (sorted, so the result is deterministic);
    the key of each is its path relative to ``src`` without the extension,
    with ``/`` separators (``00001/0001/im4``, ``a.b/c.d``). Each value is
    the PNG encoding of the RGB image, so :func:`imfrombytes` gives the RGB
    pixels back whatever the source format was. ``meta_info.txt`` is written
    beside ``data.mdb`` with one ``key.png (h,w,c) compress_level`` line per
    image. Reading and encoding run in a process pool.

    The database is built in ``dst + '.tmp-<pid>'`` and moved to ``dst`` only
    when everything succeeded: an existing database is never damaged, and on
    any error (unreadable images, interruption) the temporary folder is
    removed and ``dst`` is left as it was. An existing ``dst`` is replaced by
    an atomic exchange where the OS allows it (see
    :mod:`basicattn.data.lmdb_swap`); a run killed at any point leaves a
    database at ``dst`` or in a leftover that the next run (or a dataset
    opening ``dst``) puts back, reporting what it did. The LMDB map grows as
    records are written, so the build cannot fail with ``MDB_MAP_FULL``.

    Args:
        src (str | os.PathLike): Folder of images.
        dst (str | os.PathLike): LMDB folder to create (``*.lmdb`` by
            convention).
        overwrite (bool): Replace an existing database at ``dst``. Even then
            a path that is not an LMDB folder is refused. Defaults to False.
        compress_level (int): PNG compression level 0-9. Defaults to 1.
        num_workers (int, optional): Processes used to read and encode;
            None means ``min(8, cpu_count)``; 0 or 1 work in this process.
        suffixes (Sequence[str]): Image file suffixes (case-insensitive).
        progress (bool): Show a tqdm progress bar. Defaults to True.

    Returns:
        dict: ``path`` (absolute dst), ``num_images``, ``num_bytes`` (sum of
        the stored PNG sizes), ``map_size``, ``compress_level`` and
        ``seconds``.

    Raises:
        FileNotFoundError: ``src`` (or the parent of ``dst``) is missing.
        FileExistsError: ``dst`` exists and ``overwrite`` is False, or it is
            not an LMDB folder.
        DataError: No image found, two files share a key, or ``dst`` is the
            source folder or holds it.
        LmdbBuildError: Some images could not be read; lists them all.
        OSError: The disk is full or not writable (names the path).
    """
    start = time.time()
    src = os.fspath(src)
    dst = os.fspath(dst).rstrip('/\\') or os.fspath(dst)
    if (
        isinstance(compress_level, bool)
        or not isinstance(compress_level, int)
        or not 0 <= compress_level <= 9
    ):
        raise ValueError(f'compress_level must be an integer in [0, 9], got {compress_level!r}')
    if not osp.isdir(src):
        raise FileNotFoundError(not_found('source folder', src))
    recover_interrupted_swap(dst)
    _check_destination(src, dst, overwrite)

    items = scan_images(src, suffixes)
    check_unique_keys(items)
    _check_keys(items)
    if not items:
        raise DataError(f'no images with suffixes {", ".join(suffixes)} found under {src}')

    if num_workers is None:
        num_workers = min(8, os.cpu_count() or 1)
    num_workers = max(0, min(int(num_workers), len(items)))

    tmp = f'{dst}.tmp-{os.getpid()}'
    _remove_tree(tmp)  # a leftover of a dead process that had our pid
    writer = None
    pool = None
    try:
        os.makedirs(tmp)
        write_owner(tmp)
        writer = _GrowingWriter(
            tmp, _initial_map_size if _initial_map_size else _DEFAULT_MAP_SIZE, name=dst
        )
        tasks = [(path, compress_level) for _, path in items]
        if num_workers > 1:
            pool = _pool_context().Pool(num_workers, initializer=_worker_init)
            chunksize = max(1, min(16, len(tasks) // (4 * num_workers)))
            results = pool.imap(_load_and_encode, tasks, chunksize)
        else:
            results = map(_load_and_encode, tasks)

        meta_lines = []
        bad = []
        batch = []
        batch_bytes = 0
        total_bytes = 0
        with _progress_bar(len(tasks), f'LMDB {osp.basename(dst)}', progress) as bar:
            for (key, path), (value, shape, reason) in zip(items, results):
                bar.update(1)
                if reason is not None:
                    bad.append((path, reason))
                    continue
                if bad:
                    continue  # keep reading only to report every bad file
                h, w, c = shape
                meta_lines.append(f'{key}.png ({h},{w},{c}) {compress_level}\n')
                batch.append((key.encode('utf-8'), value))
                batch_bytes += len(value)
                total_bytes += len(value)
                if batch_bytes >= _BATCH_BYTES or len(batch) >= _BATCH_ITEMS:
                    writer.write(batch, _estimate)
                    batch, batch_bytes = [], 0
        if pool is not None:
            pool.close()
            pool.join()
            pool = None
        if bad:
            first, reason = bad[0]
            rest = f'; the other {len(bad) - 1}:\n{_list_problems(bad[1:])}' if len(bad) > 1 else ''
            raise LmdbBuildError(
                f'{len(bad)} of {len(items)} images under {src} could not be '
                f'read ({first}: {reason}); fix or remove them: no database '
                f'was written and {dst} was left untouched{rest}',
                bad,
            )
        writer.write(batch, _estimate)
        map_size = writer.map_size
        writer.close()
        writer = None
        _write_meta_info(tmp, meta_lines)
        lmdb_swap._step('built')
        mark_complete(tmp)  # last: from here on the new database is whole
        lmdb_swap._step('marked')
        swap_into_place(tmp, dst)
    except BaseException:
        if pool is not None:
            pool.terminate()
            pool.join()
        if writer is not None:
            try:
                writer.env.close()
            except Exception:  # noqa: BLE001 - cleaning up after an error
                pass
        _remove_tree(tmp)
        raise
    return dict(
        path=osp.abspath(dst),
        num_images=len(items),
        num_bytes=total_bytes,
        map_size=map_size,
        compress_level=compress_level,
        seconds=time.time() - start,
    )


def verify_lmdb(dst, progress=True):
    """Decode every record of an LMDB and check it against ``meta_info.txt``.

    Checks that every key listed in ``meta_info.txt`` exists, decodes to an
    image of the listed ``(h, w, c)``, and that the database holds no key the
    file does not list.

    Args:
        dst (str | os.PathLike): The LMDB folder.
        progress (bool): Show a tqdm progress bar. Defaults to True.

    Returns:
        dict: ``path`` (absolute), ``num_images`` (records checked) and
        ``num_bytes`` (sum of the stored values' sizes).

    Raises:
        FileNotFoundError: The folder or its ``data.mdb`` is missing.
        DataError: ``meta_info.txt`` is missing or malformed, or LMDB reports
            the database damaged (names the path and the key).
        LmdbVerifyError: Some records are missing, undecodable, of the wrong
            shape or not listed; the message lists their keys.
    """
    dst = os.fspath(dst)
    if not osp.isfile(osp.join(dst, 'data.mdb')):
        raise FileNotFoundError(f'LMDB database not found: {dst} has no data.mdb')
    if not osp.isfile(osp.join(dst, META_INFO_NAME)):
        raise DataError(
            f'LMDB {dst} has no {META_INFO_NAME}, so its records cannot be checked; {REBUILD_HINT}'
        )
    meta = read_meta_info(osp.join(dst, META_INFO_NAME))
    bad = []
    num_bytes = 0
    reader = LmdbReader(dst)
    try:
        with _progress_bar(len(meta), f'verify {osp.basename(dst)}', progress) as bar:
            for key, shape, _ in meta:
                bar.update(1)
                try:
                    value = reader.get(key)
                except KeyError:
                    bad.append((key, 'listed in meta_info.txt but missing'))
                    continue
                num_bytes += len(value)
                try:
                    img = imfrombytes(value, f'{dst}:{key}')
                except Exception as err:  # noqa: BLE001 - reported with key
                    bad.append((key, f'cannot decode: {err}'))
                    continue
                got = img.shape if img.ndim == 3 else img.shape + (1,)
                if tuple(got) != tuple(shape):
                    bad.append((key, f'shape {tuple(got)} but meta_info.txt says {tuple(shape)}'))
        listed = {key for key, _, _ in meta}
        for key in reader.scan_keys():
            if key not in listed:
                bad.append((key, 'in the database but not in meta_info.txt'))
    finally:
        reader.close()
    if bad:
        key, reason = bad[0]
        more = (
            f'; {len(bad) - 1} more bad key(s):\n{_list_problems(bad[1:], _MAX_LISTED_VERIFY)}'
            if len(bad) > 1
            else ''
        )
        raise LmdbVerifyError(
            f'LMDB {dst} failed verification, key {key!r}: {reason}; {REBUILD_HINT}{more}', bad
        )
    return dict(path=osp.abspath(dst), num_images=len(meta), num_bytes=num_bytes)
