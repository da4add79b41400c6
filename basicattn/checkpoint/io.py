"""Checkpoints that are written atomically and read as untrusted data.

* Writing: mmengine writes checkpoints (and the ``last_checkpoint`` pointer)
  through its ``local`` file backend with a plain ``open(path, 'wb')``; a
  crash in the middle leaves a torn file. :func:`install` re-registers the
  ``local`` backend with one that writes a temporary file in the same folder
  and renames it into place (atomic on POSIX).
* Reading: every checkpoint is loaded with ``torch.load(weights_only=True)``.
  mmengine's resume state holds a few non-tensor objects (its
  ``HistoryBuffer`` of logged scalars, numpy arrays and scalars); they are
  allow-listed by name for the duration of the load only, instead of turning
  ``weights_only`` off. The ``HistoryBuffer`` objects themselves pickle
  their statistics methods through ``getattr``, which no allow-list should
  admit, so :func:`encode_plain` stores them as tagged tensors and
  :func:`decode_plain` rebuilds them (see ``PlainCheckpointHook``).
* One loader: :func:`safe_load` is the only place in basicattn (package,
  tools, benchmarks) that reads a checkpoint. It refuses URLs (``http://``,
  mmengine's ``pavi://``, ``open-mmlab://``, ``s3://`` ..., any
  ``scheme://``): a downloaded file is untrusted and mmengine's URL loaders
  unpickle with ``weights_only=False``. :func:`install` also re-registers
  every scheme mmengine's ``CheckpointLoader`` knows with a refusing loader,
  so no mmengine code path reaches ``torch.hub`` or another unsafe loader.
  Failures (truncated file, not a checkpoint, pickled code) become one
  :class:`~basicattn.errors.CheckpointError` line naming the file. A
  ``.safetensors`` file (recognised by its extension or its header) is read
  by :func:`~basicattn.checkpoint.safetensors_io.load_safetensors`, so every
  place that takes a checkpoint takes one.
* Removing: once :func:`confine_removals` named the run's work dir, the
  file backend refuses (and logs) any ``remove``/``rmtree`` outside it.
"""

import logging
import os
import os.path as osp
import pickle
import re
import warnings
from typing import Any, BinaryIO, Optional, Union

import numpy as np
import torch
from mmengine.fileio.backends import LocalBackend, register_backend
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from basicattn.checkpoint.safetensors_io import (
    is_safetensors,
    load_safetensors,
    looks_like_safetensors,
)
from basicattn.errors import CheckpointError
from basicattn.utils.atomic_file import atomic_write_bytes
from basicattn.utils.path_util import broken_link_target, shown_path


def _numpy_globals():
    core = getattr(np, '_core', None) or np.core
    names = [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype]
    # numpy >= 1.25 pickles dtypes by their class (e.g. numpy.dtypes.Float64DType)
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        names += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    return names


PathLike = Union[str, os.PathLike]

# numpy arrays/scalars written by other mmengine-based tools (read-only data types)
SAFE_GLOBALS = _numpy_globals()


_BUFFER_TAG = '__basicattn_history_buffer__'
_ARRAY_TAG = '__basicattn_ndarray__'


def encode_plain(obj: Any) -> Any:
    """Replace HistoryBuffers, numpy arrays and numpy scalars by plain data.

    Args:
        obj: A nested structure of dicts, lists and tuples (e.g. mmengine's
            message-hub state).

    Returns:
        The same structure, loadable with ``weights_only=True`` and no allow-list.
    """
    if isinstance(obj, HistoryBuffer):
        logs, counts = obj.data
        return {
            _BUFFER_TAG: True,
            'log': torch.from_numpy(np.asarray(logs, np.float64)),
            'count': torch.from_numpy(np.asarray(counts, np.float64)),
            'max_length': int(obj.max_length),
        }
    if isinstance(obj, np.ndarray):
        return {_ARRAY_TAG: True, 'data': torch.from_numpy(np.ascontiguousarray(obj))}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: encode_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(encode_plain(v) for v in obj)
    return obj


