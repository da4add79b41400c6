"""EDVR: video restoration with enhanced deformable convolutional networks.

Reference:
    Xintao Wang, Kelvin C.K. Chan, Ke Yu, Chao Dong, Chen Change Loy,
    "EDVR: Video Restoration with Enhanced Deformable Convolutional
    Networks", CVPR Workshops 2019 (NTIRE 2019 video restoration winner);
    https://arxiv.org/abs/1905.02716. Authors' code: BasicSR
    (``basicsr/archs/edvr_arch.py``, Apache-2.0).

``num_frame`` LR frames -> the SR reference (centre) frame::

    F_t      = E(I_t)                      conv + LeakyReLU(0.1) + resblocks
    pyramid  = F_t, stride-2 convs to 1/2 and 1/4 size (conv_l2_*, conv_l3_*)
    A_t      = PCD(pyramid_t, pyramid_ref)  every frame, the reference too
    F        = TSA([A_1 .. A_T])            (or a 1x1 conv without TSA)
    out      = up(Recon(F)) + bilinear(I_ref)

Blocks: :mod:`basicattn.archs.edvr_blocks`. The parameter names are those of
BasicSR's ``EDVR`` (``conv_first``, ``feature_extraction.<i>.conv1``,
``pcd_align.dcn_pack.l1.conv_offset``, ``fusion.spatial_attn_l2``,
``upconv1`` ...), so BasicSR's published EDVR weights (the ``params`` of its
``.pth`` files) load with ``strict=True``; the DCN packs store BasicSR's
``weight``, ``bias``, ``conv_offset.{weight,bias}`` and split the offset
prediction as it does (``o1, o2, m = chunk(3)``, ``offset = cat(o1, o2)``,
``mask = sigmoid(m)``). The defaults are BasicSR's EDVR-M (64 channels, 5
frames, 5 + 10 residual blocks, TSA, x4): 3,300,131 parameters (2,996,259
without TSA). EDVR-L is ``num_feat=128, num_reconstruct_block=40``
(20,633,827 parameters with 5 frames, 20,699,363 with 7).

Differences from BasicSR's code (none changes the function):

* The PCD alignment of the ``T`` frames runs as one batch of ``B*T``
  (BasicSR loops over the frames); the TSA correlations are one product
  (BasicSR loops); the same arithmetic, in another order of summation.
* ``upscale=16`` (ours) adds two x2 stages ``upconv3``, ``upconv4``
  (64 -> 256 channels, pixel shuffle, LeakyReLU) after BasicSR's two, and the
  skip is the bilinear x16 of the reference frame. This is the "EDVR with the
  upscale module set from factor 4 to factor 16" that DKSAN's authors
  retrained as their baseline (Xu et al., ECCV 2020 Workshops, Sec. 4.2,
  Table 1: "20.6M" parameters). We read it as EDVR-L (the paper keeps "most
  of EDVR setting as the same as the original") with DKSAN's 7 input frames:
  :data:`EDVR_X16_DKSAN`, 20,994,787 parameters. The 20.6M of Table 1 is the
  count of the unmodified x4 EDVR-L with 5 frames (20,633,827); with 7
  frames and the two extra x2 stages (+295,424) it is 21.0M, so the table
  most likely lists the original model's size. The x4 state dict is
  unchanged.
* The "mean |offset| > 50" warning of BasicSR's DCN pack is printed through
  mmengine's logger and only in training mode.
* Input sizes: BasicSR asserts H, W multiples of 4 (16 with ``hr_in``); we
  raise a ``ValueError`` naming the size.
* Attention taps (:mod:`basicattn.archs.taps`), with TSA fusion only:
  ``fusion.temporal_attention``, each aligned frame's temporal attention
  ``sigmoid(<theta(F_t), phi(F_ref)>)`` per pixel, ``(N, T, H, W)``; and
  ``fusion.spatial_attention``, the multiplicative spatial attention map
  ``2 sigmoid(.)`` applied to the fused feature, ``(N, C, H, W)``.
* Initialisation: PyTorch's defaults everywhere (BasicSR scales the Kaiming
  init of its residual blocks by 0.1); the DCN packs as mmcv (offset
  predictors zero, so each DCN starts as a plain conv with mask 0.5).
"""

from typing import Literal, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from basicattn.archs.edsr_arch import ResBlock
from basicattn.registry import ARCHS
from basicattn.utils.bounds import PositiveInt

from .arch_util import lrelu
from .edvr_blocks import PCDAlignment, PredeblurModule, TSAFusion

__all__ = ['EDVR', 'EDVR_M', 'EDVR_L', 'EDVR_X16_DKSAN']

