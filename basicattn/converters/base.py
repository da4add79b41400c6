"""Shared machinery of the weight converters.

A converter is a function registered in :data:`basicattn.registry.CONVERTERS`
under the name of the foreign format (``'a2n_official'``)::

    @CONVERTERS.register_module(name='a2n_official')
    def convert_a2n_official(state_dict, scale=None):
        ...
        return new_state_dict, dict(type='A2N', upscale=scale, ...)

It takes the foreign state_dict (already loaded with
:func:`load_foreign_checkpoint`) and returns the basicattn state_dict and the
arch config (``type`` + keyword arguments) that the weights belong to. The
first line of its docstring is what ``tools/convert_model.py --list`` shows.

Helpers here: safe loading, a strict regex renamer that refuses unmapped
keys, a check of names and shapes against a built arch, and an atomic
checkpoint writer.
"""

import hashlib
import os.path as osp
import re
from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from basicattn.engine.checkpoint_io import safe_load
from basicattn.errors import UserError
from basicattn.utils.atomic_file import atomic_open

__all__ = [
    'ConversionError',
    'load_foreign_checkpoint',
    'read_foreign_checkpoint',
    'scale_hints',
    'check_scale',
    'sha256_file',
    'rename_state_dict',
    'check_state_dict_against',
    'get_converter',
    'list_converters',
    'save_basicattn_checkpoint',
    'load_basicattn_checkpoint',
    'build_from_checkpoint',
]

#: Keys under which common training frameworks nest the state_dict.
NESTED_KEYS = ('state_dict', 'params_ema', 'params', 'model')


class ConversionError(UserError, ValueError):
    """A foreign checkpoint does not match what the converter expects."""


def _is_state_dict(obj) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def _format_keys(keys: Iterable[str], limit: int = 20) -> str:
    keys = sorted(keys)
    shown = ', '.join(keys[:limit])
    if len(keys) > limit:
        shown += f', ... ({len(keys) - limit} more)'
    return shown


def read_foreign_checkpoint(path: str, key: Optional[str] = None):
    """Load a foreign checkpoint safely; return its state_dict and the whole file.

    Like :func:`load_foreign_checkpoint`, and also returns the loaded object
    (for metadata such as a recorded scale, see :func:`scale_hints`).

    Returns:
        tuple[dict[str, Tensor], object]: The state_dict and the raw file.
    """
    raw = safe_load(path, option='input')
    obj = raw
    if key is not None:
        if not isinstance(obj, Mapping) or key not in obj:
            raise ConversionError(f'{path}: no key {key!r} in the checkpoint')
        obj = obj[key]
    elif not _is_state_dict(obj) and isinstance(obj, Mapping):
        for candidate in NESTED_KEYS:
            if _is_state_dict(obj.get(candidate)):
                obj = obj[candidate]
                break
    if not _is_state_dict(obj):
        raise ConversionError(
            f'{path}: expected a state_dict (str -> Tensor) or a dict nesting '
            f'one under {NESTED_KEYS}, got {type(obj).__name__}'
        )
    return dict(obj), raw


