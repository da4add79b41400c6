"""The attention-dropout probe of A2N (Sec. 3.1-3.2, Table 2).

Reference:
    Haoyu Chen, Jinjin Gu, Zhi Zhang. "Attention in Attention Network for
    Image Super-Resolution". arXiv:2104.09497, 2021. Section 3.1 builds "a
    simple attention-based model, which consists of ten attention blocks",
    each with "a channel- and spatial-wise attention layer so that every pixel
    has an individual attention coefficient", gated by a sigmoid; Section 3.2
    turns the attention of chosen blocks off ("downgraded to a non-attentional
    block by simply removing the attention generator") and Table 2 lists
    PSNR and size of five choices: all 9.2 M, none 4.4 M, half of the blocks
    6.8 M.

The probe (``type: AttentionProbe``)::

    x0 = conv3x3(lr)                                       3 -> C
    block b (attention):  x + conv3x3(lrelu(x)) * M(x)     M(x) = sigmoid(k2(lrelu(k1(x))))
    block b (plain):      x + conv3x3(lrelu(x))
    sr = reconstruction(x10) + bilinear(lr)

``M`` is the attention generator: ``k1`` a 3x3 conv C -> C without bias,
``k2`` a 1x1 conv C -> C with bias, A2N's own channel-spatial attention
generator (paper Sec. 4.2 / Fig. 5, the authors' ``k1``/``k2``). Its map has
shape (N, C, H, W): one coefficient per pixel and channel. The
reconstruction is A2N's (nearest-neighbour stages of 3x3 conv -> LeakyReLU
-> 3x3 conv -> LeakyReLU to ``unf`` channels, then a 3x3 conv to RGB; a
bilinear upsampling of the input is added, paper eq. 2) without its pixel
attention, so that the blocks hold the only attention of the network.

What the paper does not say, and how it is chosen here (docs/analysis.md,
"The attention-dropout study", shows the arithmetic):

* **Width and layer shapes.** The paper gives only the three sizes. The
  attention generators of ten blocks weigh 9.2 - 4.4 = 4.8 M, so one weighs
  about 0.48 M, *more* than a whole plain block (at most 0.44 M): a
  generator larger than the two-conv EDSR block it would gate cannot be
  matched at any single width. With one 3x3 conv per block and A2N's
  3x3 + 1x1 generator (10 C^2 against 9 C^2 weights) the three sizes are met
  by exactly one width, ``C = 219``: 9,186,705 (all, paper 9.2 M),
  4,388,415 (none, 4.4 M) and 6,787,560 (five blocks, 6.8 M) at x4.
* **Activation**: LeakyReLU(0.2), as in A2N; the block is pre-activated so
  that its residual can take either sign.
* **Scales**: x4 is the study's; x2 and x3 use one reconstruction stage, as
  A2N does (fewer parameters).

Blocks are numbered from 1 in ``attention_blocks``, as in the paper; their
module names count from 0 (``blocks.0`` is the paper's block 1).

Taps (:mod:`basicattn.archs.taps`), only on the blocks that keep attention:

* ``blocks.{i}.attention_map``: the sigmoid gate ``M(x)`` of block ``i``
  (0-based module index), (N, C, H, W) in (0, 1).
"""

from typing import List, Literal, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from basicattn.registry import ARCHS
from basicattn.utils.bounds import PositiveInt, check_positive_int, is_int

from .arch_util import conv3x3, lrelu
from .taps import Tap

__all__ = ['AttentionProbe', 'ProbeBlock', 'resolve_attention_blocks']

#: A2N's LeakyReLU slope.
_SLOPE = 0.2

#: ``attention_blocks`` values: every block, no block, or 1-based block numbers.
AttentionBlocks = Union[Literal['all', 'none'], List[int]]


