"""A2N: Attention in Attention Network for image super-resolution.

Reference:
    Haoyu Chen, Jinjin Gu, Zhi Zhang. "Attention in Attention Network for
    Image Super-Resolution". arXiv:2104.09497, 2021.
    Authors' code: https://github.com/haoyuc/A2N (an EDSR-PyTorch fork).

The network is a 3x3 conv, a chain of attention-in-attention blocks (A2B),
a 3x3 trunk conv with a long skip, and a reconstruction module of
nearest-neighbour upsampling, convolutions and pixel attention; a bilinear
upsampling of the input is added to the output (paper eq. 2).

Each A2B (paper Fig. 5, eq. 3-4) computes a 1x1 conv + LeakyReLU feature
``x``, then mixes an attention branch and a non-attention branch on ``x``
with two per-image weights that sum to one, produced by the attention
dropout module (global average pool -> FC -> ReLU -> FC -> softmax).

Differences from the paper and from the authors' code (all deliberate):

* Input and output are RGB in [0, 1], as for every basicattn arch. The
  authors trained on pixel values in [0, 255] (EDSR ``rgb_range=255``, no
  mean shift). ``img_range`` multiplies the input by that value on the way
  in and divides the output on the way out, so the official weights work
  unchanged with ``img_range=255`` (the ``a2n_official`` converter sets it).
  Folding the constant into the weights instead is possible (scale biases
  by 1/255, the first FC of the dropout module, ``k1`` and the
  pixel-attention convs by 255) but it changes the checkpoint tensors, so
  we keep the plain multiply.
* The paper only says "softmax"; the authors' code divides the logits by a
  fixed temperature ``t = 30`` first (and its weights were trained so). It is
  the ``temperature`` argument here, default 30.
* The order in each upsampling stage follows the authors' code (upsample ->
  conv -> pixel attention -> LeakyReLU -> conv -> LeakyReLU); for x4 there
  are two nearest x2 stages, for x2 / x3 one stage. Other scales are
  refused.
* The paper says the attention dropout module squeezes the block input;
  the authors' code pools the feature after the block's 1x1 conv and
  LeakyReLU, which is what the official weights were trained with and
  what we do.
* The dropout weights depend on global statistics of the whole input, so
  a tiled forward (the authors' ``--chop`` test mode, four overlapping
  quadrants) gives slightly different outputs from a whole-image forward
  (+0.002 dB on Set5 x2, +0.008 dB x3). Prefer whole images.
* A2N-M (the paper's 1x1 non-attention branch, a commented-out line in the
  authors' code) is ``non_attention='1x1'``; no separate registered name.
* The paper's ablations (Tables 3, 4, 6, 8) are the arguments
  ``attention``, ``non_attention``, ``fusion`` and ``channel_reduction``.
  The paper names them and gives their parameter counts but not their
  layers, and the authors' code has none of them; the structures here are
  our readings chosen to match those counts (docs/models/a2n.md, "Ablation
  structures", with the one row, non-attention-only, that no reading
  matches). The defaults are A2N.
* Without autograd recording (``torch.no_grad`` / ``inference_mode``) the
  gates, the branch mixing and the residual sums run in place on tensors
  the forward created: bit-identical outputs, fewer large temporaries. For
  fast CPU inference also convert model and input to
  ``torch.channels_last`` (see ``benchmarks/a2n_speed.py``).

Attention taps (:mod:`basicattn.archs.taps`; record them with
:func:`basicattn.analysis.taps.record_taps`), blocks counted from 0. The
``pi_*`` taps exist with ``fusion`` ``'dynamic'`` or ``'adaptive'``, the
``attention_*`` taps when ``attention`` is not ``'none'`` (gate shape
(N, C, 1, 1) for ``'channel'``, (N, 1, H, W) for ``'spatial'``):

* ``blocks.{i}.pi_att``: the attention branch's weight pi_att of block i
  (eq. 3-4), shape (N,), one value per image; the block mixes with the tap's
  output, so a hook can force it.
* ``blocks.{i}.pi_na``: the non-attention branch's weight, 1 - pi_att, (N,).
* ``blocks.{i}.attention_map``: the sigmoid gate of the attention branch,
  (N, C, H, W) in (0, 1).
* ``blocks.{i}.attention_input``: the feature the gate multiplies,
  ``k3(x)``, (N, C, H, W) (paper Fig. 2, first row).
* ``blocks.{i}.attention_output``: the gated feature, ``k3(x) * gate``
  (paper Fig. 2, second row).
* ``upsampler.{j}.pa.attention_map``: the pixel-attention gate of
  upsampling stage j, (N, unf, sH, sW).

Submodule names follow the official state_dict so that the mapping is one
rename per key (see ``basicattn/converters/a2n_converter.py``)::

    conv_first                 <- conv_first
    blocks.{i}.conv_in         <- AAB_trunk.{i}.conv_first
    blocks.{i}.adm.fc1 / fc2   <- AAB_trunk.{i}.ADM.0 / ADM.2
    blocks.{i}.attention.k1-4  <- AAB_trunk.{i}.attention.k1-4
    blocks.{i}.non_attention   <- AAB_trunk.{i}.non_attention
    blocks.{i}.conv_out        <- AAB_trunk.{i}.conv_last
    conv_body                  <- trunk_conv
    upsampler.{j}.up_conv      <- upconv{j+1}
    upsampler.{j}.pa.conv      <- att{j+1}.conv
    upsampler.{j}.hr_conv      <- HRconv{j+1}
    conv_last                  <- conv_last
"""