def decode_plain(obj: Any) -> Any:
    """Inverse of :func:`encode_plain`: rebuild the HistoryBuffers and numpy arrays."""
    if isinstance(obj, dict):
        if obj.get(_BUFFER_TAG):
            return HistoryBuffer(obj['log'].numpy(), obj['count'].numpy(), obj['max_length'])
        if obj.get(_ARRAY_TAG):
            return obj['data'].numpy()
        return {k: decode_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(decode_plain(v) for v in obj)
    return obj


# the removal root of this process (see confine_removals); None: no limit
_REMOVAL_ROOT = None


def confine_removals(work_dir: Optional[PathLike]) -> None:
    """Let the file backend remove files only inside ``work_dir`` (None: anywhere).

    mmengine's CheckpointHook removes the previous best checkpoint and old
    ``iter_*`` files by the paths it remembers; after a folder was copied those
    can point into another run's folder. The run's own folder is the limit.
    """
    global _REMOVAL_ROOT
    _REMOVAL_ROOT = None if work_dir is None else osp.realpath(str(work_dir))


def is_inside(path: PathLike, folder: PathLike) -> bool:
    """True when ``path`` is ``folder`` or lies under it (symlinks resolved)."""
    path, folder = osp.realpath(str(path)), osp.realpath(str(folder))
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _removal_refused(path):
    if _REMOVAL_ROOT is None or is_inside(path, _REMOVAL_ROOT):
        return False
    from mmengine.logging import print_log

    print_log(
        f'basicattn: refused to remove {path}: it is outside the work dir '
        f'{_REMOVAL_ROOT} of this run (this run did not write it)',
        logger='current',
        level=logging.WARNING,
    )
    return True


class AtomicLocalBackend(LocalBackend):
    """mmengine's local backend: writes never leave a torn file, removals stay
    inside the run's work dir (:func:`confine_removals`)."""

    def put(self, obj: bytes, filepath: PathLike) -> None:
        """Write ``obj`` to ``filepath`` atomically."""
        atomic_write_bytes(obj, str(filepath))

    def put_text(self, obj: str, filepath: PathLike, encoding: str = 'utf-8') -> None:
        """Write the text ``obj`` to ``filepath`` atomically."""
        atomic_write_bytes(obj.encode(encoding), str(filepath))

    def remove(self, filepath: PathLike) -> None:
        """Remove a file, unless it lies outside the run's work dir."""
        if not _removal_refused(filepath):
            super().remove(filepath)

    def rmtree(self, dir_path: PathLike) -> None:
        """Remove a folder tree, unless it lies outside the run's work dir."""
        if not _removal_refused(dir_path):
            super().rmtree(dir_path)


# ``scheme://`` before any slash (also mmengine's ``open-mmlab:s3://``); as a
# CheckpointLoader prefix it sorts before the local '' entry
ANY_SCHEME = r'^[^/\\\s]*://'
_URL = re.compile(ANY_SCHEME)


def is_url(path: Any) -> bool:
    """True when ``path`` is a URL (``http://``, ``s3://``, ``pavi://`` ...), not a file."""
    return isinstance(path, str) and _URL.match(path.strip()) is not None


def refuse_url(path: str, option: str = 'checkpoint') -> None:
    """Raise :class:`CheckpointError` when ``path`` is a URL.

    Args:
        path (str): What the user gave.
        option (str): The option or argument it came from, for the message.
    """
    if is_url(path):
        raise CheckpointError(
            f'{option}: {path} is a URL; basicattn reads checkpoints from local files only '
            '(a downloaded checkpoint is untrusted input). Download the file, check it '
            "(e.g. its sha256 against the publisher's) and give its local path."
        )


_GLOBAL = re.compile(r'GLOBAL ([\w.]+)')


def describe_load_failure(err: BaseException) -> str:
    """A short reason why ``torch.load(weights_only=True)`` failed."""
    text = str(err)
    found = _GLOBAL.search(text)
    if found:
        return (
            f'it holds a Python object ({found.group(1)}) that weights_only=True refuses '
            '(loading it could run code); ask its publisher for a plain state_dict'
        )
    if 'Weights only load failed' in text or isinstance(err, pickle.UnpicklingError):
        return (
            'weights_only=True refused its content: it is not a plain torch.save file of '
            'tensors (pickled Python code, or not a checkpoint at all)'
        )
    if (
        isinstance(err, (EOFError, OSError))
        or 'EOF' in text
        or 'central directory' in text
        or 'corrupted' in text
    ):
        return 'the file is empty, truncated or corrupted (copy it again)'
    if isinstance(err, (KeyError, ValueError)) or 'magic number' in text:
        return 'it is not a PyTorch checkpoint (torch.save file)'
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    return f'{type(err).__name__}: {first.split(". ")[0][:200]}'


def safe_load(
    path: Union[PathLike, BinaryIO], map_location: Any = 'cpu', option: Optional[str] = None
) -> Any:
    """The one checkpoint loader: ``torch.load(weights_only=True)``, local files only.

    A safetensors file (``.safetensors``, or a file with its header) is read
    as ``{'state_dict', 'meta'}`` when basicattn wrote it, as a bare state
    dict otherwise (:func:`~basicattn.checkpoint.safetensors_io.load_safetensors`).
    numpy arrays and scalars (written by other mmengine-based tools) are
    allowed for the duration of the load; nothing else beyond tensors and
    plain data.

    Args:
        path (str | os.PathLike | file-like): Checkpoint.
        map_location: As for :func:`torch.load`.
        option (str, optional): The option or argument the path came from
            (e.g. ``'path.resume_state'``), named in error messages.

    Returns:
        object: The loaded checkpoint.

    Raises:
        CheckpointError: ``path`` is a URL, or the file cannot be loaded
            (truncated, not a checkpoint, pickled code), naming the path.
        FileNotFoundError: ``path`` does not exist.
    """
    if isinstance(path, (str, os.PathLike)):
        where = f'{option or "checkpoint"} {shown_path(path)}'
        refuse_url(str(path), option or 'checkpoint')
        if not osp.isfile(path):
            target = broken_link_target(path)
            raise FileNotFoundError(
                f'{where} is a broken symbolic link: it points to {target}, which does not exist'
                if target is not None
                else f'{where} does not exist' + (' (or is a folder)' if osp.isdir(path) else '')
            )
        if is_safetensors(path):
            return load_safetensors(path, map_location, where)
    else:
        where = f'{option or "checkpoint"} {path}'
        if _peek_safetensors(path):
            return load_safetensors(path, map_location, where)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS), warnings.catch_warnings():
            warnings.filterwarnings('ignore', message='Detected pickle protocol')
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001  (torch raises many types for a bad file)
        raise CheckpointError(f'cannot load {where}: {describe_load_failure(err)}') from err


