"""DKSAN: Deformable Kernel Spatial Attention Network (video SR, x16).

Reference:
    Xuan Xu et al., "Deformable Kernel Convolutional Network for Video
    Extreme Super-Resolution", ECCV 2020 Workshops (AIM 2020 Video Extreme
    Super-Resolution Challenge, 2nd place in both tracks);
    https://arxiv.org/abs/2010.00154. The network is called DKSAN in the
    paper. The text we work from lacks its figures; there is no official
    code. Method and our choices: docs/models/dksan.md.

Seven LR frames -> the x16 centre frame (paper Fig. 1, eq. 2-8)::

    F_fea    = E_res(I^LR)                     per frame: conv + 5 resblocks
    F_n^al   = DKCAlign(F_n, F_r)              every neighbour n != r
    F_fusion = W_E([F_{r-3}^al, ..., F_r, ..., F_{r+3}^al])       1x1 conv
    Y_1      = U_1(Recon_1(F_fusion))   + B2x(I_r^LR)                 (5)
    Y_k      = U_k(Recon_k(E_k(Y_k-1))) + B2x(Y_k-1),  k = 2..L      (6-8)
    Recon_k(x) = DKSA_k(RCABs_k(x)) + x                              (12)

with ``L = log2(upscale)`` cascade levels (4 for x16, 2 for x4), each a x2
step. Blocks (:mod:`basicattn.archs.dksan_blocks`): RCAB = RCAN's
conv-ReLU-conv + channel attention (r = 16); DKCAlign = conv on
``[F_n, F_r]`` -> stacked deformable kernel conv (DKC) layers -> offsets and
masks of a modulated deformable conv (DCNv2) that samples ``F_n``; DKSA =
conv -> stacked DKC layers -> sigmoid map multiplying the features; U_k =
conv, PixelShuffle(2), LeakyReLU, conv to RGB.

How we read eq. 5-8 (the paper's equations are explicit here): level 1
starts from the fused LR *features*; every later level starts from the
previous level's *RGB output* ``Y_k-1`` (a 2^(k-1) x SR frame), through its
own "preliminary feature extractor" ``E_k``; the x2 bicubic of that RGB
output is the level's skip. Each level therefore sees only the
reconstructed frame of the level before, not its features.

Choices the paper leaves open (defaults in brackets):

* ``E_res`` [conv 3x3 3 -> C, LeakyReLU(0.1), ``num_extract_blocks`` = 5
  residual blocks conv-ReLU-conv without BN]: EDVR's feature extractor,
  which the paper cites for it.
* ``E_k``, k > 1 [one 3x3 conv 3 -> C]: "preliminary feature extractors",
  size not given. Table 3's counts (backbone 26.1M, + channel attention
  26.3M) leave room for about one conv per level (five residual blocks per
  level would add 4.4M); see ``docs/models/dksan.md``.
* ``Recon_k``: the RCAB stack and DKSA, then the skip of eq. 12; no RCAN
  group-tail conv (Table 3's counts rule out one 3x3 conv per level).
* ``U_k`` [conv C -> 4C, PixelShuffle(2), LeakyReLU(0.1), conv C -> 3]:
  Fig. 4 ("several Conv layers, PixelShuffle and LeakyReLU"; the last conv
  has 3 outputs).
* ``B2x`` [MATLAB-exact bicubic x2, :func:`basicattn.utils.matlab_imresize.
  imresize`]: "Bicubic interpolation", kind not given; the toolbox's LR
  frames and its ``Bicubic`` baseline use the same kernel (a = -0.5).
* DKC Align [``align_dkc=2`` DKC layers ("several"), ``deform_groups=8``
  (EDVR's)]: ``f`` is a 3x3 conv 2C -> C (eq. 10); every DKC layer has 128
  filters (Sec. 4.2), so a zero-initialised 3x3 conv (EDVR's DCNv2Pack
  head, ``conv_offset``) turns the last DKC output into the ``3 * dg * 9``
  offset and mask channels (mmcv layout, sigmoid masks). LeakyReLU(0.1)
  after ``f`` and each DKC layer. One module shared by all neighbours (as
  EDVR's PCD). The reference feature is not aligned (eq. 3: n != r) and
  takes its own slot in the concatenation, so the 1x1 fusion is
  ``T*C -> C``.
* DKC layers [dense 3x3, ``scope_size=4``, ``kernel_offsets=True``,
  ``dkc_image_offsets=True``]: eq. 11 reads taps ``W_{k + dk}`` at
  ``p + p_k + dp_k``, so both offset fields are predicted from the layer
  input by zero-initialised 3x3 convs (Gao et al.'s 4x4 scope for 3x3
  kernels; no modulation, none in eq. 11). ``kernel_offsets=False`` gives
  fixed taps (the variant a version of the authors' code reportedly runs;
  it is not public). See :mod:`basicattn.ops.deform_kernel`.
* DKSA [``dksa_layers=(1, 2, 2, 2)``]: Fig. 3(b) "a couple of stacked DKC
  layers" after one conv; we take the sigmoid of the last DKC layer (128
  filters) as the attention map (per pixel and channel, as EDVR's spatial
  attention) and multiply it with the RCAB output. The light DKSA of level 1
  (Fig. 3c, not described in the text) has one DKC layer.
* Initialisation: PyTorch's defaults; offset predictors zero (mmcv).

Ablations (paper Table 3; :data:`DKSAN_VARIANTS`): ``use_align=False``
concatenates the unaligned features; ``use_dksa=False`` drops DKSA
(``Recon = RCABs + x``); ``channel_attention=False`` turns RCABs into plain
residual blocks ("backbone: only resblocks").

Parameters: 30,297,600 with the defaults (x16); the paper says 29.5M. Our
backbone and "w/o alignment & DKSA" models match its 26.1M / 26.3M to the
rounding; the difference is in DKC Align and DKSA, whose layer counts and
offset predictors the paper does not give (``docs/models/dksan.md``).

Attention taps (:mod:`basicattn.archs.taps`; record them with
:func:`basicattn.analysis.taps.record_taps`), levels counted from 0:

* ``levels.{k}.dksa.spatial_map``: the DKSA attention map of level k (x2
  per level), per pixel and channel, (N, C, h * 2^k, w * 2^k).
* ``align.offset_magnitude``: the mean length in LR pixels of DKC Align's
  DCN offsets (over deformable groups and kernel points) for each
  neighbour frame, (N, T - 1, h, w); computed only while recorded.
"""