from typing import List, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from basicattn.registry import ARCHS
from basicattn.utils.bounds import PositiveInt

from .arch_util import lrelu
from .taps import Tap

NonAttention = Literal['3x3', '1x1', 'identity', 'spatial', 'none']
Attention = Literal['channel_spatial', 'channel', 'spatial', 'none']
Fusion = Literal['dynamic', 'add', 'concat', 'adaptive', 'none']

_NON_ATTENTION_KERNELS = {'3x3': 3, '1x1': 1}
_NON_ATTENTION = ('3x3', '1x1', 'identity', 'spatial', 'none')
_ATTENTION = ('channel_spatial', 'channel', 'spatial', 'none')
_FUSION = ('dynamic', 'add', 'concat', 'adaptive', 'none')

#: Hidden width divisor of the spatial-attention gate (ablation branches only).
_SPATIAL_REDUCTION = 4


#: A2N's LeakyReLU slope (the authors' code and the official weights).
_LRELU_SLOPE = 0.2


def _inplace_ok() -> bool:
    """Whether element-wise ops may overwrite fresh intermediates.

    Without autograd recording (``torch.no_grad`` / ``inference_mode``) the
    gates, mixing and residual sums are applied in place on tensors the
    forward itself created. The values are bit-identical to the
    out-of-place path (same kernels, same operands), but fewer full-size
    temporaries are allocated, which matters on CPU.
    """
    return not torch.is_grad_enabled()


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


class _GatedBranch(nn.Module):
    """``k4(k3(x) * sigmoid(gate_logits(x)))``: the form of every attention branch.

    ``k3`` and ``k4`` are 3x3 convs without bias; subclasses build the gate
    layers (``k1``, ``k2``) first, then call :meth:`_make_values`, so that the
    parameters keep the authors' order ``k1 .. k4``.
    """

    def _make_values(self, num_feat: int) -> None:
        self.k3 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False)
        self.k4 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False)

    def gate_logits(self, x: torch.Tensor, inplace: bool) -> torch.Tensor:
        """The gate before its sigmoid (a fresh tensor)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, taps=None) -> torch.Tensor:
        """``k4(k3(x) * gate)``; ``taps``: the block's (gate, input, output) taps or None."""
        gate_tap, input_tap, output_tap = taps if taps is not None else (_identity,) * 3
        inplace = _inplace_ok()
        gate = self.gate_logits(x, inplace)
        feat = input_tap(self.k3(x))
        if inplace:
            feat = feat.mul_(gate_tap(gate.sigmoid_()))
        else:
            feat = feat * gate_tap(torch.sigmoid(gate))
        return self.k4(output_tap(feat))


class AttentionBranch(_GatedBranch):
    """Channel-spatial attention branch of an A2B (A2N's own).

    ``out = k4(k3(x) * sigmoid(k2(lrelu(k1(x)))))``: ``k1``, ``k3``, ``k4`` are
    3x3 convs without bias, ``k2`` a 1x1 conv with bias. The gate has one
    value per pixel and channel, (N, C, H, W).

    Args:
        num_feat (int): Channels of the feature.
    """

    def __init__(self, num_feat: int):
        super().__init__()
        self.k1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False)
        self.k2 = nn.Conv2d(num_feat, num_feat, 1)
        self._make_values(num_feat)

    def gate_logits(self, x: torch.Tensor, inplace: bool) -> torch.Tensor:
        return self.k2(lrelu(self.k1(x), _LRELU_SLOPE, inplace))


