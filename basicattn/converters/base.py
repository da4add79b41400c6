"""What the weight converters share, and nothing generic.

A converter is a function registered in :data:`basicattn.registry.CONVERTERS`
under the name of the foreign format (``'a2n_official'``)::

    @CONVERTERS.register_module(name='a2n_official')
    def convert_a2n_official(state_dict, scale=None):
        ...
        return convert_by_rules(state_dict, A2N_RULES, infer_arch, SOURCE)

It takes the foreign state_dict (already read with
:func:`basicattn.checkpoint.state.read_state_dict`) and returns the
basicattn state_dict and the arch config (``type`` + keyword arguments) that
the weights belong to. The first line of its docstring is what
``tools/convert_model.py --list`` shows.

Here: the shared flow (:func:`convert_by_rules`: a strict regex renamer that
refuses unmapped keys, the arch built through
:func:`basicattn.archs.build.build_network` and the renamed weights
checked against it), shape checks for reading an arch config off the
weights, the scale that a file name or metadata states, and the registry
look-ups. Reading, unwrapping and saving checkpoints live in
:mod:`basicattn.checkpoint.state`; building networks in
:mod:`basicattn.archs.build`.
"""

import hashlib
import os.path as osp
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from basicattn.archs.build import build_network
from basicattn.checkpoint.state import (
    check_state_dict_against,
    format_keys,
)
from basicattn.errors import CheckpointError, OptionError
from basicattn.registry import CONVERTERS

__all__ = [
    'ConversionError',
    'convert_by_rules',
    'scale_hints',
    'check_scale',
    'sha256_file',
    'rename_state_dict',
    'rules_from_table',
    'require_tensor',
    'count_blocks',
    'get_converter',
    'list_converters',
    'FormatSignature',
]


class ConversionError(CheckpointError, ValueError):
    """A foreign checkpoint does not match what the converter expects."""


@dataclass(frozen=True)
class FormatSignature:
    """How :mod:`basicattn.converters.detect` recognises a converter's input.

    A converter declares it as its ``signature`` attribute. A state dict
    (wrapper prefixes removed) is of this format when it holds every key of
    ``keys``; the shapes are then checked by the converter itself, which
    reads the arch config from them.

    Attributes:
        keys (tuple[str, ...]): Keys every file of the format holds (and no
            basicattn network has).
        describe (str): The format for people (``A2N authors' weights ...``).
        scale_from_shapes (Callable | None): State dict -> the scale its
            shapes show, or None when they do not show it (A2N x2 and x3).
        rename (Callable): State dict -> the same tensors under basicattn's
            names (no arch inferred), to load into a network built otherwise.
    """

    keys: Tuple[str, ...]
    describe: str
    scale_from_shapes: Optional[Callable[[Mapping[str, torch.Tensor]], Optional[int]]]
    rename: Callable[[Mapping[str, torch.Tensor]], Dict[str, torch.Tensor]]

    def matches(self, state_dict: Mapping[str, torch.Tensor]) -> bool:
        """True when ``state_dict`` holds every key of the signature."""
        return all(k in state_dict for k in self.keys)


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


def count_blocks(state_dict: Mapping[str, torch.Tensor], prefix: str, source: str) -> int:
    """How many blocks ``<prefix>.<i>.*`` a state_dict holds (``i`` = 0 .. n-1).

    Raises:
        ConversionError: The indices have gaps (naming ``source`` and ``prefix``).
    """
    pattern = re.compile(rf'{re.escape(prefix)}\.(\d+)\.')
    ids = {int(m.group(1)) for m in map(pattern.match, state_dict) if m}
    if ids != set(range(len(ids))):
        raise ConversionError(f'{source}: {prefix} block indices are not 0..n-1: {sorted(ids)}')
    return len(ids)


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    """Return the SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def rules_from_table(table: str) -> List[Tuple[str, str]]:
    """Rename rules from a two-column text table, one ``PATTERN REPLACEMENT`` a line.

    Patterns are full-match regular expressions, replacements may use their
    groups (``\\1``); neither contains spaces. Blank lines are skipped.

    Returns:
        list[tuple[str, str]]: The rules, in the table's order (for
        :func:`rename_state_dict`).
    """
    rules = []
    for line in table.splitlines():
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise ValueError(f'rename table line {line.strip()!r}: expected PATTERN REPLACEMENT')
        rules.append((fields[0], fields[1]))
    return rules


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
            f'parameter: {format_keys(unmapped)}'
        )
    return (out, origin) if return_origin else out


def get_converter(name: str):
    """Return the converter function registered under ``name``."""

    fn = CONVERTERS.get(name)
    if fn is None:
        raise ConversionError(
            f'--source: unknown converter {name!r}; registered: '
            f'{", ".join(list_converters()) or "none"}'
        )
    return fn


def list_converters() -> Dict[str, str]:
    """Return ``{name: first docstring line}`` of every registered converter."""

    CONVERTERS.import_from_location()
    out = {}
    for name, fn in sorted(CONVERTERS.module_dict.items()):
        doc = (fn.__doc__ or '').strip().splitlines()
        out[name] = doc[0] if doc else ''
    return out


def convert_by_rules(
    state_dict: Mapping[str, torch.Tensor],
    rules: Sequence[Tuple[str, str]],
    infer_arch: Callable[[Mapping[str, torch.Tensor]], dict],
    source: str,
) -> Tuple[Dict[str, torch.Tensor], dict]:
    """The flow of every converter: rename, read the arch, build it, check.

    Args:
        state_dict (Mapping[str, Tensor]): Foreign state_dict.
        rules (Sequence[tuple[str, str]]): Rename rules (:func:`rename_state_dict`).
        infer_arch (Callable): Foreign state_dict -> arch config (``type`` +
            kwargs), read from the shapes.
        source (str): Name of the format, for error messages.

    Returns:
        tuple[dict, dict]: The basicattn state_dict (same tensors) and the arch config.

    Raises:
        ConversionError: An unmapped or colliding key, an invalid inferred
            arch, or weights that do not fit it (naming the foreign keys).
    """
    renamed, origin = rename_state_dict(state_dict, rules, source=source, return_origin=True)
    arch = infer_arch(state_dict)
    try:
        model = build_network(arch, f'{source}: inferred arch')
    except OptionError as err:
        raise ConversionError(f'{source}: inferred arch {arch} is invalid: {err}') from err
    try:
        check_state_dict_against(renamed, model, source=source, origin=origin)
    except CheckpointError as err:
        raise ConversionError(str(err)) from None
    return renamed, arch