from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn

from basicattn.archs.edsr_arch import ResBlock
from basicattn.registry import ARCHS
from basicattn.utils.bounds import is_int

from .arch_util import bicubic_upsample, conv3x3, lrelu
from .dksan_blocks import DKSA, RCAB, DKCAlign, UpscaleX2

__all__ = ['DKSAN', 'CascadeLevel', 'DKSAN_VARIANTS']

#: Paper defaults per cascade level (x2, x4, x8, x16), Sec. 4.2 / Fig. 3.
PAPER_NUM_RCAB = (30, 20, 15, 10)
PAPER_DKSA_LAYERS = (1, 2, 2, 2)  # the light DKSA of level 1 has one DKC

#: Table 3 of the paper as DKSAN keyword arguments:
#: ``DKSAN(**DKSAN_VARIANTS['wo_dksa'])``.
DKSAN_VARIANTS = {
    'backbone': dict(use_align=False, use_dksa=False, channel_attention=False),  # only resblocks
    'wo_align_dksa': dict(use_align=False, use_dksa=False),
    'wo_dksa': dict(use_dksa=False),
    'DKSAN': dict(),
}


def _per_level(
    name: str, value: Optional[Sequence[int]], paper: Sequence[int], levels: int, minimum: int
) -> List[int]:
    """A per-level list: the given one (checked) or the paper's, truncated."""
    if value is None:
        if levels > len(paper):
            raise ValueError(
                f'{name}: the paper gives {len(paper)} levels (x16); an '
                f'upscale with {levels} levels needs {name} as a list of '
                f'{levels} integers'
            )
        return list(paper[:levels])
    if (
        not isinstance(value, (list, tuple))
        or len(value) != levels
        or not all(is_int(v) and v >= minimum for v in value)
    ):
        raise ValueError(
            f'{name} must be a list of {levels} integers >= {minimum} (one '
            f'per x2 level of the upscale), got {value!r}'
        )
    return list(value)


