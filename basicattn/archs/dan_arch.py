"""DAN: efficient dual attention network (GCA + LEA) for image SR.

Reference:
    Pei Zhang, Edmund Y. Lam, "From Local to Global: Efficient Dual
    Attention Mechanism for Single Image Super-Resolution" (efficient dual
    attention network, DAN), IEEE Access 9, 2021,
    https://doi.org/10.1109/ACCESS.2021.3105726. No code or weights were
    released; everything below is built from the paper's text (its Fig. 1,
    the block diagram, is not available to us). Details: docs/models/dan.md.

What the paper fixes (Sec. III, IV-A):

* ``I_SR = H_R(H_U(H_D(H_S(I_LR))))`` (eq. 11-13): a shallow conv ``H_S``,
  ``b = 30`` dual attention blocks (DAB) ``H_D``, a post-upsampling module
  ``H_U`` and an output conv ``H_R``.
* A DAB combines residual learning, local enhanced attention (LEA) and
  global cross-layer attention (GCA).
* GCA (eq. 6-7): ``s = sigmoid(W2 h(W1 x_n * W0 x_m))``, ``X~_n = s * X_n``,
  with ``W0, W1: C -> C/r``, ``W2: C/r -> C`` instantiated as (1x1)
  convolutions, ``h`` global average pooling, ``*`` the Hadamard product and
  ``x_m`` the feature of the layer ``m = n - d`` (``d = 9``, ``r = 16``).
* LEA (eq. 8-9): ``s = sigmoid(W_beta f_d(W_alpha X_m))``,
  ``X^_m = s * X_m``, with ``W_alpha: C -> C/r``, ``W_beta: C/r -> 1`` and
  ``f_d`` three successive atrous (dilated) 3x3 convolutions.
* Variants (Sec. III-C, Tables 5 and 6): GCA-0 (``d = 0``), GCA-S
  (position-wise GCA, eq. 10, ``W2: C/r -> 1`` and no pooling), LEA-C
  (channel-wise LEA, "as RCAN"), LEA-then-GCA "in a sequential manner", the
  backbone without GCA and LEA, and GCA or LEA alone; Table 5 also puts GCA
  and LEA on an EDSR backbone (:data:`EDSR_BACKBONE`: 256 channels, 32 DABs
  of one residual unit, ``res_scale=0.1``, ``long_skip``; with both
  attentions off it is EDSR). :data:`DAN_VARIANTS` names them.

Choices the paper leaves open, each an argument (defaults in brackets):

* ``num_feat`` C [64]: never stated in the paper; 64 as in RCAN/RFANet.
* ``num_res`` [5], the residual learning inside a DAB. With a single
  conv-ReLU-conv branch per DAB (the literal RCAB-like reading), 30 blocks
  of 64 channels have only 2.6M parameters, which contradicts three
  statements of the paper: DAN has "almost a quarter less parameters" than
  RCAN (15.6M), slightly more than RFANet (Fig. 3), and EDSR (43M) has
  "more than 3 times" as many. So a DAB chains ``num_res`` residual units
  (``y <- y + conv(relu(conv(y)))``, EDSR style) and its residual branch is
  what the units added to the block input, ``R = U(x) - x`` (the sum of the
  units' residuals; for ``num_res = 1`` exactly the conv-ReLU-conv branch of
  RCAN's RCAB). With 5 units the x3 model has 11,460,745 parameters (26.5 %
  fewer than RCAN's 15.6M), see docs/models/dan.md.
* Order inside a DAB: LEA first, then GCA on the LEA output, then the
  block's skip: ``out = x + GCA(LEA(R), x_m)`` ("LEA offers accurate
  attention-aware features for GCA", "sequential manner [CBAM]"). With one
  of them switched off the other acts on ``R`` directly.
* ``cross_feature`` ['lea'], what a block keeps for the GCA of the block
  ``d`` later: ``'lea'`` the LEA-refined residual feature ``X^_m`` (the
  paper: "the highlighted features at layer m guide the following layer
  n"; the plain residual feature when LEA is off) or ``'output'`` the
  block's output (the input of block m + 1).
* ``early_source`` ['shallow'], blocks ``n <= d`` (1-based; no block
  ``n - d >= 1`` exists): ``'shallow'`` uses the earliest feature there is,
  the shallow conv's output ``F_S`` (treated as "block 0", so block ``d``
  uses it by the plain rule ``m = n - d = 0``); ``'self'`` uses the
  block's own feature instead (GCA-0 for those blocks).
* ``gca_act`` ['relu']: eq. 1 "omits the feature activation for
  simplicity"; we put a ReLU where SE/RCAN put it, on the pooled vector
  before ``W2`` (per position for GCA-S). ``'none'`` is eq. 6 literally.
* ``lea_dilations`` [(1, 2, 4)]: the rates of the three atrous convs are
  not given; (1, 2, 4) avoids gridding (hybrid dilated convolution rule)
  and gives LEA a 15x15 receptive field. Each atrous conv keeps C/r
  channels and is followed by a ReLU; ``W_alpha`` is linear.
* LEA-C (``lea='channel'``) is RCAN's channel attention on the residual
  feature: pool, 1x1 ``C -> C/r``, ReLU, 1x1 ``C/r -> C``, sigmoid (no atrous
  convs: the paper notes it "does not enlarge the receptive field").
* Hidden widths are ``num_feat // reduction`` (RCAN's rounding). Every
  conv has a bias; weights keep PyTorch's default initialisation.
* ``long_skip`` [False]: eq. 12-13 have no trunk conv or long skip from
  ``F_S``; ``True`` adds RCAN/EDSR's ``conv(H_D(F_S)) + F_S``.
* Upsampler: conv + pixel shuffle, one stage for x2/x3, two x2 stages for
  x4 (the EDSR/RCAN module; the paper cites a post-upscaling module [43]).
* ``rgb_mean`` / ``img_range``: the RCAN-family mean shift, which the paper
  does not mention; images are RGB in [0, 1] as everywhere in basicattn.
* ``global_skip`` ['none'] is basicattn's option, not the paper's: adding
  the MATLAB bicubic upsampling of the input lets tiny CPU demos beat
  bicubic within minutes. With it the mean is not added back and ``conv_last``
  starts at zero, so the untrained network outputs exactly bicubic.

Attention taps (:mod:`basicattn.archs.taps`; record them with
:func:`basicattn.analysis.taps.record_taps`), blocks counted from 0:

* ``blocks.{i}.gca.attention_map``: the global cross-layer attention
  weights ``s`` of block i (eq. 7), (N, C, 1, 1) for GCA, (N, 1, H, W) for
  GCA-S.
* ``blocks.{i}.lea.attention_map``: the local enhanced attention map ``s``
  of block i (eq. 9), (N, 1, H, W) (spatial LEA only; LEA-C has no tap).
"""

