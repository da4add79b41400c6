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
"""
import os
import os.path as osp

import numpy as np
import torch
from mmengine.fileio.backends import LocalBackend, register_backend
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from basicattn.utils.atomic_file import atomic_write_bytes  # noqa: F401  (re-exported)


def _numpy_globals():
    core = getattr(np, '_core', None) or np.core
    names = [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype]
    # numpy >= 1.25 pickles dtypes by their class (e.g. numpy.dtypes.Float64DType)
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        names += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    return names


# numpy arrays/scalars written by other mmengine-based tools (read-only data types)
SAFE_GLOBALS = _numpy_globals()


_BUFFER_TAG = '__basicattn_history_buffer__'
_ARRAY_TAG = '__basicattn_ndarray__'


def encode_plain(obj):
    """Replace HistoryBuffers, numpy arrays and numpy scalars by plain data.

    Args:
        obj: A nested structure of dicts, lists and tuples (e.g. mmengine's
            message-hub state).

    Returns:
        The same structure, loadable with ``weights_only=True`` and no allow-list.
    """
    if isinstance(obj, HistoryBuffer):
        logs, counts = obj.data
        return {_BUFFER_TAG: True, 'log': torch.from_numpy(np.asarray(logs, np.float64)),
                'count': torch.from_numpy(np.asarray(counts, np.float64)),
                'max_length': int(obj.max_length)}
    if isinstance(obj, np.ndarray):
        return {_ARRAY_TAG: True, 'data': torch.from_numpy(np.ascontiguousarray(obj))}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: encode_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(encode_plain(v) for v in obj)
    return obj


def decode_plain(obj):
    """Inverse of :func:`encode_plain`."""
    if isinstance(obj, dict):
        if obj.get(_BUFFER_TAG):
            return HistoryBuffer(obj['log'].numpy(), obj['count'].numpy(), obj['max_length'])
        if obj.get(_ARRAY_TAG):
            return obj['data'].numpy()
        return {k: decode_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(decode_plain(v) for v in obj)
    return obj


class AtomicLocalBackend(LocalBackend):
    """mmengine's local backend, with writes that never leave a torn file."""

    def put(self, obj, filepath):
        atomic_write_bytes(obj, str(filepath))

    def put_text(self, obj, filepath, encoding='utf-8'):
        atomic_write_bytes(obj.encode(encoding), str(filepath))


def safe_load(path, map_location='cpu'):
    """``torch.load`` with ``weights_only=True`` and our small allow-list.

    Args:
        path (str | file-like): Checkpoint.
        map_location: As for :func:`torch.load`.

    Returns:
        object: The loaded checkpoint.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        RuntimeError: The file holds objects outside the allow-list (naming it).
    """
    if isinstance(path, (str, os.PathLike)) and not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path} does not exist')
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # unpickling errors come in several types
        raise RuntimeError(f'cannot load checkpoint {path} with weights_only=True: {err}') from err


def _load_local(filename, map_location):
    return safe_load(filename, map_location=map_location)


_INSTALLED = False


def install():
    """Route mmengine's local checkpoint reads and file writes through here."""
    global _INSTALLED
    if _INSTALLED:
        return
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    CheckpointLoader.register_scheme(prefixes='', loader=_load_local, force=True)
    _INSTALLED = True