#: BasicSR's EDVR-M and EDVR-L (its option files), as keyword arguments.
EDVR_M = dict(num_feat=64, num_reconstruct_block=10)
EDVR_L = dict(num_feat=128, num_reconstruct_block=40)
#: DKSAN's retrained x16 baseline: EDVR-L, 7 frames, x16 upsampler.
EDVR_X16_DKSAN = dict(EDVR_L, num_frame=7, upscale=16)

#: Channels of the HR-side convs (BasicSR hard-wires 64 whatever num_feat).
HR_FEAT = 64


@ARCHS.register_module()
class EDVR(nn.Module):
    """EDVR (PCD alignment + TSA fusion), BasicSR's parameter names.

    Args:
        num_in_ch (int): Input channels. Default: 3.
        num_out_ch (int): Output channels. Default: 3.
        num_feat (int): Channels. Default: 64 (EDVR-M; EDVR-L: 128).
        num_frame (int): Input frames. Default: 5.
        deformable_groups (int): DCN deformable groups. Default: 8.
        num_extract_block (int): Residual blocks of the feature extractor.
            Default: 5.
        num_reconstruct_block (int): Residual blocks of the reconstruction.
            Default: 10 (EDVR-L: 40).
        center_frame_idx (int | None): Reference frame; None: ``num_frame // 2``.
        hr_in (bool): Input frames are HR (deblurring): two stride-2 convs
            bring them to 1/4 size and the output has the input's size.
            Needs ``with_predeblur``, as in BasicSR. Default: False.
        with_predeblur (bool): The pre-deblurring module. Default: False.
        with_tsa (bool): TSA fusion; False: one 1x1 conv. Default: True.
        upscale (int): 4 (BasicSR's), 16 (DKSAN's baseline, ours) or 1
            (only with ``hr_in``). Default: 4.
    """

    # EDVR-M (BasicSR's defaults: 64 features, 5 frames, TSA, x4); EDVR-L 20,633,827;
    # DKSAN's x16 baseline (EDVR-L, 7 frames) 20,994,787
    PAPER_PARAMS = (dict(), 3_300_131)
    TAKES_FRAMES = True
    #: The ONNX graph holds for any batch, height and width (``tools/export.py
    #: --dynamic``, checked at a second size; docs/deploy.md): the deformable
    #: sampling grids are computed from the traced size.
    ONNX_DYNAMIC_HW = True
    #: bf16 (autocast) output against float32, PSNR in dB, measured on the tiny case by
    #: tests/archs/test_bf16_fidelity.py; at least 40 lets --precision bf16 / auto run it
    #: (basicattn/models/inference_precision.py).
    BF16_PSNR_DB = 79.4

    #: Attention taps, name pattern -> meaning (module docstring; docs/models/edvr.md).
    TAPS = {
        'fusion.temporal_attention': "TSA temporal attention: each aligned frame's weight "
        'per pixel, (N, T, H, W) (with_tsa only)',
        'fusion.spatial_attention': 'TSA spatial attention: the multiplicative map 2 sigmoid(.) '
        'on the fused feature, (N, C, H, W) (with_tsa only)',
    }

    def __init__(
        self,
        num_in_ch: PositiveInt = 3,
        num_out_ch: PositiveInt = 3,
        num_feat: PositiveInt = 64,
        num_frame: PositiveInt = 5,
        deformable_groups: PositiveInt = 8,
        num_extract_block: PositiveInt = 5,
        num_reconstruct_block: PositiveInt = 10,
        center_frame_idx: Optional[int] = None,
        hr_in: bool = False,
        with_predeblur: bool = False,
        with_tsa: bool = True,
        upscale: Literal[1, 4, 16] = 4,
    ):
        super().__init__()
        if center_frame_idx is None:
            center_frame_idx = num_frame // 2
        if not 0 <= center_frame_idx < num_frame:
            raise ValueError(
                f'EDVR: center_frame_idx must be in [0, {num_frame - 1}], got {center_frame_idx}'
            )
        if num_feat % deformable_groups:
            raise ValueError(
                f'EDVR: num_feat ({num_feat}) must be a multiple of '
                f'deformable_groups ({deformable_groups})'
            )
        if hr_in and not with_predeblur:
            raise ValueError('EDVR: hr_in=True needs with_predeblur=True (its stride-2 convs)')
        if (upscale == 1) != hr_in:
            raise ValueError(
                f'EDVR: upscale must be 1 with hr_in=True and 4 or 16 without, got '
                f'upscale={upscale}, hr_in={hr_in}'
            )
        self.center_frame_idx = center_frame_idx
        self.num_frame = num_frame
        self.num_frames = num_frame  # the toolbox's name (ONNX export, option checks)
        self.hr_in = hr_in
        self.with_predeblur = with_predeblur
        self.with_tsa = with_tsa
        self.upscale = upscale

        if with_predeblur:
            self.predeblur = PredeblurModule(num_in_ch, num_feat, hr_in)
            self.conv_1x1 = nn.Conv2d(num_feat, num_feat, 1, 1)
        else:
            self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.feature_extraction = nn.Sequential(
            *[ResBlock(num_feat) for _ in range(num_extract_block)]
        )
        self.conv_l2_1 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
        self.conv_l2_2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_l3_1 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
        self.conv_l3_2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)

        self.pcd_align = PCDAlignment(num_feat, deformable_groups)
        if with_tsa:
            self.fusion = TSAFusion(num_feat, num_frame, center_frame_idx)
        else:
            self.fusion = nn.Conv2d(num_frame * num_feat, num_feat, 1, 1)

        self.reconstruction = nn.Sequential(
            *[ResBlock(num_feat) for _ in range(num_reconstruct_block)]
        )
        self.upconv1 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
        self.upconv2 = nn.Conv2d(num_feat, HR_FEAT * 4, 3, 1, 1)
        if upscale == 16:
            self.upconv3 = nn.Conv2d(HR_FEAT, HR_FEAT * 4, 3, 1, 1)
            self.upconv4 = nn.Conv2d(HR_FEAT, HR_FEAT * 4, 3, 1, 1)
        self.conv_hr = nn.Conv2d(HR_FEAT, HR_FEAT, 3, 1, 1)
        self.conv_last = nn.Conv2d(HR_FEAT, num_out_ch, 3, 1, 1)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 5:
            raise ValueError(f'EDVR: input must be (N, T, C, H, W), got shape {tuple(x.shape)}')
        if x.shape[1] != self.num_frame:
            raise ValueError(f'EDVR: built for {self.num_frame} frames, got {x.shape[1]}')
        multiple = 16 if self.hr_in else 4
        h, w = x.shape[-2:]
        if h % multiple or w % multiple:
            raise ValueError(
                f'EDVR: frame height and width must be multiples of {multiple}, got {h}x{w} '
                '(pad the input, or use val.tile)'
            )

    def extract(self, frames: torch.Tensor) -> torch.Tensor:
        """Per-frame features (N, C, h, w) of frames (N, 3, H, W)."""
        if self.with_predeblur:
            feat = self.conv_1x1(self.predeblur(frames))
        else:
            feat = lrelu(self.conv_first(frames))
        return self.feature_extraction(feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve the reference frame.

        Args:
            x (Tensor): (N, T, C, H, W) frames in [0, 1].

        Returns:
            Tensor: (N, C_out, upscale*H, upscale*W) (the input size with ``hr_in``).
        """
        self._check_input(x)
        b, t, c, h, w = x.shape
        ref_idx = self.center_frame_idx
        l1 = self.extract(x.reshape(b * t, c, h, w))
        l2 = lrelu(self.conv_l2_2(lrelu(self.conv_l2_1(l1))))
        l3 = lrelu(self.conv_l3_2(lrelu(self.conv_l3_1(l2))))
        pyramid = [level.view(b, t, *level.shape[1:]) for level in (l1, l2, l3)]
        # every frame (the reference too) against the reference, as one batch (b t)
        nbr = [level.transpose(0, 1).reshape(t * b, *level.shape[2:]) for level in pyramid]
        ref = [level[:, ref_idx].repeat(t, 1, 1, 1) for level in pyramid]
        aligned = self.pcd_align(nbr, ref)
        aligned = aligned.view(t, b, *aligned.shape[1:]).transpose(0, 1)  # (B, T, C, h, w)
        if self.with_tsa:
            feat = self.fusion(aligned)
        else:
            feat = self.fusion(aligned.reshape(b, -1, *aligned.shape[-2:]))

        out = self.reconstruction(feat)
        upconvs = [self.upconv1, self.upconv2]
        if self.upscale == 16:
            upconvs += [self.upconv3, self.upconv4]
        for conv in upconvs:
            out = lrelu(F.pixel_shuffle(conv(out), 2))
        out = self.conv_last(lrelu(self.conv_hr(out)))

        center = x[:, ref_idx]
        if self.hr_in:
            return out + center
        return out + F.interpolate(
            center, scale_factor=self.upscale, mode='bilinear', align_corners=False
        )