from typing import Literal, Optional, Sequence, Tuple

import torch
from torch import nn

from basicattn.registry import ARCHS
from basicattn.utils.bounds import (
    NonNegativeInt,
    PositiveInt,
    check_choice,
    check_positive_int,
    is_int,
)

from . import arch_util
from .arch_util import (
    GlobalSkip,
    MeanShiftMixin,
    add_bicubic_skip,
    check_global_skip,
    start_as_bicubic,
)
from .edsr_arch import PixelShuffleUpsampler
from .taps import Tap

__all__ = [
    'DAN',
    'DAB',
    'GlobalCrossLayerAttention',
    'LocalEnhancedAttention',
    'LEAChannelAttention',
    'DAN_VARIANTS',
    'EDSR_BACKBONE',
]

GCAMode = Literal['channel', 'position', 'none']
LEAMode = Literal['spatial', 'channel', 'none']
CrossFeature = Literal['lea', 'output']
EarlySource = Literal['shallow', 'self']
Activation = Literal['relu', 'none']

#: EDSR's large model (Lim et al., 2017) as DAN arguments: with
#: ``gca='none', lea='none'`` it is :class:`~basicattn.archs.edsr_arch.EDSR`
#: (``num_feat=256, num_block=32, res_scale=0.1``) with the same parameters.
EDSR_BACKBONE = dict(num_feat=256, num_block=32, num_res=1, long_skip=True, res_scale=0.1)