def resolve_attention_blocks(value, num_block: int, owner: str = 'AttentionProbe') -> Tuple[int]:
    """The sorted 1-based numbers of the blocks that keep attention.

    Args:
        value: ``'all'``, ``'none'`` or a list of distinct block numbers in
            ``1..num_block`` (in any order).
        num_block: Number of blocks of the network.
        owner: Put first in error messages.

    Returns:
        tuple[int]: E.g. ``(6, 7, 8, 9, 10)``; ``()`` for ``'none'``.

    Raises:
        ValueError: Any other value, naming it and what is allowed.
    """
    allowed = f"'all', 'none' or a list of distinct block numbers 1..{num_block}"
    if isinstance(value, str):
        if value == 'all':
            return tuple(range(1, num_block + 1))
        if value == 'none':
            return ()
        raise ValueError(f'{owner}: attention_blocks={value!r} is not {allowed}')
    if not isinstance(value, (list, tuple)):
        raise ValueError(f'{owner}: attention_blocks={value!r} is not {allowed}')
    if not value:
        raise ValueError(f"{owner}: attention_blocks=[] is empty; write 'none' for no attention")
    for number in value:
        if not is_int(number) or not 1 <= number <= num_block:
            raise ValueError(
                f'{owner}: attention_blocks: {number!r} is not a block number; the blocks are '
                f'numbered 1..{num_block} (1-based, as in the paper)'
            )
    repeated = sorted({n for n in value if list(value).count(n) > 1})
    if repeated:
        raise ValueError(f'{owner}: attention_blocks names block {repeated[0]} twice')
    return tuple(sorted(int(n) for n in value))


class AttentionGenerator(nn.Module):
    """A2N's channel-spatial attention generator: ``sigmoid(k2(lrelu(k1(x))))``.

    ``k1``: 3x3 conv without bias; ``k2``: 1x1 conv with bias. The map has
    the shape of ``x``; it is passed through the ``attention_map`` tap.

    Args:
        num_feat (int): Channels of ``x`` and of the map.
    """

    def __init__(self, num_feat: int):
        super().__init__()
        self.k1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False)
        self.k2 = nn.Conv2d(num_feat, num_feat, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.k2(lrelu(self.k1(x), _SLOPE)))


class ProbeBlock(nn.Module):
    """One residual block of the probe, with or without attention.

    ``x + conv3x3(lrelu(x)) * M(x)`` with attention, ``x + conv3x3(lrelu(x))``
    without (the generator ``M`` and its tap do not exist then).

    Args:
        num_feat (int): Channels.
        attention (bool): Keep the attention generator.
    """

    def __init__(self, num_feat: int, attention: bool):
        super().__init__()
        self.body = conv3x3(num_feat, num_feat)
        self.has_attention = attention
        if attention:
            self.generator = AttentionGenerator(num_feat)
            self.attention_map = Tap()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = self.body(lrelu(x, _SLOPE))
        if self.has_attention:
            res = res * self.attention_map(self.generator(x))
        return x + res


class _UpStage(nn.Sequential):
    """Nearest upsampling -> 3x3 conv -> LeakyReLU -> 3x3 conv -> LeakyReLU.

    A2N's reconstruction stage without its pixel attention.
    """

    def __init__(self, in_ch: int, num_feat: int, scale: int):
        super().__init__(
            nn.Upsample(scale_factor=scale, mode='nearest'),
            conv3x3(in_ch, num_feat),
            nn.LeakyReLU(_SLOPE),
            conv3x3(num_feat, num_feat),
            nn.LeakyReLU(_SLOPE),
        )


