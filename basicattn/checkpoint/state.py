"""What is inside a checkpoint: network weights in, network weights out.

:mod:`basicattn.checkpoint.io` turns files into objects (atomic
writes, the one safe loader); this module turns those objects into the
weights of one network and back. It is the one place that knows where the
weights sit in the files basicattn reads:

* basicattn's own weights-only checkpoints (:func:`save_weights_checkpoint`:
  ``{'state_dict': weights, 'meta': {'arch': {type + kwargs}, ...}}``), in
  ``.pth`` or ``.safetensors`` files (:func:`save_weights_file` picks by the
  extension; both read back as the same dict);
* mmengine training checkpoints: the weights under ``state_dict`` with the
  model's ``generator.`` prefix, the EMA weights under ``ema_state_dict``
  (mmengine's averaged model: a ``steps`` counter and ``module.`` before the
  model's keys);
* BasicSR files (``params`` / ``params_ema``), bare state dicts, and
  ``module.`` (DataParallel / DDP) and ``_orig_mod.`` (``torch.compile``)
  prefixes.

Every failure is a :class:`~basicattn.errors.CheckpointError` naming the file.
"""

import os.path as osp
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.model import is_model_wrapper

from basicattn.checkpoint.io import safe_load
from basicattn.checkpoint.safetensors_io import SUFFIX as SAFETENSORS_SUFFIX
from basicattn.checkpoint.safetensors_io import save_safetensors
from basicattn.errors import CheckpointError
from basicattn.utils.atomic_file import atomic_open
from basicattn.utils.finite import first_non_finite

#: Keys under which common training frameworks nest the state_dict, in the
#: order they are tried when no key is named (BasicSR: ``params_ema`` first).
NESTED_KEYS = ('state_dict', 'params_ema', 'params', 'model')

#: Prefixes a wrapper puts before every key: DataParallel / DDP / mmengine's
#: averaged model (``module.``), ``torch.compile`` (``_orig_mod.``) and the
#: SR model of a training checkpoint (``generator.``).
WRAPPER_PREFIXES = ('module.', '_orig_mod.', 'generator.')

#: What the user sets to name the key of the weights, for messages.
PARAM_KEY_OPTION = "path.param_key_g (--param-key), '' for a bare state dict"

StateDict = Dict[str, torch.Tensor]


def is_state_dict(obj: Any) -> bool:
    """True for a non-empty mapping of ``str`` names to tensors."""
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def strip_wrapper_prefixes(state: Mapping[str, torch.Tensor]) -> StateDict:
    """Remove the prefixes of :data:`WRAPPER_PREFIXES` that every key carries.

    Prefixes are removed one after the other while all keys share one
    (``module.generator.conv.weight`` -> ``conv.weight``). The ``steps``
    counter of mmengine's averaged (EMA) model, saved beside its
    ``module.*`` weights, is dropped.

    Args:
        state (Mapping[str, Tensor]): A state dict.

    Returns:
        dict[str, Tensor]: The same tensors under the network's own names.
    """
    state = dict(state)
    others = [k for k in state if k != 'steps']
    if 'steps' in state and others and all(k.startswith('module.') for k in others):
        del state['steps']
    stripped = True
    while state and stripped:
        stripped = False
        for prefix in WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                stripped = True
    return state