#: The configurations of the paper's ablations (Tables 5 and 6) as DAN
#: keyword arguments: ``DAN(**DAN_VARIANTS['GCA-S+LEA'])``.
DAN_VARIANTS = {
    'DAN': {},  # GCA + LEA, d = 9
    'backbone': dict(gca='none', lea='none'),  # Table 5, row 1
    'GCA': dict(lea='none'),  # Table 5, GCA only
    'LEA': dict(gca='none'),  # Table 5, LEA only
    'GCA-0': dict(distance=0, lea='none'),  # Table 6
    'GCA-0+LEA': dict(distance=0),  # Table 6, sequential
    'GCA-S+LEA': dict(gca='position'),  # Table 6
    'GCA+LEA-C': dict(lea='channel'),  # Table 6
    'GCA-S+LEA-C': dict(gca='position', lea='channel'),  # Table 6
    # Table 5's second half: GCA and LEA on an EDSR backbone (EDSR-L: 256
    # channels, 32 blocks of one residual unit, residual scaling 0.1, the
    # trunk conv + long skip). 'EDSR' is EDSR itself, under DAN's names.
    'EDSR': dict(EDSR_BACKBONE, gca='none', lea='none'),
    'EDSR+GCA': dict(EDSR_BACKBONE, lea='none'),
    'EDSR+LEA': dict(EDSR_BACKBONE, gca='none'),
    'EDSR+GCA+LEA': dict(EDSR_BACKBONE),
}


def _hidden(num_feat: int, reduction: int) -> int:
    """``num_feat // reduction``, checked to be at least one channel."""
    check_positive_int(reduction, 'reduction', 'DAN')
    hidden = num_feat // reduction
    if hidden < 1:
        raise ValueError(
            f'DAN: reduction={reduction} leaves no channel for '
            f'num_feat={num_feat} (num_feat // reduction = 0)'
        )
    return hidden


def _act(kind: str) -> nn.Module:
    return nn.ReLU(inplace=True) if kind == 'relu' else nn.Identity()


class ResUnit(nn.Module):
    """``x + conv(relu(conv(x)))`` with 3x3 convs, no normalisation."""

    def __init__(self, num_feat: int):
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x + conv2(relu(conv1(x)))``."""
        return x + self.conv2(self.relu(self.conv1(x)))


class LocalEnhancedAttention(nn.Module):
    """LEA (eq. 8-9): a spatial map from atrous convolutions.

    ``s = sigmoid(W_beta f_d(W_alpha X))``, output ``s * X``.

    Args:
        num_feat (int): Channels C.
        reduction (int): r; the hidden width is ``C // r``.
        dilations (sequence[int]): Rates of the successive 3x3 atrous
            convs ``f_d`` (three in the paper), each followed by a ReLU.
    """

    def __init__(self, num_feat: int, reduction: int = 16, dilations: Sequence[int] = (1, 2, 4)):
        super().__init__()
        hidden = _hidden(num_feat, reduction)
        self.reduce = nn.Conv2d(num_feat, hidden, 1)  # W_alpha
        layers = []
        for rate in dilations:
            layers += [nn.Conv2d(hidden, hidden, 3, 1, rate, dilation=rate), nn.ReLU(inplace=True)]
        self.atrous = nn.Sequential(*layers)  # f_d
        self.expand = nn.Conv2d(hidden, 1, 1)  # W_beta
        self.attention_map = Tap()  # s, (N, 1, H, W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x * sigmoid(W_beta f_d(W_alpha x))``, one weight per position."""
        return x * self.attention_map(torch.sigmoid(self.expand(self.atrous(self.reduce(x)))))


class LEAChannelAttention(arch_util.RCANChannelAttention):
    """LEA-C: RCAN's channel attention, ``x * sigmoid(W_b relu(W_a h(x)))``.

    :class:`basicattn.archs.arch_util.RCANChannelAttention` with DAN's
    checkpoint names ``reduce`` (``W_a``) and ``expand`` (``W_b``), and
    ``reduction`` checked (``num_feat // reduction >= 1``).

    Args:
        num_feat (int): Channels C.
        reduction (int): r; the hidden width is ``C // r``.
    """

    conv_names = ('reduce', 'expand')

    def __init__(self, num_feat: int, reduction: int = 16):
        _hidden(num_feat, reduction)
        super().__init__(num_feat, reduction)