class ChannelAttentionBranch(_GatedBranch):
    """Channel attention branch (ablations, paper Table 3): one gate per channel.

    ``out = k4(k3(x) * sigmoid(k2(relu(k1(avgpool(x))))))``: ``k1`` and ``k2``
    are 1x1 convs with bias, ``C -> C // reduction -> C`` (the
    squeeze-excitation layer of RCAN); ``k3``, ``k4`` as in
    :class:`AttentionBranch`. The gate is (N, C, 1, 1).

    Args:
        num_feat (int): Channels of the feature.
        reduction (int): Hidden-width divisor of the gate.
    """

    def __init__(self, num_feat: int, reduction: int = 16):
        super().__init__()
        if num_feat // reduction < 1:
            raise ValueError(
                f'channel_reduction={reduction} leaves no hidden unit for num_feat={num_feat}'
            )
        self.k1 = nn.Conv2d(num_feat, num_feat // reduction, 1)
        self.k2 = nn.Conv2d(num_feat // reduction, num_feat, 1)
        self._make_values(num_feat)

    def gate_logits(self, x: torch.Tensor, inplace: bool) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3), keepdim=True)
        return self.k2(F.relu(self.k1(pooled), inplace=inplace))


class SpatialAttentionBranch(_GatedBranch):
    """Spatial attention branch (ablations, paper Table 3): one gate per pixel.

    ``out = k4(k3(x) * sigmoid(k2(lrelu(k1(x)))))`` with ``k1`` a 1x1 conv
    ``C -> C // 4`` and ``k2`` a 1x1 conv ``C // 4 -> 1``, both with bias;
    ``k3``, ``k4`` as in :class:`AttentionBranch`. The gate is (N, 1, H, W),
    shared by all channels.

    Args:
        num_feat (int): Channels of the feature.
    """

    def __init__(self, num_feat: int):
        super().__init__()
        hidden = max(num_feat // _SPATIAL_REDUCTION, 1)
        self.k1 = nn.Conv2d(num_feat, hidden, 1)
        self.k2 = nn.Conv2d(hidden, 1, 1)
        self._make_values(num_feat)

    def gate_logits(self, x: torch.Tensor, inplace: bool) -> torch.Tensor:
        return self.k2(lrelu(self.k1(x), _LRELU_SLOPE, inplace))


def _attention_branch(kind: str, num_feat: int, channel_reduction: int) -> nn.Module:
    if kind == 'channel_spatial':
        return AttentionBranch(num_feat)
    if kind == 'channel':
        return ChannelAttentionBranch(num_feat, channel_reduction)
    return SpatialAttentionBranch(num_feat)


class AttentionDropout(nn.Module):
    """Attention dropout module: per-image weights of the two branches.

    Global average pooling -> Linear(C, C // reduction) -> ReLU ->
    Linear(C // reduction, 2) -> softmax(logits / temperature). Both linear
    layers have no bias.

    Args:
        num_feat (int): Channels of the input feature.
        reduction (int): Channel reduction of the hidden layer.
        temperature (float): Softmax temperature.
    """

    def __init__(self, num_feat: int, reduction: int = 4, temperature: float = 30.0):
        super().__init__()
        if num_feat // reduction < 1:
            raise ValueError(f'reduction={reduction} leaves no hidden unit for num_feat={num_feat}')
        self.temperature = float(temperature)
        self.fc1 = nn.Linear(num_feat, num_feat // reduction, bias=False)
        self.fc2 = nn.Linear(num_feat // reduction, 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return weights of shape (N, 2): [attention, non-attention]."""
        logits = self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3)))))
        return torch.softmax(logits / self.temperature, dim=1)


