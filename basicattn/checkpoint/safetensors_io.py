"""Weights-only files in the safetensors format, with basicattn's metadata.

A safetensors file is an 8-byte little-endian header length, a JSON header
(tensor names, dtypes, shapes, offsets and a ``__metadata__`` map of
``str -> str``) and the raw tensor bytes; reading it runs no code, so it is
the format to share weights in. basicattn stores the ``meta`` of a
weights-only checkpoint (``arch``, ``scale``, ``converted_from`` ...) as one
JSON string under :data:`META_KEY`, so that reading a ``.safetensors`` file
gives the same ``{'state_dict': ..., 'meta': ...}`` as the ``.pth`` file
:func:`~basicattn.checkpoint.state.save_weights_checkpoint` writes.
A safetensors file from elsewhere (no :data:`META_KEY`) reads as a bare
state dict.

:func:`~basicattn.checkpoint.io.safe_load` calls :func:`load_safetensors`
for every file that :func:`is_safetensors` recognises (by its ``.safetensors``
extension or by its header), so every option and argument that takes a
checkpoint takes one.
"""

import io
import json
import os
import os.path as osp
import struct
from typing import Any, BinaryIO, Dict, Mapping, Optional, Union

import torch

from basicattn.errors import CheckpointError
from basicattn.utils.atomic_file import atomic_write_bytes

#: Extension of safetensors files.
SUFFIX = '.safetensors'

#: Key of the ``__metadata__`` map holding basicattn's ``meta`` as JSON.
META_KEY = 'basicattn.meta'

# the header length of any real file is far below this (it is JSON text)
_MAX_HEADER = 100 * 1024 * 1024


def _import():
    try:
        import safetensors.torch as st
    except ImportError as err:  # a required dependency; only a broken install lacks it
        raise CheckpointError(
            'reading or writing .safetensors files needs the safetensors package: '
            'pip install safetensors'
        ) from err
    return st


def looks_like_safetensors(head: bytes, size: Optional[int] = None) -> bool:
    """True when ``head`` (the first bytes of a file) starts a safetensors file.

    Args:
        head (bytes): At least the first 9 bytes.
        size (int, optional): The file's size, to check the header length.
    """
    if len(head) < 9:
        return False
    (length,) = struct.unpack('<Q', head[:8])
    fits = length <= _MAX_HEADER and (size is None or 8 + length <= size)
    return length >= 2 and fits and head[8:9] == b'{'


def is_safetensors(path: Union[str, os.PathLike]) -> bool:
    """True for a ``.safetensors`` file name, or a file whose header is one."""
    path = os.fspath(path)
    if path.lower().endswith(SUFFIX):
        return True
    try:
        with open(path, 'rb') as f:
            return looks_like_safetensors(f.read(9), osp.getsize(path))
    except OSError:
        return False


def encode_safetensors(state_dict: Mapping[str, torch.Tensor], meta: Optional[dict]) -> bytes:
    """The bytes of a safetensors file holding ``state_dict`` and ``meta``.

    Args:
        state_dict (Mapping[str, Tensor]): Weights (copied to CPU, contiguous,
            unshared: safetensors stores every tensor on its own).
        meta (dict, optional): JSON-serialisable metadata (``arch`` ...).

    Raises:
        CheckpointError: ``meta`` holds something JSON cannot store.
    """
    st = _import()
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}
    metadata = {'format': 'pt'}
    if meta:
        try:
            metadata[META_KEY] = json.dumps(meta, sort_keys=True, allow_nan=True)
        except TypeError as err:
            raise CheckpointError(f'safetensors metadata: {err} (meta must be plain data)') from err
    return st.save(tensors, metadata=metadata)


def save_safetensors(
    path: str,
    state_dict: Mapping[str, torch.Tensor],
    meta: Optional[dict] = None,
    overwrite: bool = False,
) -> None:
    """Write ``state_dict`` and ``meta`` to a safetensors file, atomically.

    Read back by :func:`~basicattn.checkpoint.io.safe_load` it is
    ``{'state_dict': state_dict, 'meta': meta}`` (``meta`` through JSON:
    tuples come back as lists).

    Args:
        path (str): Output file (``.safetensors``).
        state_dict (Mapping[str, Tensor]): Weights.
        meta (dict, optional): Metadata, e.g. ``{'arch': {...}, 'scale': 2}``.
        overwrite (bool): Replace an existing file. Default: False.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    if osp.exists(path) and not overwrite:
        raise FileExistsError(f'{path} exists; pass overwrite=True (--overwrite) to replace it')
    atomic_write_bytes(encode_safetensors(state_dict, meta), path)


def load_safetensors(
    source: Union[str, os.PathLike, BinaryIO], map_location: Any = 'cpu', where: str = ''
) -> Dict[str, Any]:
    """Read a safetensors file: ``{'state_dict', 'meta'}``, or a bare state dict.

    Args:
        source (str | os.PathLike | file-like): The file.
        map_location: A device (``'cpu'``, ``'cuda:0'``, ``torch.device``);
            anything else (a callable, a dict) loads on the CPU.
        where (str): What the file is, for messages.

    Raises:
        CheckpointError: The file is not a (complete) safetensors file.
    """
    st = _import()
    try:
        if isinstance(source, (str, os.PathLike)):
            with open(source, 'rb') as f:
                data = f.read()
        else:
            data = source.read()
        tensors = st.load(data)
        metadata = _metadata(data)
    except Exception as err:  # noqa: BLE001  (safetensors raises its own error types)
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f'cannot load {where or source}: not a complete safetensors file ({reason}); '
            'copy it again'
        ) from err
    if isinstance(map_location, (str, torch.device)) and str(map_location) != 'cpu':
        tensors = {k: v.to(map_location) for k, v in tensors.items()}
    text = metadata.get(META_KEY)
    if text is None:
        return tensors
    try:
        meta = json.loads(text)
    except RecursionError:
        raise CheckpointError(
            f'cannot load {where or source}: its {META_KEY!r} metadata is nested too deep'
        ) from None
    except json.JSONDecodeError as err:
        raise CheckpointError(
            f'cannot load {where or source}: its {META_KEY!r} metadata is not JSON ({err})'
        ) from err
    return {'state_dict': tensors, 'meta': meta if isinstance(meta, dict) else {}}


def _metadata(data: bytes) -> Dict[str, str]:
    """The ``__metadata__`` map of the safetensors bytes ``data``."""
    (length,) = struct.unpack('<Q', data[:8])
    header = json.load(io.BytesIO(data[8 : 8 + length]))
    return dict(header.get('__metadata__') or {})