class GlobalCrossLayerAttention(nn.Module):
    """GCA (eq. 6-7) and its position-wise variant GCA-S (eq. 10).

    ``g = W1 x_n * W0 x_m`` (1x1 convs ``C -> C/r``, Hadamard product);
    ``'channel'``: ``s = sigmoid(W2 act(h(g)))`` with ``W2: C/r -> C`` and
    ``h`` global average pooling, one weight per channel;
    ``'position'``: ``s = sigmoid(W2 act(g))`` with ``W2: C/r -> 1``, one
    weight per position. The output is ``s * x_n``.

    Args:
        num_feat (int): Channels C.
        reduction (int): r.
        mode (str): ``'channel'`` (GCA) or ``'position'`` (GCA-S).
        act (str): ``'relu'`` or ``'none'``, applied before ``W2``.
    """

    def __init__(
        self,
        num_feat: int,
        reduction: int = 16,
        mode: Literal['channel', 'position'] = 'channel',
        act: Activation = 'relu',
    ):
        super().__init__()
        hidden = _hidden(num_feat, reduction)
        self.mode = mode
        self.proj_n = nn.Conv2d(num_feat, hidden, 1)  # W1
        self.proj_m = nn.Conv2d(num_feat, hidden, 1)  # W0
        self.act = _act(act)
        self.expand = nn.Conv2d(  # W2
            hidden, num_feat if mode == 'channel' else 1, 1
        )
        self.attention_map = Tap()  # s, (N, C, 1, 1) or (N, 1, H, W)

    def forward(self, x_n: torch.Tensor, x_m: torch.Tensor) -> torch.Tensor:
        """``s * x_n`` with ``s`` from ``x_n`` and the earlier feature ``x_m``."""
        g = self.proj_n(x_n) * self.proj_m(x_m)
        if self.mode == 'channel':
            g = g.mean(dim=(2, 3), keepdim=True)
        return x_n * self.attention_map(torch.sigmoid(self.expand(self.act(g))))