class A2B(nn.Module):
    """Attention in attention block (paper Fig. 5), with the ablations' parts.

    The defaults are A2N's block. The other values build the structures of the
    paper's ablations (Tables 3, 4, 6, 8; docs/models/a2n.md, "Ablation
    structures").

    Args:
        num_feat (int): Channels of the feature.
        non_attention (str): The second branch: a ``'3x3'`` (A2N) or ``'1x1'``
            (A2N-M) conv without bias, ``'identity'`` (pass-through, "no-op"),
            ``'spatial'`` (a :class:`SpatialAttentionBranch`, Table 3 cases 2
            and 6) or ``'none'`` (no second branch).
        reduction (int): Hidden-layer reduction of the dropout module.
        temperature (float): Softmax temperature of the dropout module.
        attention (str): The attention branch: ``'channel_spatial'`` (A2N),
            ``'channel'``, ``'spatial'`` or ``'none'``.
        fusion (str): How the two branches are mixed: ``'dynamic'`` (the
            attention dropout module, A2N), ``'add'``, ``'concat'`` (concatenate,
            then a 1x1 conv ``2C -> C`` without bias), ``'adaptive'`` (two
            learned scalars, the same for every input, initialised to 0.5) or
            ``'none'`` (a single branch).
        channel_reduction (int): Hidden-width divisor of the channel-attention
            gate.
    """

    def __init__(
        self,
        num_feat: int,
        non_attention: str = '3x3',
        reduction: int = 4,
        temperature: float = 30.0,
        attention: str = 'channel_spatial',
        fusion: str = 'dynamic',
        channel_reduction: int = 16,
    ):
        super().__init__()
        self.fusion = fusion
        self.conv_in = nn.Conv2d(num_feat, num_feat, 1, bias=False)
        if fusion == 'dynamic':
            self.adm = AttentionDropout(num_feat, reduction, temperature)
        elif fusion == 'adaptive':
            self.fusion_weights = nn.Parameter(torch.full((2,), 0.5))
        if attention != 'none':
            self.attention = _attention_branch(attention, num_feat, channel_reduction)
        if non_attention in _NON_ATTENTION_KERNELS:
            k = _NON_ATTENTION_KERNELS[non_attention]
            self.non_attention = nn.Conv2d(num_feat, num_feat, k, 1, k // 2, bias=False)
        elif non_attention == 'identity':
            self.non_attention = nn.Identity()
        elif non_attention == 'spatial':
            self.non_attention = SpatialAttentionBranch(num_feat)
        if fusion == 'concat':
            self.fuse = nn.Conv2d(2 * num_feat, num_feat, 1, bias=False)
        self.conv_out = nn.Conv2d(num_feat, num_feat, 1, bias=False)
        # attention taps (module docstring); no parameters
        if fusion in ('dynamic', 'adaptive'):
            self.pi_att, self.pi_na = Tap(), Tap()
        if attention != 'none':
            self.attention_map, self.attention_input, self.attention_output = Tap(), Tap(), Tap()

    def _weights(self, feat: torch.Tensor):
        """(pi_att, pi_na), each (N, 1, 1, 1), through their taps."""
        if self.fusion == 'dynamic':
            weights = self.adm(feat)  # (N, 2)
        else:  # adaptive: the same two learned scalars for every image
            weights = self.fusion_weights.expand(feat.shape[0], 2)
        pi_att = self.pi_att(weights[:, 0])[:, None, None, None]
        pi_na = self.pi_na(weights[:, 1])[:, None, None, None]
        return pi_att, pi_na

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inplace = _inplace_ok()
        feat = lrelu(self.conv_in(x), _LRELU_SLOPE, inplace)
        if self.fusion in ('dynamic', 'adaptive'):
            pi_att, pi_na = self._weights(feat)
        att = non_att = None
        if hasattr(self, 'attention'):
            taps = (self.attention_map, self.attention_input, self.attention_output)
            att = self.attention(feat, taps)
        if hasattr(self, 'non_attention'):
            # 'identity' returns ``feat`` itself: the in-place mixing below may then
            # overwrite it, which is safe because both branches have read it already
            non_att = self.non_attention(feat)
        if self.fusion == 'none':
            mixed = att if att is not None else non_att
        elif self.fusion == 'concat':
            mixed = self.fuse(torch.cat([att, non_att], dim=1))
        elif self.fusion == 'add':
            mixed = att.add_(non_att) if inplace else att + non_att
        elif inplace:
            mixed = att.mul_(pi_att).add_(non_att.mul_(pi_na))
        else:
            mixed = att * pi_att + non_att * pi_na
        out = self.conv_out(lrelu(mixed, _LRELU_SLOPE, inplace))
        return out.add_(x) if inplace else x + out


class PixelAttention(nn.Module):
    """``x * sigmoid(conv1x1(x))`` (PAN-style pixel attention, with bias)."""

    def __init__(self, num_feat: int):
        super().__init__()
        self.conv = nn.Conv2d(num_feat, num_feat, 1)
        self.attention_map = Tap()  # the gate (module docstring)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _inplace_ok():
            return self.attention_map(self.conv(x).sigmoid_()).mul_(x)
        return x * self.attention_map(torch.sigmoid(self.conv(x)))


class UpStage(nn.Module):
    """Nearest upsample -> 3x3 conv -> pixel attention -> LReLU -> 3x3 conv
    -> LReLU.

    Args:
        in_ch (int): Input channels.
        num_feat (int): Output channels (``unf``).
        scale (int): Nearest-neighbour upsampling factor of this stage.
    """

    def __init__(self, in_ch: int, num_feat: int, scale: int):
        super().__init__()
        self.scale = scale
        self.up_conv = nn.Conv2d(in_ch, num_feat, 3, 1, 1)
        self.pa = PixelAttention(num_feat)
        self.hr_conv = nn.Conv2d(num_feat, num_feat, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inplace = _inplace_ok()
        x = F.interpolate(x, scale_factor=self.scale, mode='nearest')
        x = lrelu(self.pa(self.up_conv(x)), _LRELU_SLOPE, inplace)
        return lrelu(self.hr_conv(x), _LRELU_SLOPE, inplace)


@ARCHS.register_module()
class A2N(nn.Module):
    """Attention in Attention Network (A2N, Chen et al. 2021).

    Input and output are RGB images in [0, 1], shape (N, C, H, W) ->
    (N, C, H * upscale, W * upscale). See the module docstring for the
    differences from the paper and the authors' code.

    Parameter counts with the defaults: 1,036,443 (x2, x3) and 1,047,459
    (x4); with ``non_attention='1x1'`` (A2N-M) 831,643 and 842,659. The
    ablation variants' x4 counts are tabulated in docs/models/a2n.md.

    Args:
        num_in_ch (int): Input channels. Default: 3.
        num_out_ch (int): Output channels. Default: 3.
        num_feat (int): Trunk channels (paper nf). Default: 40.
        unf (int): Channels of the upsampling module. Default: 24.
        num_block (int): Number of A2B blocks. Default: 16.
        upscale (int): 2, 3 or 4. Default: 4.
        non_attention (str): The non-attention branch: ``'3x3'`` for A2N,
            ``'1x1'`` for A2N-M; for the ablations ``'identity'``
            (pass-through), ``'spatial'`` (a spatial-attention branch in its
            place) or ``'none'`` (attention branch only). Default: ``'3x3'``.
        reduction (int): Hidden-width reduction of the attention dropout
            module (40 -> 10). Default: 4.
        temperature (float): Softmax temperature of the attention dropout
            module. Default: 30.
        img_range (float): Pixel range the weights work in; the [0, 1] input
            is multiplied by it and the output divided by it. 255.0 for the
            official weights and for the authors' training recipe (the
            dropout temperature was chosen for [0, 255] features; our
            option files use it); 1.0 keeps features on the [0, 1] scale.
            Default: 1.0.
        attention (str): The attention branch: ``'channel_spatial'`` (A2N's),
            ``'channel'`` (squeeze-excitation gate), ``'spatial'`` (one gate
            per pixel) or ``'none'`` (ablations only). Default:
            ``'channel_spatial'``.
        fusion (str): How the branches are mixed: ``'dynamic'`` (the
            attention dropout module, A2N), ``'add'``, ``'concat'`` (then a
            1x1 conv 2C -> C), ``'adaptive'`` (two learned input-independent
            scalars per block) or ``'none'`` (required with a single branch).
            Default: ``'dynamic'``.
        channel_reduction (int): Hidden-width divisor of the channel-attention
            gate (``attention`` or ``non_attention`` = ``'channel'`` only).
            Default: 16.
    """

    # paper Table 5: x2/x3 1,036,443, x4 1,047,459; A2N-M (non_attention '1x1')
    # 831,643 / 842,659 (all six: tests/archs/test_a2n_arch.py)
    PAPER_PARAMS = (dict(upscale=2), 1_036_443)
    #: The ONNX graph holds for any batch, height and width (``tools/export.py
    #: --dynamic``, checked at a second size; docs/deploy.md).
    ONNX_DYNAMIC_HW = True

    #: Measured faster with channels_last weights and inputs on CPU (docs/ops.md,
    #: "Speed"); the default memory format of inference (``val.channels_last: null``).
    preferred_memory_format = 'channels_last'

    #: bf16 (autocast) output against float32, PSNR in dB, measured on the tiny case by
    #: tests/archs/test_bf16_fidelity.py; at least 40 lets --precision bf16 / auto run it
    #: (basicattn/models/inference_precision.py).
    BF16_PSNR_DB = 60.4

    #: Attention taps, name pattern -> meaning (module docstring; docs/models/a2n.md); the
    #: pi_* taps exist with fusion dynamic or adaptive, attention_* unless attention is none.
    TAPS = {
        'blocks.{i}.pi_att': 'weight pi_att of the attention branch of block i (eq. 3-4), (N,)',
        'blocks.{i}.pi_na': 'weight pi_na = 1 - pi_att of the non-attention branch, (N,)',
        'blocks.{i}.attention_map': 'sigmoid gate of the attention branch, (N, C, H, W)',
        'blocks.{i}.attention_input': 'feature the gate multiplies, k3(x), (N, C, H, W)',
        'blocks.{i}.attention_output': 'gated feature k3(x) * gate, (N, C, H, W)',
        'upsampler.{j}.pa.attention_map': 'pixel-attention gate of upsampling stage j',
    }

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 40,
        unf: int = 24,
        num_block: int = 16,
        upscale: int = 4,
        non_attention: NonAttention = '3x3',
        reduction: int = 4,
        temperature: float = 30.0,
        img_range: float = 1.0,
        attention: Attention = 'channel_spatial',
        fusion: Fusion = 'dynamic',
        channel_reduction: PositiveInt = 16,
    ):
        super().__init__()
        if upscale not in (2, 3, 4):
            raise ValueError(f'A2N: upscale must be 2, 3 or 4, got {upscale!r}')
        for key, value, allowed in (
            ('non_attention', non_attention, _NON_ATTENTION),
            ('attention', attention, _ATTENTION),
            ('fusion', fusion, _FUSION),
        ):
            if value not in allowed:
                raise ValueError(f'A2N: {key} must be one of {list(allowed)}, got {value!r}')
        if attention == 'none' and non_attention == 'none':
            raise ValueError("A2N: attention and non_attention cannot both be 'none'")
        single = attention == 'none' or non_attention == 'none'
        if single and fusion != 'none':
            raise ValueError(
                f'A2N: with a single branch (attention={attention!r}, '
                f"non_attention={non_attention!r}) there is nothing to fuse: set fusion='none'"
            )
        if not single and fusion == 'none':
            raise ValueError(
                "A2N: fusion='none' needs attention='none' or non_attention='none'; "
                "two branches are fused with 'dynamic', 'add', 'concat' or 'adaptive'"
            )
        if num_in_ch != num_out_ch:
            raise ValueError(
                'A2N adds a bilinear upsampling of the input to the output, '
                f'so num_in_ch ({num_in_ch}) must equal num_out_ch '
                f'({num_out_ch})'
            )
        if img_range <= 0:
            raise ValueError(f'A2N: img_range must be > 0, got {img_range!r}')
        self.upscale = upscale
        self.img_range = float(img_range)

        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.blocks = nn.Sequential(
            *[
                A2B(
                    num_feat,
                    non_attention,
                    reduction,
                    temperature,
                    attention,
                    fusion,
                    channel_reduction,
                )
                for _ in range(num_block)
            ]
        )
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        stage_scales: List[int] = [2, 2] if upscale == 4 else [upscale]
        self.upsampler = nn.Sequential(
            *[UpStage(num_feat if j == 0 else unf, unf, s) for j, s in enumerate(stage_scales)]
        )
        self.conv_last = nn.Conv2d(unf, num_out_ch, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve ``x`` (N, C, H, W) in [0, 1]."""
        if x.dim() != 4:
            raise ValueError(f'A2N expects a 4-D (N, C, H, W) input, got shape {tuple(x.shape)}')
        if self.img_range != 1.0:
            x = x * self.img_range
        inplace = _inplace_ok()
        feat = self.conv_first(x)
        body = self.conv_body(self.blocks(feat))
        feat = body.add_(feat) if inplace else feat + body
        out = self.conv_last(self.upsampler(feat))
        skip = F.interpolate(x, scale_factor=self.upscale, mode='bilinear', align_corners=False)
        out = out.add_(skip) if inplace else out + skip
        if self.img_range != 1.0:
            out = out.div_(self.img_range) if inplace else out / self.img_range
        return out