@ARCHS.register_module()
class AttentionProbe(nn.Module):
    """A2N's attention-dropout probe: ten residual blocks, attention where asked.

    RGB in [0, 1], (N, C, H, W) -> (N, C, H * upscale, W * upscale). See the
    module docstring for the structure and the choices the paper leaves open.
    Parameters at x4 with the defaults: 4,388,415 + 479,829 per block with
    attention (9,186,705 for ``'all'``).

    Taps (:attr:`TAPS`): ``blocks.{i}.attention_map``, the sigmoid gate of
    block ``i`` (0-based module index; blocks with attention only),
    (N, C, H, W) in (0, 1).

    Args:
        num_in_ch (int): Input channels. Default: 3.
        num_out_ch (int): Output channels (equal to ``num_in_ch``: the input
            is upsampled and added). Default: 3.
        num_feat (int): Width of the blocks (fitted to Table 2's sizes).
            Default: 219.
        unf (int): Width of the reconstruction, A2N's. Default: 24.
        num_block (int): Residual blocks, the paper's ten. Default: 10.
        upscale (int): 2, 3 or 4. Default: 4.
        attention_blocks (str | list[int]): The blocks that keep attention:
            ``'all'``, ``'none'`` or 1-based block numbers (``[6, 7, 8, 9,
            10]``). Default: ``'all'``.
    """

    # paper Sec. 3.2, Table 2: all blocks with attention, x4: 9.2 M (the other
    # rows: tests/archs/test_attention_probe_arch.py)
    PAPER_PARAMS = (dict(), 9_186_705)
    #: The ONNX graph holds for any batch, height and width (``tools/export.py
    #: --dynamic``, checked at a second size; docs/deploy.md).
    ONNX_DYNAMIC_HW = True
    #: bf16 (autocast) output against float32, PSNR in dB, measured on the tiny case by
    #: tests/archs/test_bf16_fidelity.py; at least 40 lets --precision bf16 / auto run it
    #: (basicattn/models/inference_precision.py).
    BF16_PSNR_DB = 70.4

    TAPS = {
        'blocks.{i}.attention_map': 'sigmoid gate of block i (0-based; only blocks with '
        'attention), (N, C, H, W) in (0, 1)',
    }

    def __init__(
        self,
        num_in_ch: PositiveInt = 3,
        num_out_ch: PositiveInt = 3,
        num_feat: PositiveInt = 219,
        unf: PositiveInt = 24,
        num_block: PositiveInt = 10,
        upscale: PositiveInt = 4,
        attention_blocks: AttentionBlocks = 'all',
    ):
        super().__init__()
        for name, value in (('num_feat', num_feat), ('unf', unf), ('num_block', num_block)):
            check_positive_int(value, name, 'AttentionProbe')
        if upscale not in (2, 3, 4):
            raise ValueError(f'AttentionProbe: upscale must be 2, 3 or 4, got {upscale!r}')
        if num_in_ch != num_out_ch:
            raise ValueError(
                'AttentionProbe adds a bilinear upsampling of the input to the output, so '
                f'num_in_ch ({num_in_ch}) must equal num_out_ch ({num_out_ch})'
            )
        self.upscale = upscale
        self.num_block = num_block
        #: 1-based numbers of the blocks with attention, sorted.
        self.attention_blocks = resolve_attention_blocks(attention_blocks, num_block)
        self.conv_first = conv3x3(num_in_ch, num_feat)
        self.blocks = nn.Sequential(
            *[ProbeBlock(num_feat, i + 1 in self.attention_blocks) for i in range(num_block)]
        )
        stage_scales: Sequence[int] = (2, 2) if upscale == 4 else (upscale,)
        self.upsampler = nn.Sequential(
            *[_UpStage(num_feat if j == 0 else unf, unf, s) for j, s in enumerate(stage_scales)]
        )
        self.conv_last = conv3x3(unf, num_out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve ``x`` (N, C, H, W) in [0, 1]."""
        if x.dim() != 4:
            raise ValueError(
                f'AttentionProbe expects a 4-D (N, C, H, W) input, got shape {tuple(x.shape)}'
            )
        out = self.conv_last(self.upsampler(self.blocks(self.conv_first(x))))
        skip = F.interpolate(x, scale_factor=self.upscale, mode='bilinear', align_corners=False)
        return out + skip
