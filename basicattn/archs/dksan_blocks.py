"""Building blocks of DKSAN (:mod:`basicattn.archs.dksan_arch`).

* :class:`RCAB`: RCAN's residual channel attention block (conv-ReLU-conv +
  channel attention, ``r = 16``); with ``channel_attention=False`` the plain
  residual block of the paper's "backbone" ablation. The channel attention,
  :func:`conv3x3` and :func:`lrelu` (slope 0.1) are the shared ones of
  :mod:`basicattn.archs.arch_util`, re-exported here.
* :func:`dkc_layer`: one deformable kernel convolution (DKC) layer, the
  toolbox's :class:`~basicattn.ops.deform_kernel.DeformableKernelConv2d`
  with DKSAN's settings.
* :class:`DKCAlign`: DKC Align (paper Sec. 3.2, Fig. 2, eq. 9-11).
* :class:`DKSA`: deformable kernel spatial attention (Sec. 3.3, Fig. 3b/c).
* :class:`UpscaleX2`: the x2 upscale module of a cascade level (Fig. 4).

The attention taps (:mod:`basicattn.archs.taps`) are listed in
:class:`basicattn.archs.dksan_arch.DKSAN`'s ``TAPS``.
"""

from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from basicattn.ops.deform_kernel import DeformableKernelConv2d
from basicattn.ops.modulated_deform_conv import ModulatedDeformConv2d
from basicattn.ops.op_utils import split_offset_mask

from .arch_util import RCANChannelAttention, conv3x3, lrelu
from .taps import Tap

__all__ = [
    'RCANChannelAttention',
    'RCAB',
    'dkc_layer',
    'DKCAlign',
    'DKSA',
    'UpscaleX2',
    'conv3x3',
    'lrelu',
]


class RCAB(nn.Module):
    """Residual channel attention block (RCAN), no batch norm.

    ``x + CA(conv(relu(conv(x))))``; with ``channel_attention=False`` it is
    the plain residual block ``x + conv(relu(conv(x)))`` (the "backbone" row
    of the paper's Table 3: "only resblocks, without channel attention").

    Args:
        num_feat (int): Channels.
        reduction (int): Channel attention ratio ``r``. Default: 16.
        channel_attention (bool): Use the channel attention. Default: True.
    """

    def __init__(self, num_feat: int, reduction: int = 16, channel_attention: bool = True):
        super().__init__()
        self.conv1 = conv3x3(num_feat, num_feat)
        self.conv2 = conv3x3(num_feat, num_feat)
        self.ca = RCANChannelAttention(num_feat, reduction) if channel_attention else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.ca(self.conv2(F.relu(self.conv1(x))))


def dkc_layer(
    num_feat: int, scope_size: int = 4, kernel_offsets: bool = True, image_offsets: bool = True
) -> DeformableKernelConv2d:
    """One DKC layer (eq. 11): 3x3 taps read from a learned scope kernel.

    ``y(p) = sum_k W(t_k + dk_k(p)) x(p + p_k + dp_k(p))``: a dense
    (``groups=1``) ``num_feat -> num_feat`` layer whose 3x3 taps are
    sampled bilinearly from a ``scope_size x scope_size`` weight at
    kernel-space offsets ``dk`` and applied at image-space offsets ``dp``,
    both predicted from the layer's input by zero-initialised 3x3 convs
    (``conv_kernel_offset``, ``conv_offset``); no modulation (eq. 11 has
    none). ``kernel_offsets=False`` gives fixed taps.

    Args:
        num_feat (int): Input and output channels.
        scope_size (int): Side of the learned scope kernel. Default: 4.
        kernel_offsets (bool): Kernel-space offsets. Default: True.
        image_offsets (bool): Image-space offsets. Default: True.

    Returns:
        DeformableKernelConv2d: The layer.
    """
    return DeformableKernelConv2d(
        num_feat,
        num_feat,
        kernel_size=3,
        scope_size=scope_size,
        image_offsets=image_offsets,
        kernel_offsets=kernel_offsets,
    )