def load_foreign_checkpoint(path: str, key: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """Load a foreign checkpoint safely and return its state_dict.

    The file is read with basicattn's one loader
    (:func:`basicattn.engine.checkpoint_io.safe_load`: ``weights_only=True``,
    local files only): a checkpoint is untrusted input and no pickled code
    runs; a URL, a truncated file or pickled code is a
    :class:`~basicattn.errors.CheckpointError` naming the path. Bare
    state_dicts (also in the legacy, non-zip format) are returned as they
    are; a dict that nests one under ``key`` (or, when ``key`` is None,
    under one of ``state_dict``, ``params_ema``, ``params``, ``model``) is
    unwrapped.

    Args:
        path (str): Checkpoint file.
        key (str, optional): Key of the nested state_dict. Default: None.

    Returns:
        dict[str, Tensor]: The state_dict.
    """
    return read_foreign_checkpoint(path, key)[0]


# ``x2``, ``_x3``, ``X4`` as a token of a file name (not ``x264``, not ``SRx4``)
_SCALE_TOKEN = re.compile(r'(?:^|[^a-z0-9])x([1-9][0-9]?)(?![a-z0-9])', re.IGNORECASE)


def scale_from_name(path: str) -> Optional[int]:
    """The scale a file name states (``aan_x2.pt`` -> 2), or None.

    Raises:
        ConversionError: The name states two different scales.
    """
    stem = osp.splitext(osp.basename(path))[0]
    found = sorted({int(s) for s in _SCALE_TOKEN.findall(stem)})
    if len(found) > 1:
        raise ConversionError(
            f'{path}: the file name states several scales '
            f'({", ".join(f"x{s}" for s in found)}); rename it'
        )
    return found[0] if found else None


def scale_from_metadata(raw) -> Optional[Tuple[int, str]]:
    """``(scale, where)`` recorded in a checkpoint's own metadata, or None.

    Looks at ``meta['scale']``, ``meta['arch']['upscale'|'scale']`` and
    top-level ``scale``/``upscale`` entries.
    """
    if not isinstance(raw, Mapping):
        return None
    meta = raw.get('meta') if isinstance(raw.get('meta'), Mapping) else {}
    arch = meta.get('arch') if isinstance(meta.get('arch'), Mapping) else {}
    places = [
        (meta, 'scale', "meta['scale']"),
        (arch, 'upscale', "meta['arch']['upscale']"),
        (arch, 'scale', "meta['arch']['scale']"),
        (raw, 'scale', "'scale'"),
        (raw, 'upscale', "'upscale'"),
    ]
    for table, key, where in places:
        value = table.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value, f'metadata {where}'
    return None


def scale_hints(path: str, raw) -> list:
    """What the input file itself says about its scale: ``[(scale, where)]``.

    Raises:
        ConversionError: The file name and the metadata disagree.
    """
    hints = []
    named = scale_from_name(path)
    if named is not None:
        hints.append((named, f'file name {osp.basename(path)}'))
    recorded = scale_from_metadata(raw)
    if recorded is not None:
        hints.append(recorded)
    if len({s for s, _ in hints}) > 1:
        raise ConversionError(
            f'{path}: '
            + ' and '.join(f'the {w} (x{s})' for s, w in hints)
            + ' disagree on the scale; fix the name or the metadata'
        )
    return hints


def check_scale(given: Optional[int], hints: Sequence[Tuple[int, str]], path: str):
    """The scale to assume and where it came from, refusing contradictions.

    Args:
        given (int | None): ``--scale``.
        hints (Sequence[tuple[int, str]]): From :func:`scale_hints`.
        path (str): The input file, for messages.

    Returns:
        tuple[int | None, str]: The scale (None: unknown) and its source
        (``'--scale'``, ``'file name aan_x2.pt'``, ``'metadata ...'``).

    Raises:
        ConversionError: ``given`` contradicts what the file says.
    """
    if given is None:
        return (hints[0][0], hints[0][1]) if hints else (None, 'not known')
    for scale, where in hints:
        if scale != given:
            raise ConversionError(
                f'{path}: --scale {given} contradicts the {where} (x{scale}); x2 and x3 '
                'weights have the same shapes, so a wrong scale converts without error '
                f'and scores wrong. Pass --scale {scale}, or rename the file if its name '
                'is wrong'
            )
    agree = ' and '.join(w for _, w in hints)
    return given, '--scale' + (f' (agrees with the {agree})' if agree else '')


def require_tensor(
    state_dict: Mapping[str, torch.Tensor], key: str, ndim: int, source: str
) -> torch.Tensor:
    """``state_dict[key]``, checked to exist and to have ``ndim`` dimensions.

    Raises:
        ConversionError: Naming ``source`` (the converter), the key and the
            shape found.
    """
    if key not in state_dict:
        raise ConversionError(f'{source}: required key {key!r} is missing')
    if state_dict[key].dim() != ndim:
        raise ConversionError(
            f'{source}: {key!r} should be {ndim}-D, got shape {tuple(state_dict[key].shape)}'
        )
    return state_dict[key]


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    """Return the SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def rename_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    rules: Sequence[Tuple[str, str]],
    source: str = 'checkpoint',
    return_origin: bool = False,
):
    """Rename every key with the first matching ``(pattern, replacement)``.

    Patterns are full-match regular expressions (:func:`re.fullmatch`);
    replacements may use groups (``r'blocks.\\1.conv_in.\\2'``). Strict: a
    key that no rule matches, or two keys that land on one name, raise.

    Args:
        state_dict (Mapping[str, Tensor]): Foreign state_dict.
        rules (Sequence[tuple[str, str]]): Rename rules, tried in order.
        source (str): Name of the format, for error messages.
        return_origin (bool): Also return ``{new key: foreign key}``.
            Default: False.

    Returns:
        dict[str, Tensor] | tuple[dict, dict]: The renamed state_dict (same
        tensors), and the origin map when ``return_origin`` is True.
    """
    compiled = [(re.compile(p), r) for p, r in rules]
    out: Dict[str, torch.Tensor] = {}
    origin: Dict[str, str] = {}
    unmapped = []
    for key, value in state_dict.items():
        for pattern, repl in compiled:
            match = pattern.fullmatch(key)
            if match:
                new_key = match.expand(repl)
                break
        else:
            unmapped.append(key)
            continue
        if new_key in out:
            raise ConversionError(
                f'{source}: keys {origin[new_key]!r} and {key!r} both map to {new_key!r}'
            )
        out[new_key] = value
        origin[new_key] = key
    if unmapped:
        raise ConversionError(
            f'{source}: {len(unmapped)} key(s) do not map to any basicattn '
            f'parameter: {_format_keys(unmapped)}'
        )
    return (out, origin) if return_origin else out


def check_state_dict_against(
    state_dict: Mapping[str, torch.Tensor],
    model: nn.Module,
    source: str = 'checkpoint',
    origin: Optional[Mapping[str, str]] = None,
) -> None:
    """Raise unless ``state_dict`` has exactly the model's names and shapes.

    Args:
        state_dict (Mapping[str, Tensor]): Converted state_dict.
        model (nn.Module): A built instance of the target arch.
        source (str): Name of the format, for error messages.
        origin (Mapping[str, str], optional): New key -> foreign key, so
            that errors also name the key in the foreign file.
    """
    expected = model.state_dict()
    origin = origin or {}

    def name(k):
        return f'{k} (from {origin[k]})' if k in origin else k

    problems = []
    missing = set(expected) - set(state_dict)
    unexpected = set(state_dict) - set(expected)
    if missing:
        problems.append(f'missing keys: {_format_keys(missing)}')
    if unexpected:
        problems.append('unexpected keys: ' + _format_keys(name(k) for k in unexpected))
    shapes = [
        f'{name(k)}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}'
        for k in sorted(set(expected) & set(state_dict))
        if state_dict[k].shape != expected[k].shape
    ]
    if shapes:
        problems.append(
            'shape mismatch: '
            + '; '.join(shapes[:20])
            + (f'; ... ({len(shapes) - 20} more)' if len(shapes) > 20 else '')
        )
    if problems:
        raise ConversionError(
            f'{source} does not fit {type(model).__name__}: ' + ' | '.join(problems)
        )


def get_converter(name: str):
    """Return the converter function registered under ``name``."""
    from basicattn.registry import CONVERTERS

    fn = CONVERTERS.get(name)
    if fn is None:
        raise ConversionError(
            f'--source: unknown converter {name!r}; registered: '
            f'{", ".join(list_converters()) or "none"}'
        )
    return fn


def list_converters() -> Dict[str, str]:
    """Return ``{name: first docstring line}`` of every registered converter."""
    from basicattn.registry import CONVERTERS

    CONVERTERS.import_from_location()
    out = {}
    for name, fn in sorted(CONVERTERS.module_dict.items()):
        doc = (fn.__doc__ or '').strip().splitlines()
        out[name] = doc[0] if doc else ''
    return out


def save_basicattn_checkpoint(
    path: str, state_dict: Mapping[str, torch.Tensor], meta: dict, overwrite: bool = False
) -> None:
    """Write ``{'state_dict': ..., 'meta': meta}`` atomically.

    The file is written to a temporary file in the same folder, flushed to
    disk, then moved over ``path`` with :func:`os.replace`, so a crash never
    leaves a torn checkpoint. ``meta`` should hold ``arch`` (the arch config,
    ``type`` + kwargs) and, for converted weights, ``converted_from`` and
    ``source_sha256``; it must contain only plain Python values so that
    :func:`load_basicattn_checkpoint` can read it with ``weights_only=True``.

    Args:
        path (str): Output file.
        state_dict (Mapping[str, Tensor]): Weights.
        meta (dict): Metadata.
        overwrite (bool): Replace an existing file. Default: False.
    """
    if osp.exists(path) and not overwrite:
        raise FileExistsError(f'{path} exists; pass overwrite=True (--overwrite) to replace it')
    payload = {
        'state_dict': {k: v.detach().cpu().contiguous() for k, v in state_dict.items()},
        'meta': meta,
    }
    with atomic_open(path) as f:
        torch.save(payload, f)


def load_basicattn_checkpoint(path: str) -> Tuple[Dict[str, torch.Tensor], dict]:
    """Read a checkpoint written by :func:`save_basicattn_checkpoint`.

    Returns:
        tuple[dict, dict]: ``(state_dict, meta)``.
    """
    obj = safe_load(path)
    if not isinstance(obj, Mapping) or 'state_dict' not in obj:
        raise ConversionError(f"{path}: not a basicattn checkpoint (no 'state_dict' key)")
    return dict(obj['state_dict']), dict(obj.get('meta') or {})


def build_from_checkpoint(path: str) -> nn.Module:
    """Build the arch named in a checkpoint's ``meta['arch']`` and load it
    with ``strict=True``.

    Returns:
        nn.Module: The model, in eval mode.
    """
    state_dict, meta = load_basicattn_checkpoint(path)
    arch = meta.get('arch')
    if not isinstance(arch, Mapping) or 'type' not in arch:
        raise ConversionError(
            f"{path}: meta['arch'] with a 'type' is missing; cannot tell which arch to build"
        )
    from basicattn.engine.network import build_network

    model = build_network(dict(arch), f"{path}: meta['arch']")
    model.load_state_dict(state_dict, strict=True)
    return model.eval()
