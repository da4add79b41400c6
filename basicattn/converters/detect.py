"""Which network a weights file belongs to, told from the file alone.

Like spandrel's architecture detection, but only for what basicattn knows:

* ``basicattn``: a file that records its arch config in ``meta['arch']``
  (training checkpoints ``iter_N.pth``, ``net_g_N.safetensors``, the output
  of ``tools/convert_model.py``): that config, and its ``meta['scale']``;
* every registered converter that declares a
  :class:`~basicattn.converters.base.FormatSignature` (``signature``
  attribute): the file holds the signature's keys; the converter then checks
  every key and shape and reads the arch config from the shapes. The scale
  comes from the shapes where they show it (A2N x4: a second upsampling
  stage; MANA: x4 only), otherwise from the file name (``aan_x2.pt``) or
  metadata, or the caller's ``scale`` (A2N x2 and x3 weights have the same
  shapes).

Anything else is a :class:`~basicattn.errors.CheckpointError` listing the
formats known (:func:`known_formats`). ``tools/infer.py`` without
``-opt``/``--arch`` and ``tools/test.py`` with an option file without
``network_g`` build their network from :func:`detect_format`.
"""

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch

from basicattn.checkpoint.io import safe_load
from basicattn.checkpoint.state import (
    StateDict,
    extract_state_dict,
    is_state_dict,
    recorded_arch,
    strip_wrapper_prefixes,
)
from basicattn.config.inheritance import load_option_file
from basicattn.config.options import apply_overrides
from basicattn.errors import CheckpointError
from basicattn.registry import CONVERTERS

from .base import ConversionError, check_scale, scale_hints

#: Name of the format of files that record their own arch.
BASICATTN = 'basicattn'

_BASICATTN_DESCRIBE = (
    "a file recording meta['arch'] (iter_N.pth of a training run, net_g_N.safetensors, "
    'tools/convert_model.py output)'
)


@dataclass
class DetectedWeights:
    """What :func:`detect_format` found.

    Attributes:
        name (str): ``'basicattn'`` or the converter's name (``'a2n_official'``).
        arch (dict): The arch config (``type`` + kwargs) to build.
        state_dict (dict[str, Tensor]): The weights under the arch's names.
        scale (int | None): The upscaling factor (None: not known).
        scale_source (str): Where the scale came from.
        where (str): The config's origin, for :func:`~basicattn.archs.build.build_network`.
    """

    name: str
    arch: dict
    state_dict: StateDict
    scale: Optional[int]
    scale_source: str
    where: str


def signed_converters() -> List[Tuple[str, Any]]:
    """``[(name, converter)]`` of the registered converters that declare a signature."""

    CONVERTERS.import_from_location()
    return [
        (name, fn)
        for name, fn in sorted(CONVERTERS.module_dict.items())
        if getattr(fn, 'signature', None) is not None
    ]


def known_formats() -> str:
    """The formats :func:`detect_format` knows, as one line for messages."""
    parts = [f'{BASICATTN} = {_BASICATTN_DESCRIBE}']
    parts += [f'{name} = {fn.signature.describe}' for name, fn in signed_converters()]
    return '; '.join(parts)