def extract_state_dict(
    checkpoint: Any,
    key: Optional[str] = 'state_dict',
    source: str = 'checkpoint',
    key_option: str = PARAM_KEY_OPTION,
) -> StateDict:
    """Return the network weights held by a loaded checkpoint.

    Args:
        checkpoint (object): What :func:`~basicattn.checkpoint.io.safe_load`
            returned.
        key (str | None): Key holding the weights (``'state_dict'``,
            ``'ema_state_dict'``, ``'params_ema'`` ...); ``''``: the file is a
            bare state dict; None: find them (a bare state dict, or the first
            of :data:`NESTED_KEYS` that holds one).
        source (str): The file, for messages.
        key_option (str): Where the user names the key, for messages.

    Returns:
        dict[str, Tensor]: The weights, wrapper prefixes removed
        (:func:`strip_wrapper_prefixes`).

    Raises:
        CheckpointError: The checkpoint holds no such weights (naming it).
    """
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(
            f'{source}: not a checkpoint of network weights (it holds a '
            f'{type(checkpoint).__name__}, not a dict)'
        )
    if key is None:
        state = checkpoint
        if not is_state_dict(state):
            state = next(
                (checkpoint[k] for k in NESTED_KEYS if is_state_dict(checkpoint.get(k))), None
            )
        if state is None:
            raise CheckpointError(
                f'{source}: expected a state_dict (str -> Tensor) or a dict nesting '
                f'one under {NESTED_KEYS}, got {type(checkpoint).__name__} with keys '
                f'{sorted(map(str, checkpoint))[:8]}; name the key with {key_option}'
            )
        return strip_wrapper_prefixes(state)
    if key:
        if key not in checkpoint:
            raise CheckpointError(
                f'{source}: no {key!r} in checkpoint (keys: '
                f'{sorted(map(str, checkpoint))[:8]}); set {key_option}'
            )
        checkpoint = checkpoint[key]
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(
            f'{source}: {key or "the file"} holds a '
            f'{type(checkpoint).__name__}, not network weights'
        )
    return strip_wrapper_prefixes(checkpoint)


def extract_generator_state(
    checkpoint: Any, param_key: str = 'state_dict', source: str = ''
) -> StateDict:
    """:func:`extract_state_dict` with the arguments of ``path.param_key_g``."""
    return extract_state_dict(checkpoint, param_key, source)


def read_state_dict(
    path: str,
    key: Optional[str] = None,
    option: str = 'checkpoint',
    key_option: str = '--key',
) -> Tuple[StateDict, Any]:
    """Load a checkpoint file safely; return its weights and the whole file.

    Args:
        path (str): Checkpoint file (local; read with ``weights_only=True``).
        key (str | None): As for :func:`extract_state_dict` (None: find them).
        option (str): The option or argument the path came from.
        key_option (str): Where the user names the key, for messages.

    Returns:
        tuple[dict[str, Tensor], object]: The weights and the loaded file (for
        its metadata).
    """
    raw = safe_load(path, option=option)
    return extract_state_dict(raw, key, path, key_option), raw


def check_finite_weights(state: Mapping[str, Any], source: str) -> None:
    """Raise unless every floating-point tensor of ``state`` is finite.

    Weights with NaN or inf come from a diverged training run; a network
    built from them writes black (NaN) images and meaningless scores, so
    they are refused wherever weights are loaded.

    Args:
        state (Mapping[str, Tensor]): Weights (other values are skipped).
        source (str): The file, for the message.

    Raises:
        CheckpointError: Naming ``source`` and the first non-finite tensor.
    """

    found = first_non_finite(state.items())
    if found is not None:
        name, what = found
        raise CheckpointError(
            f'{source}: the weights are not finite ({name} holds {what}); they come from a '
            'diverged training run and cannot be used: take an earlier checkpoint of the run'
        )


def load_network_weights(
    net: nn.Module, state: Mapping[str, torch.Tensor], strict: bool, source: str
) -> Any:
    """``net.load_state_dict(state, strict)``; a mismatch is one CheckpointError line.

    Weights with NaN or inf are refused first (:func:`check_finite_weights`).

    Returns:
        The ``load_state_dict`` result (missing and unexpected keys).
    """
    check_finite_weights(state, source)
    try:
        return net.load_state_dict(state, strict=strict)
    except RuntimeError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        detail = '; '.join(lines[1:4])
        raise CheckpointError(
            f'{source}: these weights do not fit {type(net).__name__} '
            f'(strict={strict}): {detail[:400]}; check the arch options '
            'or the checkpoint'
        ) from err


