"""Building blocks of EDVR (:mod:`basicattn.archs.edvr_arch`).

Wang et al., "EDVR: Video Restoration with Enhanced Deformable Convolutional
Networks", CVPR Workshops 2019 (https://arxiv.org/abs/1905.02716).

* :class:`DCNv2Pack`: a modulated deformable conv (DCNv2) whose offsets and
  masks are predicted from *another* feature than the one it samples (the
  offset features of PCD), with the parameter names of BasicSR's
  ``DCNv2Pack`` (``weight``, ``bias``, ``conv_offset.weight``,
  ``conv_offset.bias``) and its offset/mask layout (``o1, o2, m =
  chunk(3)``, ``offset = cat(o1, o2)``, ``mask = sigmoid(m)``).
* :class:`PCDAlignment`: Pyramid, Cascading and Deformable alignment
  (paper Sec. 3.1, Fig. 3).
* :class:`TSAFusion`: Temporal and Spatial Attention fusion (Sec. 3.2,
  Fig. 4).
* :class:`PredeblurModule`: the pre-deblurring module of the deblurring
  models (Sec. 3.3).

Every module keeps the attribute names of BasicSR's ``basicsr/archs/
edvr_arch.py`` so that state dicts written by BasicSR load with
``strict=True``; the code is ours.
"""

import logging
from typing import List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log

from basicattn.archs.edsr_arch import ResBlock
from basicattn.ops.modulated_deform_conv import ModulatedDeformConv2d, ModulatedDeformConv2dPack

from .arch_util import lrelu
from .taps import Tap

__all__ = ['DCNv2Pack', 'PCDAlignment', 'TSAFusion', 'PredeblurModule', 'upsample2x']

#: Mean absolute offset above which :class:`DCNv2Pack` warns (BasicSR's 50).
OFFSET_WARNING = 50.0


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Bilinear x2 (``align_corners=False``), EDVR's pyramid upsampling."""
    return F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)