def records_arch(checkpoint: Any) -> bool:
    """True when a loaded checkpoint records ``meta['arch']`` with a ``type``."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, Mapping) else None
    arch = meta.get('arch') if isinstance(meta, Mapping) else None
    return isinstance(arch, Mapping) and 'type' in arch


def foreign_format(state_dict: Mapping[str, torch.Tensor]) -> Optional[Tuple[str, Any]]:
    """``(name, converter)`` whose signature ``state_dict`` matches, or None.

    Raises:
        CheckpointError: Two signatures match (a converter declares too few keys).
    """
    found = [(n, fn) for n, fn in signed_converters() if fn.signature.matches(state_dict)]
    if len(found) > 1:
        raise CheckpointError(
            'the weights match the signatures of several formats: '
            + ', '.join(n for n, _ in found)
            + '; convert them with tools/convert_model.py --source NAME'
        )
    return found[0] if found else None


def check_named_format(name: str, convert: Any, state_dict: Mapping, source: str) -> None:
    """Refuse weights that are not of the format ``--source NAME`` names, saying what they are.

    Without this, the converter fails on a detail of the wrong format (MANA's
    "x4 only" for A2N weights). Converters without a
    :class:`~basicattn.converters.base.FormatSignature` are not checked.

    Args:
        name (str): The converter the user named.
        convert (callable): That converter.
        state_dict (Mapping): The weights read from the file.
        source (str): The file, named in the message.

    Raises:
        ConversionError: The weights lack keys of the named format.
    """

    signature = getattr(convert, 'signature', None)
    if signature is None or not is_state_dict(state_dict):
        return
    stripped = strip_wrapper_prefixes(state_dict)
    if signature.matches(stripped) or signature.matches(state_dict):
        return
    missing = [k for k in signature.keys if k not in stripped]
    try:
        other = foreign_format(stripped)
    except CheckpointError:
        other = None
    if other is not None:
        hint = (
            f'they are {other[0]} weights ({other[1].signature.describe}): use --source '
            f'{other[0]}, or leave --source out to detect the format'
        )
    else:
        hint = 'leave --source out to detect the format, or see --list'
    raise ConversionError(
        f'{source}: not {name} weights ({signature.describe}): no {missing[0]!r}'
        + (f' and {len(missing) - 1} more of its keys' if len(missing) > 1 else '')
        + f'; {hint}'
    )


def _unknown(source: str, reason: str, hint: str) -> CheckpointError:
    return CheckpointError(
        f'{source}: unknown weights format ({reason}); the formats basicattn recognises are: '
        f'{known_formats()}' + (f'; {hint}' if hint else '')
    )


def detect_format(
    checkpoint: Any,
    source: str = 'checkpoint',
    scale: Optional[int] = None,
    key: Optional[str] = None,
    hint: str = 'name the network with -opt or --arch',
) -> DetectedWeights:
    """Tell the format and arch of a loaded weights file, and get its weights.

    Args:
        checkpoint (object): What :func:`~basicattn.checkpoint.io.safe_load`
            returned.
        source (str): The file (its name may state the scale: ``aan_x2.pt``).
        scale (int, optional): The scale the user gave (``--scale``); must
            agree with what the file shows.
        key (str, optional): Key of the weights (None: ``state_dict`` for a
            basicattn file, found otherwise).
        hint (str): What the user can do instead, ending the unknown-format
            message.

    Returns:
        DetectedWeights: Format name, arch config, weights, scale.

    Raises:
        CheckpointError: Unknown format (listing the known ones), weights that
            do not fit the format, or a scale that is unknown or contradicted.
    """
    if records_arch(checkpoint):
        return _recorded(checkpoint, source, scale, key)
    try:
        state = extract_state_dict(checkpoint, key, source)
    except CheckpointError:
        raise _unknown(source, "no state dict and no meta['arch']", hint) from None
    found = foreign_format(state)
    if found is None:
        shown = ', '.join(sorted(state)[:4]) + (', ...' if len(state) > 4 else '')
        raise _unknown(source, f"no meta['arch'], and keys {shown} match no known layout", hint)
    name, convert = found
    hints = scale_hints(source, checkpoint)
    from_shapes = convert.signature.scale_from_shapes(state)
    if from_shapes is not None:
        hints = [(from_shapes, f'{name} weight shapes')] + hints
    try:
        chosen, chosen_from = check_scale(scale, hints, source)
        if len({s for s, _ in hints}) > 1:
            raise ConversionError(
                f'{source}: '
                + ' and '.join(f'the {w} (x{s})' for s, w in hints)
                + ' disagree on the scale'
            )
        if chosen is None and from_shapes is None and _needs_scale(convert):
            raise ConversionError(
                f'{source}: {convert.signature.describe} recognised, but their shapes do not '
                'show the scale (x2 and x3 weights are alike) and the file name states none '
                '(aan_x2.pt does); pass --scale'
            )
        new_state, arch = convert(state, scale=chosen)
    except ConversionError as err:
        text = str(err)
        raise ConversionError(text if text.startswith(source) else f'{source}: {text}') from None
    return DetectedWeights(name, arch, new_state, chosen, chosen_from, f'{source}: detected {name}')


def _needs_scale(convert) -> bool:
    return getattr(convert, 'fixed_scale', None) is None


def _recorded(checkpoint: Mapping, source: str, scale: Optional[int], key: Optional[str]):

    arch = recorded_arch(checkpoint, source)
    meta = checkpoint['meta']
    in_arch = arch.get('upscale', arch.get('scale'))
    recorded = meta.get('scale', in_arch)
    if scale is not None and recorded is not None and scale != recorded:
        raise CheckpointError(
            f'{source}: --scale {scale} contradicts the recorded scale x{recorded} '
            "(meta['arch'] was trained or converted for it); drop --scale"
        )
    state = extract_state_dict(checkpoint, key or 'state_dict', source)
    chosen = recorded if recorded is not None else scale
    origin = "meta['scale']" if 'scale' in meta else "meta['arch']"
    return DetectedWeights(
        BASICATTN,
        dict(arch),
        state,
        chosen,
        origin if recorded is not None else ('--scale' if scale else 'not known'),
        f"{source}: meta['arch']",
    )


def generator_state(checkpoint: Any, key: Optional[str], source: str) -> Dict[str, torch.Tensor]:
    """The weights of a loaded file under basicattn's names, for a network built otherwise.

    A basicattn layout is returned as :func:`extract_state_dict` gives it; a
    state dict in a known foreign layout (a converter's signature) is
    renamed by that converter, so ``path.pretrain_network_g`` can name the
    authors' file itself.
    """
    state = extract_state_dict(checkpoint, key, source)
    if records_arch(checkpoint) or not is_state_dict(state):
        return state
    found = foreign_format(state)
    if found is None:
        return state
    try:
        return found[1].signature.rename(state)
    except ConversionError as err:
        raise ConversionError(f'{source}: {err}') from None


def network_overrides(opt_path: str, checkpoint_path: str, overrides=()) -> List[str]:
    """``--set`` overrides naming the network of ``checkpoint_path`` for ``tools/test.py``.

    Empty when the option file (with its ``_base_`` files and ``overrides``)
    has a ``network_g``. Otherwise the network is the one
    :func:`detect_format` finds in the weights (the option file's ``scale``
    serves as the scale A2N x2/x3 weights do not show), given as a
    ``network_g=`` override; a bare state dict also gets
    ``path.param_key_g=''``.

    Args:
        opt_path (str): The option file.
        checkpoint_path (str): ``--checkpoint``.
        overrides (Sequence[str]): The ``--set`` overrides so far.

    Returns:
        list[str]: Overrides to append.
    """
    import json

    opt, _ = load_option_file(opt_path)
    apply_overrides(opt, list(overrides))
    if opt.get('network_g') is not None:
        return []
    checkpoint = safe_load(checkpoint_path, option='--checkpoint')
    scale = opt.get('scale') if isinstance(opt.get('scale'), int) else None
    if records_arch(checkpoint):
        scale = None  # the recorded arch holds it; a different `scale:` is refused later
    found = detect_format(
        checkpoint, checkpoint_path, scale=scale, hint=f'{opt_path}: give network_g'
    )
    extra = [f'network_g={json.dumps(found.arch)}']
    if is_state_dict(checkpoint):
        extra.append("path.param_key_g=''")
    return extra