def load_weights(
    net: nn.Module,
    checkpoint: Any,
    key: Optional[str] = 'state_dict',
    source: str = 'checkpoint',
    strict: bool = True,
) -> Any:
    """Put the weights of a loaded checkpoint into ``net``.

    :func:`extract_state_dict` then :func:`load_network_weights`.

    Returns:
        The ``load_state_dict`` result (missing and unexpected keys).
    """
    return load_network_weights(net, extract_state_dict(checkpoint, key, source), strict, source)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside a DataParallel / DDP wrapper (the model itself otherwise)."""
    return model.module if is_model_wrapper(model) else model


def format_keys(keys: Iterable[str], limit: int = 20) -> str:
    """``'a, b, c, ... (N more)'``: sorted keys for a message, at most ``limit``."""
    keys = sorted(keys)
    shown = ', '.join(keys[:limit])
    if len(keys) > limit:
        shown += f', ... ({len(keys) - limit} more)'
    return shown


def check_state_dict_against(
    state_dict: Mapping[str, torch.Tensor],
    model: nn.Module,
    source: str = 'checkpoint',
    origin: Optional[Mapping[str, str]] = None,
) -> None:
    """Raise unless ``state_dict`` has exactly the model's names and shapes.

    Unlike ``load_state_dict`` it names every missing, unexpected and
    mis-shaped key at once (and, through ``origin``, the key it came from).

    Args:
        state_dict (Mapping[str, Tensor]): Weights, e.g. converted ones.
        model (nn.Module): A built instance of the target arch.
        source (str): Name of the file or format, for error messages.
        origin (Mapping[str, str], optional): Key -> key in the original
            (foreign) file, so that errors also name that one.

    Raises:
        CheckpointError: Listing the problems.
    """
    expected = model.state_dict()
    origin = origin or {}

    def name(k):
        return f'{k} (from {origin[k]})' if k in origin else k

    problems = []
    missing = set(expected) - set(state_dict)
    unexpected = set(state_dict) - set(expected)
    if missing:
        problems.append(f'missing keys: {format_keys(missing)}')
    if unexpected:
        problems.append('unexpected keys: ' + format_keys(name(k) for k in unexpected))
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
        raise CheckpointError(
            f'{source} does not fit {type(model).__name__}: ' + ' | '.join(problems)
        )


def save_weights_checkpoint(
    path: str, state_dict: Mapping[str, torch.Tensor], meta: dict, overwrite: bool = False
) -> None:
    """Write a weights-only basicattn checkpoint ``{'state_dict', 'meta'}`` atomically.

    The file is written to a temporary file in the same folder, flushed to
    disk, then moved over ``path`` with :func:`os.replace`, so a crash never
    leaves a torn checkpoint. ``meta`` should hold ``arch`` (the arch config,
    ``type`` + kwargs, which :func:`basicattn.archs.build.network_from_checkpoint`
    builds) and, for converted weights, ``converted_from`` and
    ``source_sha256``; it must contain only plain Python values so that the
    file loads with ``weights_only=True``.

    Args:
        path (str): Output file.
        state_dict (Mapping[str, Tensor]): Weights.
        meta (dict): Metadata.
        overwrite (bool): Replace an existing file. Default: False.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    if osp.exists(path) and not overwrite:
        raise FileExistsError(f'{path} exists; pass overwrite=True (--overwrite) to replace it')
    payload = {
        'state_dict': {k: v.detach().cpu().contiguous() for k, v in state_dict.items()},
        'meta': meta,
    }
    with atomic_open(path) as f:
        torch.save(payload, f)


def save_weights_file(
    path: str, state_dict: Mapping[str, torch.Tensor], meta: dict, overwrite: bool = False
) -> None:
    """Write weights and ``meta`` atomically, as safetensors or ``.pth`` by the extension.

    ``*.safetensors``: :func:`~basicattn.checkpoint.safetensors_io.save_safetensors`
    (``meta`` as JSON in the file's metadata); anything else:
    :func:`save_weights_checkpoint`. :func:`read_weights_checkpoint` reads
    both back as ``(state_dict, meta)``.
    """
    if str(path).lower().endswith(SAFETENSORS_SUFFIX):
        save_safetensors(path, state_dict, meta, overwrite=overwrite)
    else:
        save_weights_checkpoint(path, state_dict, meta, overwrite=overwrite)