class DCNv2Pack(ModulatedDeformConv2dPack):
    """DCNv2 sampling ``x`` with offsets and masks predicted from ``feat``.

    ``conv_offset`` (zero-initialised) maps ``feat`` to ``3 * dg * 9``
    channels, split as mmcv / BasicSR (see
    :func:`basicattn.ops.op_utils.split_offset_mask`). As BasicSR, a mean
    absolute offset above 50 pixels prints a warning (a diverging
    alignment); we check it only in training mode, where it is a symptom
    one can act on, so inference does not wait for the value.

    Args:
        in_channels (int): Channels of ``x`` and ``feat``.
        out_channels (int): Output channels.
        kernel_size (int): Kernel size. Default: 3.
        padding (int): Padding. Default: 1.
        deform_groups (int): Deformable groups. Default: 8.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        padding: int = 1,
        deform_groups: int = 8,
    ):
        super().__init__(
            in_channels, out_channels, kernel_size, padding=padding, deform_groups=deform_groups
        )

    def forward(self, x: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:  # type: ignore
        """Sample ``x`` (B, C, H, W) where ``feat`` (B, C, H, W) says."""
        offset, mask = self.offset_and_mask(feat)
        if self.training and not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export():
            mean_abs = float(offset.detach().abs().mean())
            if mean_abs > OFFSET_WARNING:
                print_log(
                    f'EDVR: mean |offset| of a DCN is {mean_abs:.1f} > {OFFSET_WARNING:g} pixels '
                    '(the alignment is diverging; lower the lr of conv_offset)',
                    logger='current',
                    level=logging.WARNING,
                )
        return ModulatedDeformConv2d.forward(self, x, offset, mask)


class PCDAlignment(nn.Module):
    """Pyramid, Cascading and Deformable alignment (paper Fig. 3).

    From the coarsest level L3 (1/4 size) to L1 (full size), the offset
    features of level ``l`` come from ``[nbr_l, ref_l]`` and, below L3, the
    x2-upsampled offset features of level ``l+1`` (multiplied by 2, as they
    are displacements); a DCN aligns ``nbr_l``, and below L3 its output is
    fused with the upsampled aligned feature of level ``l+1``. A cascading
    DCN then refines the L1 result against ``ref_1``. LeakyReLU(0.1)
    everywhere except after the L1 fusion (as the authors' code).

    Args:
        num_feat (int): Channels. Default: 64.
        deform_groups (int): Deformable groups. Default: 8.
    """

    def __init__(self, num_feat: int = 64, deform_groups: int = 8):
        super().__init__()
        self.offset_conv1 = nn.ModuleDict()
        self.offset_conv2 = nn.ModuleDict()
        self.offset_conv3 = nn.ModuleDict()
        self.dcn_pack = nn.ModuleDict()
        self.feat_conv = nn.ModuleDict()
        for level in (3, 2, 1):
            key = f'l{level}'
            self.offset_conv1[key] = nn.Conv2d(2 * num_feat, num_feat, 3, 1, 1)
            if level == 3:
                self.offset_conv2[key] = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            else:
                self.offset_conv2[key] = nn.Conv2d(2 * num_feat, num_feat, 3, 1, 1)
                self.offset_conv3[key] = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
                self.feat_conv[key] = nn.Conv2d(2 * num_feat, num_feat, 3, 1, 1)
            self.dcn_pack[key] = DCNv2Pack(num_feat, num_feat, deform_groups=deform_groups)
        self.cas_offset_conv1 = nn.Conv2d(2 * num_feat, num_feat, 3, 1, 1)
        self.cas_offset_conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.cas_dcnpack = DCNv2Pack(num_feat, num_feat, deform_groups=deform_groups)

    def forward(self, nbr: Sequence[torch.Tensor], ref: Sequence[torch.Tensor]) -> torch.Tensor:
        """Align the neighbour pyramid ``nbr`` to the reference pyramid ``ref``.

        Args:
            nbr (Sequence[Tensor]): L1, L2, L3 features, (B, C, H/2^i, W/2^i).
            ref (Sequence[Tensor]): The same for the reference frame.

        Returns:
            Tensor: Aligned L1 feature (B, C, H, W).
        """
        up_offset = up_feat = None
        for level in (3, 2, 1):
            key = f'l{level}'
            n, r = nbr[level - 1], ref[level - 1]
            offset = lrelu(self.offset_conv1[key](torch.cat([n, r], dim=1)))
            if level == 3:
                offset = lrelu(self.offset_conv2[key](offset))
            else:
                offset = lrelu(self.offset_conv2[key](torch.cat([offset, up_offset], dim=1)))
                offset = lrelu(self.offset_conv3[key](offset))
            feat = self.dcn_pack[key](n, offset)
            if level < 3:
                feat = self.feat_conv[key](torch.cat([feat, up_feat], dim=1))
            if level > 1:
                feat = lrelu(feat)
                up_offset = upsample2x(offset) * 2  # displacements double with the size
                up_feat = upsample2x(feat)
        offset = lrelu(self.cas_offset_conv1(torch.cat([feat, ref[0]], dim=1)))
        offset = lrelu(self.cas_offset_conv2(offset))
        return lrelu(self.cas_dcnpack(feat, offset))


class TSAFusion(nn.Module):
    """Temporal and Spatial Attention fusion (paper Fig. 4).

    Temporal: each aligned frame is weighted per pixel by
    ``sigmoid(<theta(F_t), phi(F_ref)>)`` (3x3 conv embeddings, dot product
    over channels), then a 1x1 conv fuses the frames. Spatial: a two-level
    pyramid of max+avg pooled attention (from the weighted features) gives a
    multiplicative ``sigmoid`` map (times 2, so it starts near 1) and an
    additive map applied to the fused feature.

    Args:
        num_feat (int): Channels. Default: 64.
        num_frame (int): Frames. Default: 5.
        center_frame_idx (int): The reference frame. Default: 2.
    """

    def __init__(self, num_feat: int = 64, num_frame: int = 5, center_frame_idx: int = 2):
        super().__init__()
        self.center_frame_idx = center_frame_idx
        c = num_feat
        self.temporal_attn1 = nn.Conv2d(c, c, 3, 1, 1)
        self.temporal_attn2 = nn.Conv2d(c, c, 3, 1, 1)
        self.feat_fusion = nn.Conv2d(num_frame * c, c, 1, 1)
        self.spatial_attn1 = nn.Conv2d(num_frame * c, c, 1)
        self.spatial_attn2 = nn.Conv2d(2 * c, c, 1)
        self.spatial_attn3 = nn.Conv2d(c, c, 3, 1, 1)
        self.spatial_attn4 = nn.Conv2d(c, c, 1)
        self.spatial_attn5 = nn.Conv2d(c, c, 3, 1, 1)
        self.spatial_attn_l1 = nn.Conv2d(c, c, 1)
        self.spatial_attn_l2 = nn.Conv2d(2 * c, c, 3, 1, 1)
        self.spatial_attn_l3 = nn.Conv2d(c, c, 3, 1, 1)
        self.spatial_attn_add1 = nn.Conv2d(c, c, 1)
        self.spatial_attn_add2 = nn.Conv2d(c, c, 1)
        self.temporal_attention = Tap()  # (B, T, H, W): each frame's weight per pixel
        self.spatial_attention = Tap()  # (B, C, H, W): the multiplicative map, sigmoid x 2

    @staticmethod
    def _pool(x: torch.Tensor) -> torch.Tensor:
        """``[maxpool(x), avgpool(x)]``, 3x3 windows, stride 2, padding 1."""
        # count_include_pad=True: the zero padding counts, as nn.AvgPool2d's default.
        return torch.cat([F.max_pool2d(x, 3, 2, 1), F.avg_pool2d(x, 3, 2, 1)], dim=1)

    def forward(self, aligned: torch.Tensor) -> torch.Tensor:
        """Fuse aligned features (B, T, C, H, W) into (B, C, H, W)."""
        b, t, c, h, w = aligned.shape
        ref = self.temporal_attn1(aligned[:, self.center_frame_idx])
        emb = self.temporal_attn2(aligned.reshape(b * t, c, h, w)).view(b, t, c, h, w)
        corr = torch.sigmoid((emb * ref.unsqueeze(1)).sum(dim=2, keepdim=True))  # (B, T, 1, H, W)
        corr = self.temporal_attention(corr.squeeze(2)).unsqueeze(2)
        weighted = (aligned * corr).reshape(b, t * c, h, w)

        feat = lrelu(self.feat_fusion(weighted))

        attn = lrelu(self.spatial_attn1(weighted))
        attn = lrelu(self.spatial_attn2(self._pool(attn)))
        level = lrelu(self.spatial_attn_l1(attn))
        level = lrelu(self.spatial_attn_l2(self._pool(level)))
        level = upsample2x(lrelu(self.spatial_attn_l3(level)))
        attn = lrelu(self.spatial_attn3(attn)) + level
        attn = upsample2x(lrelu(self.spatial_attn4(attn)))
        attn = self.spatial_attn5(attn)
        attn_add = self.spatial_attn_add2(lrelu(self.spatial_attn_add1(attn)))
        return feat * self.spatial_attention(torch.sigmoid(attn) * 2) + attn_add


class PredeblurModule(nn.Module):
    """EDVR's pre-deblurring module (paper Sec. 3.3, deblurring models).

    A three-level pyramid of residual blocks (stride-2 convs down, bilinear
    up) applied to every frame before feature extraction; with ``hr_in`` two
    more stride-2 convs first bring HR input frames to 1/4 size.

    Args:
        num_in_ch (int): Input channels. Default: 3.
        num_feat (int): Channels. Default: 64.
        hr_in (bool): The input frames are HR. Default: False.
    """

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, hr_in: bool = False):
        super().__init__()
        self.hr_in = hr_in
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        if hr_in:
            self.stride_conv_hr1 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
            self.stride_conv_hr2 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
        self.stride_conv_l2 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
        self.stride_conv_l3 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
        self.resblock_l3 = ResBlock(num_feat)
        self.resblock_l2_1 = ResBlock(num_feat)
        self.resblock_l2_2 = ResBlock(num_feat)
        self.resblock_l1 = nn.ModuleList([ResBlock(num_feat) for _ in range(5)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, C, H, W) (``H/4, W/4`` with ``hr_in``)."""
        l1 = lrelu(self.conv_first(x))
        if self.hr_in:
            l1 = lrelu(self.stride_conv_hr2(lrelu(self.stride_conv_hr1(l1))))
        l2 = lrelu(self.stride_conv_l2(l1))
        l3 = lrelu(self.stride_conv_l3(l2))
        l2 = self.resblock_l2_1(l2) + upsample2x(self.resblock_l3(l3))
        l2 = upsample2x(self.resblock_l2_2(l2))
        blocks: List[nn.Module] = list(self.resblock_l1)
        for block in blocks[:2]:
            l1 = block(l1)
        l1 = l1 + l2
        for block in blocks[2:]:
            l1 = block(l1)
        return l1