def _peek_safetensors(stream: BinaryIO) -> bool:
    """True when a seekable stream starts with a safetensors header (position kept)."""
    try:
        start = stream.tell()
        head = stream.read(9)
        stream.seek(start)
    except (AttributeError, OSError, ValueError):
        return False
    return isinstance(head, bytes) and looks_like_safetensors(head)


def check_training_state(checkpoint: Any, path: str, option: str = 'path.resume_state') -> None:
    """Raise unless ``checkpoint`` can resume training (not weights alone).

    Args:
        checkpoint (object): A loaded checkpoint.
        path (str): Its file, for the message.
        option (str): Where it was given.
    """
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    complete = (
        isinstance(meta, dict)
        and 'iter' in meta
        and 'epoch' in meta
        and 'message_hub' in checkpoint
        and 'state_dict' in checkpoint
    )
    if not complete:
        raise CheckpointError(
            f'{option}: {path} holds network weights only (no iteration, optimizer or '
            'logging state), so training cannot resume from it; give it as '
            'path.pretrain_network_g to start a new run from these weights'
        )


def load_from_local_weights_only(filename: str, map_location: Any) -> Any:
    """mmengine's local scheme: :func:`safe_load` (mmengine logs the name after ``load_from_``)."""
    return safe_load(filename, map_location=map_location)


def load_from_url_refused(filename: str, map_location: Any = None) -> Any:
    """Every other mmengine scheme: refused (the file is never fetched)."""
    refuse_url(str(filename), 'checkpoint')
    raise CheckpointError(f'checkpoint {filename}: refused (only local files are read)')


def install() -> None:
    """Route mmengine's checkpoint reads and local file writes through here.

    Writes go through :class:`AtomicLocalBackend`; the local scheme loads with
    :func:`safe_load`; every other scheme mmengine registered (http, pavi,
    s3, modelzoo, open-mmlab, mmcls ...) and any ``scheme://`` are refused.
    Called again after another library registered a scheme, it refuses that
    one too.
    """
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    schemes = [p for p in CheckpointLoader._schemes if p != ''] + [ANY_SCHEME]
    CheckpointLoader.register_scheme(prefixes=schemes, loader=load_from_url_refused, force=True)
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_weights_only, force=True)
