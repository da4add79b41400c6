"""Converter for checkpoints of the MANA authors' code (jiy173/MANA).

Their ``train.py`` saves ``model.module.state_dict()`` of ``models.mana``: a
bare state_dict (a ``DataParallel`` ``module.`` prefix is also accepted).
No weights were released; this converter is for checkpoints users trained
with that code. The conversion is a rename (table in ``MANA_RULES``) except
for ``nonloc_spatial.D``, the frozen matrix of squared pixel distances of
the training grid (4096 x 4096 for 64 x 64 patches), which is dropped: our
attention computes the distances for whatever frame size it gets.

The widths, block counts, memory size and frame count are read from the
shapes; GroupNorm's 32 groups are fixed in their code (not visible in the
shapes).
"""

import functools
from typing import Dict, Mapping, Optional, Tuple

import torch

from basicattn.checkpoint.state import strip_wrapper_prefixes
from basicattn.registry import CONVERTERS

from .base import (
    ConversionError,
    FormatSignature,
    convert_by_rules,
    count_blocks,
    rename_state_dict,
    require_tensor,
    rules_from_table,
)

SOURCE = 'mana_official'

#: The authors' key holding the frozen distance matrix (dropped).
DISTANCE_KEY = 'nonloc_spatial.D'

#: Authors' key (full match) -> basicattn key.
MANA_RULES = rules_from_table(r"""
    conv_first\.(weight|bias)                            conv_first.\1
    (encoder|decoder)\.(\d+)\.(conv[12])\.(weight|bias)  \1.\2.\3.\4
    nonloc_spatial\.norm\.(weight|bias)                  attention.norm.\1
    nonloc_spatial\.phi\.(weight|bias)                   attention.to_q.\1
    nonloc_spatial\.theta\.(weight|bias)                 attention.to_k.\1
    nonloc_spatial\.g\.(weight|bias)                     attention.to_v.\1
    nonloc_spatial\.W_z\.(weight|bias)                   attention.conv_out.\1
    nonloc_spatial\.std                                  attention.sigma
    nonloc_spatial\.W_z1\.(weight|bias)                  memory.conv_out.\1
    nonloc_spatial\.mb                                   memory.bank
    (upconv1|upconv2|conv_hr|conv_last)\.(weight|bias)   \1.\2
""")


_require = functools.partial(require_tensor, source=SOURCE)


def strip_and_drop(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Remove a wrapper prefix (``module.``, all keys) and the distance matrix.

    Raises :class:`ConversionError` when the distance matrix is absent or not
    a square 2-D tensor (then this is not a ``models.mana`` checkpoint).
    """
    sd = strip_wrapper_prefixes(state_dict)
    dist = sd.pop(DISTANCE_KEY, None)
    if dist is None:
        raise ConversionError(
            f'{SOURCE}: no {DISTANCE_KEY!r} (the distance matrix every '
            'models.mana checkpoint stores); is this a MANA checkpoint?'
        )
    if dist.dim() != 2 or dist.shape[0] != dist.shape[1]:
        raise ConversionError(
            f'{SOURCE}: {DISTANCE_KEY!r} should be a square (HW, HW) matrix, '
            f'got shape {tuple(dist.shape)}'
        )
    return sd


def infer_mana_kwargs(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """Read the MANA arch config from the shapes of an authors' state_dict.

    Args:
        state_dict (Mapping[str, Tensor]): Authors' state_dict without the
            ``module.`` prefix (the distance matrix may be present).

    Returns:
        dict: ``type='MANA'`` and its keyword arguments.
    """
    conv_first = _require(state_dict, 'conv_first.weight', 4)
    phi = _require(state_dict, 'nonloc_spatial.phi.weight', 4)
    w_z = _require(state_dict, 'nonloc_spatial.W_z.weight', 4)
    bank = _require(state_dict, 'nonloc_spatial.mb', 2)
    conv_hr = _require(state_dict, 'conv_hr.weight', 4)
    conv_last = _require(state_dict, 'conv_last.weight', 4)
    embed_dim = phi.shape[0]
    if w_z.shape[1] % embed_dim != 0:
        raise ConversionError(
            f'{SOURCE}: nonloc_spatial.W_z.weight has {w_z.shape[1]} input '
            f'channels, not a multiple of the embedding dim {embed_dim} '
            '(frames x embedding)'
        )
    return dict(
        type='MANA',
        num_in_ch=conv_first.shape[1],
        num_out_ch=conv_last.shape[0],
        num_feat=conv_first.shape[0],
        num_frames=w_z.shape[1] // embed_dim,
        num_encoder_blocks=count_blocks(state_dict, 'encoder', SOURCE),
        num_decoder_blocks=count_blocks(state_dict, 'decoder', SOURCE),
        embed_dim=embed_dim,
        num_groups=32,
        num_slots=bank.shape[1],
        hr_feat=conv_hr.shape[0],
    )


@CONVERTERS.register_module(name=SOURCE)
def convert_mana_official(
    state_dict: Mapping[str, torch.Tensor], scale: Optional[int] = None
) -> Tuple[Dict[str, torch.Tensor], dict]:
    """MANA authors' checkpoints (jiy173/MANA models.mana) -> MANA.

    Every key except the dropped distance matrix must map to exactly one MANA
    parameter with the same shape; anything else raises
    :class:`ConversionError` naming the keys.

    Args:
        state_dict (Mapping[str, Tensor]): The authors' state_dict, e.g. from
            :func:`basicattn.checkpoint.state.read_state_dict`.
        scale (int, optional): Must be None or 4 (MANA is x4 only).

    Returns:
        tuple[dict, dict]: The MANA state_dict and the arch config.
    """
    if scale not in (None, 4):
        raise ConversionError(f'{SOURCE}: MANA is x4 only, got scale {scale!r}')
    return convert_by_rules(strip_and_drop(state_dict), MANA_RULES, infer_mana_kwargs, SOURCE)


#: MANA weights are x4 only (recorded as the scale of converted files).
convert_mana_official.fixed_scale = 4


#: What :mod:`basicattn.converters.detect` recognises: ``models.mana``'s keys.
convert_mana_official.signature = FormatSignature(
    keys=(
        'conv_first.weight',
        DISTANCE_KEY,
        'nonloc_spatial.mb',
        'nonloc_spatial.phi.weight',
        'nonloc_spatial.W_z.weight',
        'conv_hr.weight',
        'conv_last.weight',
    ),
    describe="MANA authors' checkpoints (jiy173/MANA models.mana, x4)",
    scale_from_shapes=lambda sd: 4,
    rename=lambda sd: rename_state_dict(strip_and_drop(sd), MANA_RULES, SOURCE),
)