class DKCStack(nn.Sequential):
    """``num_layers`` DKC layers, LeakyReLU(0.1) between them.

    The activation after the last layer is the caller's (LeakyReLU in DKC
    Align, the sigmoid in DKSA).
    """

    def __init__(self, num_feat: int, num_layers: int, **dkc_kwargs):
        super().__init__(*[dkc_layer(num_feat, **dkc_kwargs) for _ in range(num_layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self):
            x = layer(lrelu(x) if i else x)
        return x


class DKCAlign(nn.Module):
    """DKC Align: aligns neighbour features to the reference (Fig. 2).

    For every neighbour ``n`` (eq. 10, then eq. 9)::

        h = lrelu(f([F_n, F_r]))                 f: 3x3 conv 2C -> C
        h = lrelu(DKC_L(... lrelu(DKC_1(h))))    D: num_dkc DKC layers
        dP, dM = conv_offset(h)                  3x3 conv C -> 3 * dg * 9
        F_n^align = DCNv2(F_n; dP, sigmoid(dM))

    ``conv_offset`` is EDVR's ``DCNv2Pack`` head: the paper gives every DKC
    layer 128 filters, so the ``3 * dg * 9`` offset and mask channels need
    one more layer; like mmcv's it is zero-initialised (the DCN starts as a
    plain conv with mask 0.5) and its output is split as mmcv's
    (``o1, o2, m = chunk(3)``, offsets ``cat(o1, o2)``). All neighbours share
    the module (as EDVR's PCD) and are processed in one batch.

    Args:
        num_feat (int): Channels ``C``. Default: 128.
        num_dkc (int): DKC layers in ``D``. Default: 2.
        deform_groups (int): Deformable groups of the DCN. Default: 8.
        **dkc_kwargs: ``scope_size``, ``kernel_offsets``, ``image_offsets``
            of :func:`dkc_layer`.
    """

    def __init__(self, num_feat: int = 128, num_dkc: int = 2, deform_groups: int = 8, **dkc_kwargs):
        super().__init__()
        self.fuse = nn.Conv2d(2 * num_feat, num_feat, 3, 1, 1)
        self.dkc = DKCStack(num_feat, num_dkc, **dkc_kwargs)
        self.conv_offset = nn.Conv2d(num_feat, 3 * deform_groups * 9, 3, 1, 1)
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)
        self.dcn = ModulatedDeformConv2d(
            num_feat, num_feat, 3, padding=1, deform_groups=deform_groups
        )
        self.offset_magnitude = Tap()  # (B, N, H, W), only while recorded

    def offset_and_mask(
        self, nbr: torch.Tensor, ref: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Eq. 10: ``dP, dM`` from neighbour and reference features.

        Args:
            nbr (Tensor): Neighbour features (B, C, H, W).
            ref (Tensor): Reference features (B, C, H, W).

        Returns:
            tuple[Tensor, Tensor]: Offsets (B, 2*dg*9, H, W) in the mmcv
            layout and masks (B, dg*9, H, W) in (0, 1).
        """
        feat = lrelu(self.fuse(torch.cat((nbr, ref), dim=1)))
        if len(self.dkc):
            feat = lrelu(self.dkc(feat))
        return split_offset_mask(self.conv_offset(feat))

    def forward(self, nbrs: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """Align every neighbour to the reference.

        Args:
            nbrs (Tensor): Neighbour features (B, N, C, H, W).
            ref (Tensor): Reference features (B, C, H, W).

        Returns:
            Tensor: Aligned neighbour features (B, N, C, H, W).
        """
        n = nbrs.shape[1]
        # plain reshapes (not einops): an ONNX export records the sizes as graph values
        flat = nbrs.flatten(0, 1)  # (b n) c h w
        refs = ref.unsqueeze(1).expand(-1, n, -1, -1, -1).flatten(0, 1)
        offset, mask = self.offset_and_mask(flat, refs)
        if self.offset_magnitude.listening:
            # mmcv layout: (dy, dx) pairs per deformable group and kernel point
            length = offset.detach().unflatten(1, (-1, 2)).norm(dim=2).mean(dim=1)
            self.offset_magnitude(rearrange(length, '(b n) h w -> b n h w', n=n))
        aligned = self.dcn(flat, offset, mask)
        _, c, h, w = aligned.shape
        return aligned.reshape(-1, n, c, h, w)


class DKSA(nn.Module):
    """Deformable kernel spatial attention (Fig. 3b; light version 3c).

    ``x * sigmoid(DKC_L(... lrelu(DKC_1(lrelu(conv(x))))))``: one 3x3 conv,
    ``num_dkc`` stacked DKC layers (128 filters each, as every DKC layer of
    the paper), and the sigmoid of the last one is a per-pixel, per-channel
    attention map multiplying the input. The light DKSA of level 1 is the
    same with one DKC layer (``num_dkc=1``) instead of two.

    Args:
        num_feat (int): Channels. Default: 128.
        num_dkc (int): Stacked DKC layers (>= 1). Default: 2.
        **dkc_kwargs: Of :func:`dkc_layer`.
    """

    def __init__(self, num_feat: int = 128, num_dkc: int = 2, **dkc_kwargs):
        super().__init__()
        if num_dkc < 1:
            raise ValueError(f'DKSA needs at least one DKC layer, got num_dkc={num_dkc}')
        self.conv = conv3x3(num_feat, num_feat)
        self.dkc = DKCStack(num_feat, num_dkc, **dkc_kwargs)
        self.spatial_map = Tap()  # the map, shape of x

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """The attention map in (0, 1), same shape as ``x``."""
        return self.spatial_map(torch.sigmoid(self.dkc(lrelu(self.conv(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.attention_map(x)


class UpscaleX2(nn.Sequential):
    """Upscale module of one level (Fig. 4): to a x2 RGB residual.

    3x3 conv ``C -> 4C``, PixelShuffle(2), LeakyReLU(0.1), 3x3 conv
    ``C -> num_out_ch``.

    Args:
        num_feat (int): Channels. Default: 128.
        num_out_ch (int): Output channels. Default: 3.
    """

    def __init__(self, num_feat: int = 128, num_out_ch: int = 3):
        super().__init__(
            conv3x3(num_feat, 4 * num_feat),
            nn.PixelShuffle(2),
            nn.LeakyReLU(0.1, inplace=True),
            conv3x3(num_feat, num_out_ch),
        )
