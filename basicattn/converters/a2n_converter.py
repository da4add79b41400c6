"""Converter for the A2N authors' weights (haoyuc/A2N, ``aan_x{2,3}.pt``).

The official files are bare state_dicts of the authors' ``AAN`` model in
the legacy torch format, trained on pixel values in [0, 255]. The
conversion is a pure rename (see the table in
``basicattn/archs/a2n_arch.py``); the pixel range is handled by the arch's
``img_range=255`` argument, so tensors are copied unchanged.

x2 and x3 weights have identical shapes (the upsampler's nearest factor has
no parameters), hence ``scale`` must be given. x4 weights carry a second
upsampling stage (``upconv2``/``att2``/``HRconv2``) and are checked for it.
The widths, the number of blocks, the dropout reduction and the
non-attention kernel (3x3: A2N, 1x1: A2N-M) are read from the shapes.
"""

import functools
from typing import Dict, Mapping, Optional, Tuple

import torch

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

SOURCE = 'a2n_official'

#: Official key (full match) -> basicattn key.
A2N_RULES = rules_from_table(r"""
    conv_first\.(weight|bias)                             conv_first.\1
    AAB_trunk\.(\d+)\.conv_first\.weight                  blocks.\1.conv_in.weight
    AAB_trunk\.(\d+)\.ADM\.0\.weight                      blocks.\1.adm.fc1.weight
    AAB_trunk\.(\d+)\.ADM\.2\.weight                      blocks.\1.adm.fc2.weight
    AAB_trunk\.(\d+)\.attention\.(k[1-4])\.(weight|bias)  blocks.\1.attention.\2.\3
    AAB_trunk\.(\d+)\.non_attention\.weight               blocks.\1.non_attention.weight
    AAB_trunk\.(\d+)\.conv_last\.weight                   blocks.\1.conv_out.weight
    trunk_conv\.(weight|bias)                             conv_body.\1
    upconv1\.(weight|bias)                                upsampler.0.up_conv.\1
    att1\.conv\.(weight|bias)                             upsampler.0.pa.conv.\1
    HRconv1\.(weight|bias)                                upsampler.0.hr_conv.\1
    upconv2\.(weight|bias)                                upsampler.1.up_conv.\1
    att2\.conv\.(weight|bias)                             upsampler.1.pa.conv.\1
    HRconv2\.(weight|bias)                                upsampler.1.hr_conv.\1
    conv_last\.(weight|bias)                              conv_last.\1
""")


_require = functools.partial(require_tensor, source=SOURCE)


def has_second_stage(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for x4 weights: a second upsampling stage (``upconv2``/``att2``/``HRconv2``)."""
    return any(k.startswith(('upconv2.', 'att2.', 'HRconv2.')) for k in state_dict)


def scale_from_shapes(state_dict: Mapping[str, torch.Tensor]) -> Optional[int]:
    """4 for weights with a second upsampling stage; None for x2 or x3 (same shapes)."""
    return 4 if has_second_stage(state_dict) else None


def infer_a2n_kwargs(state_dict: Mapping[str, torch.Tensor], scale: Optional[int]) -> dict:
    """Read the A2N arch config from the shapes of an official state_dict.

    Args:
        state_dict (Mapping[str, Tensor]): Official (``AAN``) state_dict.
        scale (int): 2, 3 or 4.

    Returns:
        dict: ``type='A2N'`` and its keyword arguments.
    """
    if scale is None:
        raise ConversionError(
            f'{SOURCE}: the scale must be given (--scale): x2 and x3 weights have identical shapes'
        )
    if scale not in (2, 3, 4):
        raise ConversionError(f'{SOURCE}: scale must be 2, 3 or 4, got {scale!r}')
    has_stage2 = has_second_stage(state_dict)
    if scale == 4 and not has_stage2:
        raise ConversionError(
            f'{SOURCE}: scale 4 needs a second upsampling stage (upconv2.*, '
            'att2.*, HRconv2.*) but the checkpoint has none: these are x2 '
            'or x3 weights'
        )
    if scale != 4 and has_stage2:
        raise ConversionError(
            f'{SOURCE}: the checkpoint has a second upsampling stage '
            f'(upconv2.*): these are x4 weights, not x{scale}'
        )
    conv_first = _require(state_dict, 'conv_first.weight', 4)
    upconv1 = _require(state_dict, 'upconv1.weight', 4)
    conv_last = _require(state_dict, 'conv_last.weight', 4)
    fc1 = _require(state_dict, 'AAB_trunk.0.ADM.0.weight', 2)
    non_att = _require(state_dict, 'AAB_trunk.0.non_attention.weight', 4)
    num_block = count_blocks(state_dict, 'AAB_trunk', SOURCE)
    num_feat = conv_first.shape[0]
    if fc1.shape[0] == 0 or num_feat % fc1.shape[0] != 0:
        raise ConversionError(
            f'{SOURCE}: AAB_trunk.0.ADM.0.weight has shape '
            f'{tuple(fc1.shape)}, not (num_feat // reduction, {num_feat})'
        )
    kernel = non_att.shape[-1]
    if kernel not in (1, 3):
        raise ConversionError(
            f'{SOURCE}: AAB_trunk.0.non_attention.weight has kernel '
            f'{tuple(non_att.shape[-2:])}, expected 3x3 (A2N) or 1x1 (A2N-M)'
        )
    return dict(
        type='A2N',
        num_in_ch=conv_first.shape[1],
        num_out_ch=conv_last.shape[0],
        num_feat=num_feat,
        unf=upconv1.shape[0],
        num_block=num_block,
        upscale=scale,
        non_attention=f'{kernel}x{kernel}',
        reduction=num_feat // fc1.shape[0],
        temperature=30.0,
        img_range=255.0,
    )


@CONVERTERS.register_module(name=SOURCE)
def convert_a2n_official(
    state_dict: Mapping[str, torch.Tensor], scale: Optional[int] = None
) -> Tuple[Dict[str, torch.Tensor], dict]:
    """A2N authors' weights (haoyuc/A2N aan_x*.pt, [0,255] range) -> A2N.

    Every official key must map to exactly one A2N parameter with the same
    shape; anything else raises :class:`ConversionError` naming the keys.

    Args:
        state_dict (Mapping[str, Tensor]): The official state_dict, e.g. from
            :func:`basicattn.checkpoint.state.read_state_dict`.
        scale (int): Upscaling factor of the weights (2, 3 or 4).

    Returns:
        tuple[dict, dict]: The A2N state_dict and the arch config
        (``type='A2N'``, ``img_range=255.0`` and the inferred widths).
    """
    return convert_by_rules(state_dict, A2N_RULES, lambda sd: infer_a2n_kwargs(sd, scale), SOURCE)


#: What :mod:`basicattn.converters.detect` recognises: the authors' ``AAN`` keys.
convert_a2n_official.signature = FormatSignature(
    keys=(
        'conv_first.weight',
        'AAB_trunk.0.ADM.0.weight',
        'AAB_trunk.0.attention.k1.weight',
        'trunk_conv.weight',
        'upconv1.weight',
        'att1.conv.weight',
        'HRconv1.weight',
        'conv_last.weight',
    ),
    describe="A2N authors' weights (haoyuc/A2N aan_x2/x3/x4.pt)",
    scale_from_shapes=scale_from_shapes,
    rename=lambda sd: rename_state_dict(sd, A2N_RULES, SOURCE),
)