class CascadeLevel(nn.Module):
    """One x2 level of the cascade (eq. 5-8, 12).

    ``Y_k = U_k(Recon_k(x_k)) + B2x(Y_k-1)`` with ``x_1 = F_fusion`` and
    ``x_k = E_k(Y_k-1)`` for ``k > 1``, ``Recon_k(x) = DKSA(RCABs(x)) + x``.

    Args:
        num_feat (int): Channels.
        num_rcab (int): RCABs in the reconstruction module.
        dksa_layers (int): DKC layers of the DKSA; 0 = no DKSA.
        first (bool): Level 1, fed with features (no ``E_k``).
        num_ch (int): Image channels (RGB: 3).
        reduction (int): Channel attention ratio.
        channel_attention (bool): RCABs (True) or plain resblocks.
        **dkc_kwargs: Of :func:`~basicattn.archs.dksan_blocks.dkc_layer`.
    """

    def __init__(
        self,
        num_feat: int,
        num_rcab: int,
        dksa_layers: int,
        first: bool,
        num_ch: int = 3,
        reduction: int = 16,
        channel_attention: bool = True,
        **dkc_kwargs,
    ):
        super().__init__()
        self.entry = None if first else conv3x3(num_ch, num_feat)  # E_k
        self.rcabs = nn.Sequential(
            *[RCAB(num_feat, reduction, channel_attention) for _ in range(num_rcab)]
        )
        self.dksa = DKSA(num_feat, dksa_layers, **dkc_kwargs) if dksa_layers else None
        self.upscale = UpscaleX2(num_feat, num_ch)

    def forward(self, prev: torch.Tensor, feat: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Super-resolve ``prev`` by 2.

        Args:
            prev (Tensor): The previous output ``Y_k-1`` (the LR reference
                frame at level 1), (B, num_ch, h, w).
            feat (Tensor, optional): ``F_fusion`` (B, C, h, w); level 1 only.

        Returns:
            Tensor: ``Y_k`` (B, num_ch, 2h, 2w).
        """
        if (feat is None) != (self.entry is not None):
            raise ValueError(
                'level 1 takes the fused features, later levels only the previous output'
            )
        x = feat if feat is not None else self.entry(prev)
        rec = self.rcabs(x)
        if self.dksa is not None:
            rec = self.dksa(rec)
        return self.upscale(rec + x) + bicubic_upsample(prev, 2)


@ARCHS.register_module()
class DKSAN(nn.Module):
    """DKSAN (Xu et al., ECCVW 2020): 7 LR frames -> x16 centre frame.

    Args:
        num_in_ch (int): Image channels; the output has the same (the
            bicubic skips need it). Default: 3.
        num_feat (int): Channels of every conv and DKC layer. Default: 128.
        num_frames (int): Frames per window, odd; the centre one is the
            reference. Default: 7.
        upscale (int): A power of two >= 2; ``log2(upscale)`` x2 levels.
            Default: 16.
        num_extract_blocks (int): Residual blocks of the per-frame feature
            extractor. Default: 5.
        num_rcab (Sequence[int], optional): RCABs per level, one entry per
            level. Default: None = the paper's ``(30, 20, 15, 10)``, its
            first ``log2(upscale)`` entries for smaller scales.
        dksa_layers (Sequence[int], optional): DKC layers of each level's
            DKSA (>= 1). Default: None = ``(1, 2, 2, 2)`` (the light DKSA at
            level 1), truncated likewise.
        reduction (int): Channel attention ratio r. Default: 16.
        align_dkc (int): DKC layers in DKC Align (>= 0). Default: 2.
        deform_groups (int): Deformable groups of the alignment DCN.
            Default: 8.
        scope_size (int): Scope kernel side of the DKC layers (>= 3).
            Default: 4.
        kernel_offsets (bool): Kernel-space offsets in the DKC layers (the
            paper); False gives fixed taps. Default: True.
        dkc_image_offsets (bool): Image-space offsets in the DKC layers
            (eq. 11). Default: True.
        use_align (bool): DKC Align (Table 3 ablation). Default: True.
        use_dksa (bool): DKSA in every level (Table 3 ablation).
            Default: True.
        channel_attention (bool): RCABs with channel attention; False gives
            plain residual blocks (Table 3 "backbone"). Default: True.

    Input: (N, num_frames, num_in_ch, h, w), RGB in [0, 1]. Output:
    (N, num_in_ch, upscale * h, upscale * w), the centre frame, not clipped.
    """

    # x16, 7 frames -> centre, four x2 levels (paper: 29.5M; Table 3's 26.1M / 26.3M rows match)
    PAPER_PARAMS = (dict(), 30_297_600)
    TAKES_FRAMES = True
    #: The ONNX graph holds for any batch, height and width (``tools/export.py
    #: --dynamic``, checked at a second size; docs/deploy.md): the deformable
    #: sampling grids and the bicubic skips are computed from the traced size.
    ONNX_DYNAMIC_HW = True
    #: bf16 (autocast) output against float32, PSNR in dB, measured on the tiny case by
    #: tests/archs/test_bf16_fidelity.py; at least 40 lets --precision bf16 / auto run it
    #: (basicattn/models/inference_precision.py).
    BF16_PSNR_DB = 53.5

    #: Attention taps, name pattern -> meaning (module docstring; docs/models/dksan.md).
    TAPS = {
        'levels.{k}.dksa.spatial_map': 'DKSA spatial attention map of level k, (N, C, H_k, W_k)',
        'align.offset_magnitude': 'mean DCN offset length of DKC Align per neighbour frame, '
        '(N, T - 1, h, w)',
    }

    def __init__(
        self,
        num_in_ch: int = 3,
        num_feat: int = 128,
        num_frames: int = 7,
        upscale: int = 16,
        num_extract_blocks: int = 5,
        num_rcab: Optional[Sequence[int]] = None,
        dksa_layers: Optional[Sequence[int]] = None,
        reduction: int = 16,
        align_dkc: int = 2,
        deform_groups: int = 8,
        scope_size: int = 4,
        kernel_offsets: bool = True,
        dkc_image_offsets: bool = True,
        use_align: bool = True,
        use_dksa: bool = True,
        channel_attention: bool = True,
    ):
        super().__init__()
        for name, value, low in (
            ('num_in_ch', num_in_ch, 1),
            ('num_feat', num_feat, 1),
            ('num_frames', num_frames, 1),
            ('num_extract_blocks', num_extract_blocks, 0),
            ('reduction', reduction, 1),
            ('align_dkc', align_dkc, 0),
            ('deform_groups', deform_groups, 1),
            ('scope_size', scope_size, 3),
        ):
            if not is_int(value) or value < low:
                raise ValueError(f'{name} must be an integer >= {low}, got {value!r}')
        if num_frames % 2 == 0:
            raise ValueError(f'num_frames must be odd (a centre reference frame), got {num_frames}')
        if not is_int(upscale) or upscale < 2 or upscale & (upscale - 1):
            raise ValueError(
                f'upscale must be a power of two >= 2 (a cascade of x2 levels), got {upscale!r}'
            )
        if num_feat // reduction < 1 and channel_attention:
            raise ValueError(
                f'reduction={reduction} leaves no hidden channel for num_feat={num_feat}'
            )
        if use_align and num_feat % deform_groups:
            raise ValueError(
                f'num_feat={num_feat} must be divisible by deform_groups={deform_groups}'
            )
        levels = upscale.bit_length() - 1
        num_rcab = _per_level('num_rcab', num_rcab, PAPER_NUM_RCAB, levels, 0)
        dksa_layers = _per_level('dksa_layers', dksa_layers, PAPER_DKSA_LAYERS, levels, 1)
        self.num_frames = num_frames
        self.upscale = upscale
        self.use_align = use_align
        self.use_dksa = use_dksa
        dkc = dict(
            scope_size=scope_size, kernel_offsets=kernel_offsets, image_offsets=dkc_image_offsets
        )

        # E_res (eq. 2)
        self.conv_first = conv3x3(num_in_ch, num_feat)
        self.feature_extraction = nn.Sequential(
            *[ResBlock(num_feat) for _ in range(num_extract_blocks)]
        )
        # DKC Align and W_E (eq. 3-4)
        self.align = DKCAlign(num_feat, align_dkc, deform_groups, **dkc) if use_align else None
        self.fusion = nn.Conv2d(num_frames * num_feat, num_feat, 1)
        # the cascade (eq. 5-8)
        self.levels = nn.ModuleList(
            CascadeLevel(
                num_feat,
                n,
                d if use_dksa else 0,
                first=k == 0,
                num_ch=num_in_ch,
                reduction=reduction,
                channel_attention=channel_attention,
                **dkc,
            )
            for k, (n, d) in enumerate(zip(num_rcab, dksa_layers))
        )

    def fuse(self, x: torch.Tensor) -> torch.Tensor:
        """Eq. 2-4: per-frame features, alignment, 1x1 fusion.

        Args:
            x (Tensor): (N, T, C, h, w).

        Returns:
            Tensor: ``F_fusion`` (N, num_feat, h, w).
        """
        t = x.shape[1]
        # plain reshapes with sizes read from the tensors (not einops): an ONNX
        # export then records them as graph values, so the graph holds for any size
        feats = self.feature_extraction(lrelu(self.conv_first(x.flatten(0, 1))))
        _, c, h, w = feats.shape
        feats = feats.reshape(-1, t, c, h, w)
        if self.align is not None:
            r = t // 2
            ref = feats[:, r]
            nbrs = torch.cat((feats[:, :r], feats[:, r + 1 :]), dim=1)
            aligned = self.align(nbrs, ref)
            feats = torch.cat((aligned[:, :r], ref[:, None], aligned[:, r:]), dim=1)
        return self.fusion(feats.flatten(1, 2))

    def forward(
        self, x: torch.Tensor, return_levels: bool = False
    ) -> Union[torch.Tensor, List[torch.Tensor]]:
        """Super-resolve the centre frame of a window.

        Args:
            x (Tensor): (N, T, C, h, w) with ``T = num_frames``, in [0, 1].
            return_levels (bool): Return every level's output
            ``[Y_1, ..., Y_L]`` (x2, x4, ...) instead of the last one.

        Returns:
            Tensor | list[Tensor]: (N, C, upscale * h, upscale * w), or the
            list of level outputs.
        """
        if x.dim() != 5:
            raise ValueError(
                f'DKSAN: expected a window of frames (N, T, C, H, W), got shape {tuple(x.shape)}'
            )
        if x.shape[1] != self.num_frames:
            raise ValueError(
                f'DKSAN: built for T={self.num_frames} frames, got a window of {x.shape[1]}'
            )
        feat = self.fuse(x)
        out = x[:, self.num_frames // 2]
        outputs = []
        for k, level in enumerate(self.levels):
            out = level(out, feat if k == 0 else None)
            outputs.append(out)
        return outputs if return_levels else out