class DAB(nn.Module):
    """Dual attention block: residual units, then LEA, then GCA, plus skip.

    ``R = U(x) - x`` (what ``num_res`` chained residual units add),
    ``X^ = LEA(R)``, ``out = x + res_scale * GCA(X^, x_m)``; a missing attention is the
    identity. ``x_m = None`` means GCA-0: ``x_m`` is the block's own
    ``X^``.

    Args:
        num_feat, num_res, reduction, gca, lea, lea_dilations, gca_act, res_scale:
            as in :class:`DAN` (which holds the defaults).

    Returns (forward):
        tuple[Tensor, Tensor]: the block output and ``X^`` (the feature a
        later block's GCA may use).
    """

    def __init__(
        self,
        num_feat: int,
        num_res: int,
        reduction: int,
        gca: GCAMode,
        lea: LEAMode,
        lea_dilations: Sequence[int],
        gca_act: Activation,
        res_scale: float = 1.0,
    ):
        super().__init__()
        self.res_scale = res_scale
        self.units = nn.Sequential(*[ResUnit(num_feat) for _ in range(num_res)])
        if lea == 'spatial':
            self.lea = LocalEnhancedAttention(num_feat, reduction, lea_dilations)
        elif lea == 'channel':
            self.lea = LEAChannelAttention(num_feat, reduction)
        else:
            self.lea = None
        self.gca = (
            None if gca == 'none' else GlobalCrossLayerAttention(num_feat, reduction, gca, gca_act)
        )

    def forward(
        self, x: torch.Tensor, x_m: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The block output and ``X^`` (see the class docstring)."""
        feat = self.units(x) - x
        if self.lea is not None:
            feat = self.lea(feat)
        out = feat
        if self.gca is not None:
            out = self.gca(feat, feat if x_m is None else x_m)
        if self.res_scale != 1.0:  # EDSR's residual scaling (Table 5's EDSR backbone)
            out = out * self.res_scale
        return x + out, feat


@ARCHS.register_module()
class DAN(MeanShiftMixin, nn.Module):
    """DAN: global cross-layer attention + local enhanced attention network.

    Shallow 3x3 conv -> ``num_block`` DABs -> pixel-shuffle upsampler ->
    3x3 output conv (see the module docstring for the paper and for every
    choice it leaves open). The default model (``num_feat=64``,
    ``num_block=30``, ``num_res=5``, ``reduction=16``, ``distance=9``) has
    11,460,745 parameters at x3, 11,423,817 at x4 and 11,276,105 at x2.

    Args:
        num_in_ch (int): Input channels. Default: 3.
        num_out_ch (int): Output channels. Default: 3.
        num_feat (int): Feature channels C. Default: 64.
        num_block (int): DABs, the paper's b. Default: 30.
        num_res (int): Residual units per DAB (not given by the paper).
            Default: 5.
        upscale (int): 2, 3 or 4 (any power of two works). Default: 3.
        reduction (int): The paper's r; attention hidden width
            ``num_feat // reduction``. Default: 16.
        distance (int): The paper's d = n - m, how many blocks back GCA
            reaches; 0 is GCA-0. Default: 9.
        gca (str): ``'channel'`` (GCA), ``'position'`` (GCA-S) or
            ``'none'``. Default: ``'channel'``.
        lea (str): ``'spatial'`` (LEA), ``'channel'`` (LEA-C) or ``'none'``.
            Default: ``'spatial'``.
        lea_dilations (sequence[int]): Rates of LEA's atrous 3x3 convs.
            Default: (1, 2, 4).
        gca_act (str): ``'relu'`` or ``'none'`` before GCA's ``W2``.
            Default: ``'relu'``.
        cross_feature (str): What block m hands to block m + d: ``'lea'``
            (its LEA-refined residual feature) or ``'output'``.
            Default: ``'lea'``.
        early_source (str): ``x_m`` of the blocks n < d: ``'shallow'`` (the
            shallow feature F_S, the earliest available) or ``'self'``
            (the block's own feature). Default: ``'shallow'``.
        long_skip (bool): Add a 3x3 conv after the blocks and a skip from
            F_S (RCAN/EDSR; not in the paper). Default: False.
        rgb_mean (sequence[float]): Mean subtracted from the input and added
            to the output (DIV2K RGB mean). Default: (0.4488, 0.4371, 0.4040).
        img_range (float): Multiplier after the mean shift. Default: 1.0.
        global_skip (str): ``'none'`` (the paper) or ``'bicubic'`` (add the
            MATLAB bicubic upsampling of the input). Default: ``'none'``.
        res_scale (float): Factor of each DAB's (attended) residual before
            the skip; 0.1 with :data:`EDSR_BACKBONE` (EDSR's residual
            scaling, Table 5's EDSR rows). Default: 1.0 (the paper's DAN).

    Shapes: ``(N, num_in_ch, h, w)`` in [0, 1] -> ``(N, num_out_ch,
    upscale * h, upscale * w)``.
    """

    # the default x3 model, 5 residual units per DAB (paper: about a quarter fewer
    # than RCAN's 15.6M; docs/models/dan.md)
    PAPER_PARAMS = (dict(upscale=3), 11_460_745)
    #: The ONNX graph holds for any batch, height and width (``tools/export.py
    #: --dynamic``, checked at a second size; docs/deploy.md).
    ONNX_DYNAMIC_HW = True

    #: Measured faster with channels_last weights and inputs on CPU (docs/ops.md,
    #: "Speed"); the default memory format of inference (``val.channels_last: null``).
    preferred_memory_format = 'channels_last'

    #: bf16 (autocast) output against float32, PSNR in dB, measured on the tiny case by
    #: tests/archs/test_bf16_fidelity.py; at least 40 lets --precision bf16 / auto run it
    #: (basicattn/models/inference_precision.py).
    BF16_PSNR_DB = 60.3

    #: Attention taps, name pattern -> meaning (module docstring; docs/models/dan.md).
    TAPS = {
        'blocks.{i}.gca.attention_map': 'global cross-layer attention weights s of block i (eq. 7)',
        'blocks.{i}.lea.attention_map': 'local enhanced attention map s of block i (eq. 9)',
    }

    def __init__(
        self,
        num_in_ch: PositiveInt = 3,
        num_out_ch: PositiveInt = 3,
        num_feat: PositiveInt = 64,
        num_block: PositiveInt = 30,
        num_res: PositiveInt = 5,
        upscale: PositiveInt = 3,
        reduction: PositiveInt = 16,
        distance: NonNegativeInt = 9,
        gca: GCAMode = 'channel',
        lea: LEAMode = 'spatial',
        lea_dilations: Sequence[int] = (1, 2, 4),
        gca_act: Activation = 'relu',
        cross_feature: CrossFeature = 'lea',
        early_source: EarlySource = 'shallow',
        long_skip: bool = False,
        rgb_mean: Sequence[float] = (0.4488, 0.4371, 0.4040),
        img_range: float = 1.0,
        global_skip: GlobalSkip = 'none',
        res_scale: float = 1.0,
    ):
        super().__init__()
        for name, value, alias in (
            ('gca', gca, GCAMode),
            ('lea', lea, LEAMode),
            ('gca_act', gca_act, Activation),
            ('cross_feature', cross_feature, CrossFeature),
            ('early_source', early_source, EarlySource),
        ):
            check_choice(value, name, alias, 'DAN')
        for name, value, low in (
            ('num_in_ch', num_in_ch, 1),
            ('num_out_ch', num_out_ch, 1),
            ('num_feat', num_feat, 1),
            ('num_block', num_block, 1),
            ('num_res', num_res, 1),
            ('distance', distance, 0),
        ):
            if not is_int(value) or value < low:
                raise ValueError(f'DAN: {name} must be an int >= {low}, got {value!r}')
        if isinstance(res_scale, bool) or not isinstance(res_scale, (int, float)) or res_scale <= 0:
            raise ValueError(f'DAN: res_scale must be a number > 0, got {res_scale!r}')
        lea_dilations = tuple(lea_dilations)
        if not lea_dilations or not all(is_int(r) and r >= 1 for r in lea_dilations):
            raise ValueError(
                f'DAN: lea_dilations must be a non-empty list of ints >= 1, got {lea_dilations!r}'
            )
        _hidden(num_feat, reduction)
        check_global_skip(global_skip, num_in_ch, num_out_ch, 'DAN')
        self.init_mean_shift(
            rgb_mean,
            img_range,
            num_in_ch,
            num_out_ch,
            owner='DAN',
            residual_output=global_skip == 'bicubic',
        )
        self.upscale = upscale
        self.distance = distance
        self.gca_mode = gca
        self.cross_feature = cross_feature
        self.early_source = early_source
        self.global_skip = global_skip

        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)  # H_S
        self.blocks = nn.ModuleList(
            [  # H_D
                DAB(num_feat, num_res, reduction, gca, lea, lea_dilations, gca_act, res_scale)
                for _ in range(num_block)
            ]
        )
        self.conv_after_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1) if long_skip else None
        self.upsample = PixelShuffleUpsampler(upscale, num_feat)  # H_U
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)  # H_R
        if global_skip == 'bicubic':
            start_as_bicubic(self.conv_last)

    def cross_layer_index(self, n: int) -> Optional[int]:
        """Index into the kept features of ``x_m`` for block ``n`` (1-based).

        Index 0 is the shallow feature F_S, index k the feature kept by
        block k. None means the block's own feature (GCA-0).
        """
        if self.distance == 0:
            return None
        m = n - self.distance
        if m >= 0:
            return m
        return 0 if self.early_source == 'shallow' else None

    def forward_features(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Shallow conv and the DABs: ``(F_S, F_D)`` (F_D before any long skip)."""
        shallow = self.conv_first(x)
        kept = [shallow]  # kept[k]: what block k hands on; kept[0] = F_S
        feat = shallow
        use_cross = self.gca_mode != 'none'
        for n, block in enumerate(self.blocks, start=1):
            index = self.cross_layer_index(n) if use_cross else None
            feat, attended = block(feat, None if index is None else kept[index])
            if use_cross:
                kept.append(attended if self.cross_feature == 'lea' else feat)
        return shallow, feat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve ``x``.

        Args:
            x (Tensor): (N, num_in_ch, h, w), values in [0, 1].

        Returns:
            Tensor: (N, num_out_ch, h * upscale, w * upscale).
        """
        shallow, feat = self.forward_features(self.shift_in(x))
        if self.conv_after_body is not None:
            feat = self.conv_after_body(feat) + shallow
        out = self.shift_out(self.conv_last(self.upsample(feat)))
        return add_bicubic_skip(out, x, self.upscale, self.global_skip)