def read_weights_checkpoint(path: str, option: str = 'checkpoint') -> Tuple[StateDict, dict]:
    """Read a checkpoint written by :func:`save_weights_file` (``.pth`` or ``.safetensors``).

    Returns:
        tuple[dict, dict]: ``(state_dict, meta)``.

    Raises:
        CheckpointError: Not such a checkpoint (no ``state_dict``).
    """
    checkpoint = safe_load(path, option=option)
    state = extract_state_dict(checkpoint, 'state_dict', path)
    return state, dict(checkpoint.get('meta') or {})


def recorded_arch(checkpoint: Any, source: str, hint: str = '') -> dict:
    """The arch config (``type`` + kwargs) a checkpoint records in ``meta['arch']``.

    Args:
        checkpoint (object): A loaded checkpoint.
        source (str): Its file, for the message.
        hint (str): What the user can do instead, appended to the message.

    Raises:
        CheckpointError: There is no ``meta['arch']`` with a ``type``.
    """
    meta = checkpoint.get('meta') if isinstance(checkpoint, Mapping) else None
    arch = meta.get('arch') if isinstance(meta, Mapping) else None
    if not isinstance(arch, Mapping) or 'type' not in arch:
        raise CheckpointError(
            f"{source}: meta['arch'] with a 'type' is missing; cannot tell which arch to build"
            + (f'; {hint}' if hint else '')
        )
    return dict(arch)


def config_scale(cfg: Any) -> Optional[int]:
    """The ``upscale`` (or ``scale``) an arch config gives its network, None if neither."""
    if not isinstance(cfg, Mapping):
        return None
    value = cfg.get('upscale', cfg.get('scale'))
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def recorded_scale(checkpoint: Any) -> Tuple[Optional[int], str]:
    """The scale a checkpoint records, and where: ``meta['scale']``, else ``meta['arch']``.

    Converted files (tools/convert_model.py) and training checkpoints
    (``NetworkRecordHook``) record it; authors' files and bare state dicts do not.

    Returns:
        tuple[int | None, str]: The scale (None: not recorded) and its key.
    """
    meta = checkpoint.get('meta') if isinstance(checkpoint, Mapping) else None
    if not isinstance(meta, Mapping):
        return None, ''
    scale = meta.get('scale')
    if isinstance(scale, int) and not isinstance(scale, bool):
        return scale, "meta['scale']"
    return config_scale(meta.get('arch')), "meta['arch']"


def check_checkpoint_scale(
    checkpoint: Any, path: str, expected: Optional[int], where: str = 'scale'
) -> None:
    """Refuse weights recorded for another scale than the one the network is built for.

    The one scale check of every tool that loads weights into a network it
    built from an option file or ``--arch`` (tools/test.py, tools/train.py's
    ``path.pretrain_network_g``, tools/infer.py, tools/export.py). A2N x2
    and x3 weights have the same shapes, so such a pairing would load with
    ``strict=True`` and score wrong. Nothing is refused when either scale is
    not known.

    Args:
        checkpoint (object): The loaded file.
        path (str): Its path, for the message.
        expected (int | None): The scale of the network the weights go into.
        where (str): Where ``expected`` came from (``scale``, ``--arch-args``).

    Raises:
        CheckpointError: Both scales are known and differ.
    """
    recorded, origin = recorded_scale(checkpoint)
    if expected is None or recorded is None or recorded == expected:
        return
    raise CheckpointError(
        f'{path}: the weights are for x{recorded} ({origin}), but {where} asks for '
        f'x{expected}; use x{expected} weights, or the x{recorded} option file / scale'
    )
