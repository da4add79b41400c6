"""DASAA: deep dual attention with self-attention alignment (video SR x4).

Reference:
    Yuezhong Chu, Yunan Qiao, Heng Liu, Jungong Han, "Dual Attention with
    the Self-Attention Alignment for Efficient Video Super-resolution"
    (DASAA), Cognitive Computation 14, 2022,
    https://doi.org/10.1007/s12559-021-09874-1 (its figures are not
    available to us; details: docs/models/dasaa.md). Authors' repository:
    https://github.com/qynan/DASAA (``model_VSR.py``; incomplete, does not
    run, no weights). Read for facts only; nothing is copied.

Five LR frames -> the x4 centre frame (eq. 4)::

    I_SR = H_R(H_LSTM(H_UP(H_DAM(H_RDB(H_C(I_LR))))))

* ``H_C``: two 3x3 convs over the five frames stacked along the channels
  (``(N, T, C, H, W) -> (N, T*C, H, W)``, frame-major; the authors' 15-channel
  input), ``T*C -> 64 -> 64``.
* ``H_RDB``: 3 residual dense blocks of RDN, chained (6 layers, growth 32).
* ``H_DAM``: PAB and CAB in parallel on ``F_D`` (:class:`PositionAttention`,
  :class:`ChannelAttentionBlock`), then SAAM (:class:`SelfAttentionAlignment`)
  aligns ``F_p`` and ``F_c`` with full 2-D attention and the morphological
  mask; output ``conv1x1(cat(F_p, R, mask))``.
* ``H_UP``: one 3x3 conv ``64 -> 64 * 16`` and a x4 pixel shuffle.
* ``H_LSTM``: a ConvLSTM cell (64 channels, 3x3 gates) at HR.
* ``H_R``: a 3x3 conv to RGB. L1 loss (training side).

Choices the paper leaves open (paper silent; defaults in brackets):

* Sizes [``num_feat=64``, ``num_rdb=3``, ``rdb_layers=6``, ``growth=32``,
  ``reduction=16``]: from the authors' code. RDBs as in RDN (biases in
  every conv; the authors' dense convs have none: 768 parameters) and
  without RDN's global feature fusion (eq. 2 chains the blocks; so do the
  authors).
* PAB [``pab_hidden=64``, ``pab_kernel=3``]: the paper pools "along the
  channel", i.e. one average and one max map of ``(N, 1, H, W)`` (CBAM's
  spatial attention; the authors' code instead pools over 3x3 windows per
  channel). The shared residual block is ``m + conv(relu(conv(m)))``,
  ``1 -> pab_hidden -> 1``, and ``W`` is a conv ``2 -> 1``; kernel sizes and
  the hidden width are not given.
* SAAM: the 1x1 projections ``W_q``, ``W_k`` are shared by the upper and
  lower part, as in the authors' code (PASSRnet's siamese design). This
  matters: the lower part only feeds the mask, which has no gradient, so
  unshared lower projections would never be trained. ``S = W_v F_c`` (the
  paper; the authors project ``F_D`` instead), the fusion concatenates
  ``F_p`` (the paper; the authors concatenate ``F_D``), 1x1 fusion conv
  (authors). No ``1/sqrt(C)`` logit scaling (authors, PASSRnet).
* Mask (paper: "the morphological operation ... play[s] the role of
  calibration"; Fig. 5 unseen): what the mask is made of comes from the
  authors' code, a PASSRnet validity check: the attention every ``F_p``
  position receives from the lower map ``M_cp`` (its column sums), valid if
  above ``mask_threshold`` [0.1], the invalid region then cleaned. A
  softmax row sums to one, so the mean column sum is 1 for 2-D attention
  just as for the authors' row-wise attention, and 0.1 keeps its meaning.
  The cleaning differs (gap): the authors use skimage on the CPU
  (``remove_small_objects(20)``, ``remove_small_holes(10)``,
  ``binary_closing(disk(3))``); we stay on the device with fixed-cost
  conv-based morphology: opening with a ``mask_open_size`` [3] square
  (removes specks thinner than 3 pixels rather than components smaller
  than 20 pixels) and closing with a disk of ``mask_close_radius`` [3]
  (as theirs, zero padding outside the frame; it fills every hole the
  7x7 disk does not fit in, so their small-hole filling is implied).
* Mask gradients: the threshold is a step function, so the mask is
  computed from detached attention under ``no_grad`` (as the authors
  ``.detach()``) and enters the fusion conv as a constant channel. Nothing
  is lost: the exact derivative is 0 almost everywhere. The fusion conv's
  weights on the mask channel are trained; ``M_cp`` itself gets no gradient.
* Attention memory: both parts attend over all ``HW`` positions of the
  frame, ``attn_chunk`` [1024] queries at a time (exact: a softmax row is
  complete within a chunk), so the largest temporary is
  ``chunk x HW`` (the training pass recomputes chunks in backward). Compute
  stays ``3 * (HW)^2 * C`` multiply-adds, which dominates for large frames.
* ConvLSTM: one conv computes the four gates from ``cat(x, h)`` (same
  parameters as the authors' four convs).
* ``global_skip`` ['none'] is basicattn's option, not the paper's: adding
  the MATLAB bicubic x4 of the centre frame lets tiny CPU demos beat
  bicubic within minutes. With it, the reconstruction conv starts at zero,
  so the untrained network is exactly bicubic upsampling (with a random
  reconstruction conv a small network spends hundreds of iterations just
  learning to cancel its initial residual).

Differences from the authors' code (all deliberate): full 2-D attention
(theirs attends along image rows only); the mask in torch on the device
(theirs round-trips through numpy/skimage); an explicit ConvLSTM state
carried across frames (theirs always starts from zeros, on CUDA only); no
unused modules (their DAM holds a conv-ReLU-conv that is never called:
73,856 of their 1,841,419 parameters); PAB as the paper describes it.

Parameters: 1,752,991 with the defaults (the authors' 1,841,419 minus
their 73,856 unused, minus 15,340 for the PAB's channel pooling, plus 768
RDB biases); the paper says 1.8M. MACs per output frame at a 32 x 32 LR
input (the authors' own profiling size): see ``docs/models/dasaa.md``.

Attention taps (:mod:`basicattn.archs.taps`; record them with
:func:`basicattn.analysis.taps.record_taps`), on the LR grid:

* ``dam.pab.position_map``: the position attention map (PAB, eq. 6),
  (N, 1, H, W).
* ``dam.cab.channel_weights``: the channel attention weights (CAB, eq. 7),
  (N, C, 1, 1).
* ``dam.saam.query_attention``: SAAM's alignment attention ``M_pc`` of the
  chosen query pixels (:attr:`~basicattn.archs.taps.Tap.queries`; default
  the centre) over every position of ``F_c``, (N, K, H, W), computed only
  while recorded.
* ``dam.saam.valid_mask``: the morphological validity mask, 1 = valid,
  (N, 1, H, W) (with ``use_mask=True``).
"""

from typing import Literal, Optional, Tuple, Union

import torch
from torch import nn

from basicattn.registry import ARCHS
from basicattn.utils.bounds import check_choice, check_positive_int

from .arch_util import add_bicubic_skip, check_global_skip, start_as_bicubic
from .dasaa_blocks import (
    ChannelAttentionBlock,
    ConvLSTMCell,
    LSTMState,
    PositionAttention,
    ResidualDenseBlock,
    SelfAttentionAlignment,
)

__all__ = ['DASAA', 'DualAttentionModule', 'DASAA_VARIANTS']

Branches = Literal['both', 'pab', 'cab', 'swapped']
#: SAAM's extent: the whole frame (the paper, Sec. 3.5) or each row (the authors' code).
SaamMode = Literal['frame', 'row']

#: Table IV of the paper as DASAA keyword arguments:
#: ``DASAA(**DASAA_VARIANTS['model4'])``.
DASAA_VARIANTS = {
    'DASAA': {},
    'model1': dict(use_rdb=False),  # without RDB
    'model2': dict(use_mask=False),  # without the morphological mask
    'model3': dict(use_lstm=False),  # without the LSTM
    'model4': dict(branches='cab'),  # without PAB (CAB cloned)
    'model5': dict(branches='pab'),  # without CAB (PAB cloned)
    'model6': dict(branches='swapped'),  # PAB and CAB positions exchanged
}


class DualAttentionModule(nn.Module):
    """DAM: PAB and CAB on the same feature, aligned and fused by SAAM.

    ``branches`` selects Table IV's variants: ``'both'`` computes
    ``SAAM(PAB(F_D), CAB(F_D))``; ``'pab'`` / ``'cab'`` build only one
    branch and clone its output into both SAAM inputs (models 5 / 4);
    ``'swapped'`` exchanges the two positions, ``SAAM(CAB(F_D), PAB(F_D))``
    (model 6).

    Args:
        num_feat, reduction, pab_hidden, pab_kernel, branches, use_mask,
        mask_threshold, mask_open_size, mask_close_radius, attn_chunk, saam_mode:
            as in :class:`DASAA`.
    """

    def __init__(
        self,
        num_feat: int = 64,
        reduction: int = 16,
        pab_hidden: int = 64,
        pab_kernel: int = 3,
        branches: str = 'both',
        use_mask: bool = True,
        mask_threshold: float = 0.1,
        mask_open_size: int = 3,
        mask_close_radius: int = 3,
        attn_chunk: Optional[int] = 1024,
        saam_mode: SaamMode = 'frame',
    ):
        super().__init__()
        check_choice(branches, 'branches', Branches, 'DASAA')
        check_choice(saam_mode, 'saam_mode', SaamMode, 'DASAA')
        self.branches = branches
        self.pab = PositionAttention(pab_hidden, pab_kernel) if branches != 'cab' else None
        self.cab = ChannelAttentionBlock(num_feat, reduction) if branches != 'pab' else None
        self.saam = SelfAttentionAlignment(
            num_feat,
            use_mask,
            mask_threshold,
            mask_open_size,
            mask_close_radius,
            attn_chunk,
            saam_mode,
        )

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        f_p = self.pab(feat) if self.pab is not None else None
        f_c = self.cab(feat) if self.cab is not None else None
        if self.branches == 'pab':
            f_c = f_p
        elif self.branches == 'cab':
            f_p = f_c
        elif self.branches == 'swapped':
            f_p, f_c = f_c, f_p
        return self.saam(f_p, f_c)


@ARCHS.register_module()
class DASAA(nn.Module):
    """DASAA (eq. 4): five LR frames -> the super-resolved centre frame.

    Args:
        num_in_ch (int): Channels of a frame. Default: 3.
        num_out_ch (int): Output channels. Default: 3.
        num_frames (int): Frames T of the input window. Default: 5.
        num_feat (int): Feature channels C. Default: 64.
        num_rdb (int): Residual dense blocks. Default: 3.
        rdb_layers (int): Dense layers per RDB. Default: 6.
        growth (int): Growth rate of the RDBs. Default: 32.
        reduction (int): CAB reduction r (hidden ``C // r``). Default: 16.
        pab_hidden (int): Hidden width of the PAB residual block.
            Default: 64.
        pab_kernel (int): Kernel of the PAB convs (odd). Default: 3.
        upscale (int): Scale of the one-stage pixel-shuffle upsampler.
            Default: 4.
        lstm_kernel (int): Kernel of the ConvLSTM gate conv. Default: 3.
        attn_chunk (int | None): Queries per SAAM attention chunk (memory
            ``chunk x HW`` per batch item); None = dense ``HW x HW``.
            Default: 1024.
        mask_threshold (float): Attention coverage above which a position
            is valid. Default: 0.1.
        mask_open_size (int): Square of the mask opening (0/1 = off).
            Default: 3.
        mask_close_radius (int): Disk radius of the mask closing (0 = off).
            Default: 3.
        use_rdb (bool): False = Table IV model 1 (no RDB). Default: True.
        use_mask (bool): False = model 2 (no mask, no SAAM lower part).
            Default: True.
        use_lstm (bool): False = model 3 (reconstruct from the upsampled
            feature). Default: True.
        branches (str): ``'both'``, ``'cab'`` (model 4: PAB removed, CAB
            cloned), ``'pab'`` (model 5) or ``'swapped'`` (model 6).
            Default: ``'both'``.
        global_skip (str): ``'none'`` (the paper) or ``'bicubic'``: add the
            MATLAB bicubic upsampling of the centre frame (basicattn's
            option; needs ``num_in_ch == num_out_ch``; the last conv then
            starts at zero). Default: ``'none'``.
        saam_mode (str): ``'frame'``: SAAM attends over the whole frame
            (the paper's text, ``(HW)^2`` attention); ``'row'``: along each
            row only, as the authors' code (``H W^2``, ``H`` times less;
            for Youku-VESR's 480x270 LR frames 270 times less, see
            docs/models/dasaa.md). Default: ``'frame'``.

    Sequence mode. ``forward(x)`` is one step from a zero ConvLSTM state
    (the authors' behaviour, what a sliding-window trainer wants). To carry
    the ConvLSTM state from one output frame to the next when a clip is
    super-resolved in order::

        state = None
        for t in range(num_output_frames):
            out_t, state = net(windows[:, t], state, return_state=True)

    or ``outs, state = net.forward_sequence(windows, return_state=True)``
    with ``windows`` of shape ``(N, L, T, C, H, W)`` (one input window per
    output frame). The state is ``(h, c)``, each ``(N, num_feat, upscale*H,
    upscale*W)``; it stays in the autograd graph, so detach it between
    steps for truncated back-propagation. Without LSTM (``use_lstm=False``)
    the returned state is None and passing one is an error.
    """

    # x4, 5 frames -> centre (paper: 1.8M; the authors' code 1,841,419 incl. 73,856 unused)
    PAPER_PARAMS = (dict(), 1_752_991)
    TAKES_FRAMES = True
    #: The ONNX graph holds for any batch, height and width (``tools/export.py
    #: --dynamic``, checked at a second size; docs/deploy.md): SAAM's query
    #: chunks are an ONNX ``Loop`` (:mod:`basicattn.ops.attention`), so the
    #: memory bound of ``attn_chunk`` holds in the graph too.
    ONNX_DYNAMIC_HW = True
    #: bf16 (autocast) output against float32, PSNR in dB, measured on the tiny case by
    #: tests/archs/test_bf16_fidelity.py; at least 40 lets --precision bf16 / auto run it
    #: (basicattn/models/inference_precision.py).
    BF16_PSNR_DB = 74.6

    #: Attention taps, name pattern -> meaning (module docstring; docs/models/dasaa.md).
    TAPS = {
        'dam.pab.position_map': 'position attention map of the PAB (eq. 6), (N, 1, H, W)',
        'dam.cab.channel_weights': 'channel attention weights of the CAB (eq. 7), (N, C, 1, 1)',
        'dam.saam.query_attention': 'SAAM alignment attention of the query pixels, (N, K, H, W)',
        'dam.saam.valid_mask': 'morphological validity mask of SAAM, 1 = valid, (N, 1, H, W)',
    }

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_frames: int = 5,
        num_feat: int = 64,
        num_rdb: int = 3,
        rdb_layers: int = 6,
        growth: int = 32,
        reduction: int = 16,
        pab_hidden: int = 64,
        pab_kernel: int = 3,
        upscale: int = 4,
        lstm_kernel: int = 3,
        attn_chunk: Optional[int] = 1024,
        mask_threshold: float = 0.1,
        mask_open_size: int = 3,
        mask_close_radius: int = 3,
        use_rdb: bool = True,
        use_mask: bool = True,
        use_lstm: bool = True,
        branches: str = 'both',
        global_skip: str = 'none',
        saam_mode: SaamMode = 'frame',
    ):
        super().__init__()
        for name, value in dict(
            num_in_ch=num_in_ch,
            num_out_ch=num_out_ch,
            num_frames=num_frames,
            num_feat=num_feat,
            num_rdb=num_rdb,
            rdb_layers=rdb_layers,
            growth=growth,
            reduction=reduction,
            pab_hidden=pab_hidden,
            upscale=upscale,
        ).items():
            check_positive_int(value, name, 'DASAA')
        for name, k in (('pab_kernel', pab_kernel), ('lstm_kernel', lstm_kernel)):
            check_positive_int(k, name, 'DASAA')
            if k % 2 == 0:
                raise ValueError(f'DASAA: {name} must be odd, got {k}')
        if num_feat // reduction < 1:
            raise ValueError(
                f'DASAA: reduction={reduction} leaves no channel for num_feat={num_feat}'
            )
        check_positive_int(attn_chunk, 'attn_chunk', 'DASAA', allow_none=True)
        check_choice(branches, 'branches', Branches, 'DASAA')
        check_global_skip(global_skip, num_in_ch, num_out_ch, 'DASAA')
        self.num_in_ch = num_in_ch
        self.num_frames = num_frames
        self.upscale = upscale
        self.global_skip = global_skip

        self.conv_first = nn.Conv2d(num_frames * num_in_ch, num_feat, 3, 1, 1)
        self.conv_second = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.rdbs = (
            nn.Sequential(
                *[ResidualDenseBlock(num_feat, rdb_layers, growth) for _ in range(num_rdb)]
            )
            if use_rdb
            else nn.Identity()
        )
        self.dam = DualAttentionModule(
            num_feat,
            reduction,
            pab_hidden,
            pab_kernel,
            branches,
            use_mask,
            mask_threshold,
            mask_open_size,
            mask_close_radius,
            attn_chunk,
            saam_mode,
        )
        self.upsample = nn.Sequential(
            nn.Conv2d(num_feat, num_feat * upscale * upscale, 3, 1, 1), nn.PixelShuffle(upscale)
        )
        self.lstm = ConvLSTMCell(num_feat, num_feat, lstm_kernel) if use_lstm else None
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        if global_skip == 'bicubic':
            start_as_bicubic(self.conv_last)

    def _check_input(self, x: torch.Tensor):
        if x.dim() != 5:
            raise ValueError(
                f'DASAA expects a 5-D (N, T, C, H, W) input, got shape {tuple(x.shape)}'
            )
        if x.shape[1] != self.num_frames or x.shape[2] != self.num_in_ch:
            raise ValueError(
                f'DASAA expects T={self.num_frames} frames of '
                f'C={self.num_in_ch} channels, got shape {tuple(x.shape)}'
            )

    def forward(
        self, x: torch.Tensor, state: Optional[LSTMState] = None, return_state: bool = False
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, Optional[LSTMState]]]:
        """Super-resolve the centre frame of one window.

        Args:
            x (Tensor): ``(N, T, C, H, W)`` RGB in [0, 1], T = num_frames.
            state (tuple[Tensor, Tensor] | None): ConvLSTM ``(h, c)`` from
                the previous output frame (``return_state=True``); None
                starts from zeros.
            return_state (bool): Also return the new ConvLSTM state.

        Returns:
            Tensor | tuple: ``(N, num_out_ch, upscale*H, upscale*W)``, or
            ``(output, new_state)`` when ``return_state`` (``new_state`` is
            None without LSTM).
        """
        self._check_input(x)
        feat = self.conv_second(self.conv_first(x.flatten(1, 2)))
        feat = self.upsample(self.dam(self.rdbs(feat)))
        if self.lstm is not None:
            feat, state = self.lstm(feat, state)
        elif state is not None:
            raise ValueError(
                'DASAA: a ConvLSTM state was passed but the model has no LSTM (use_lstm=False)'
            )
        out = add_bicubic_skip(
            self.conv_last(feat), x[:, self.num_frames // 2], self.upscale, self.global_skip
        )
        return (out, state) if return_state else out

    def forward_sequence(
        self, windows: torch.Tensor, state: Optional[LSTMState] = None, return_state: bool = False
    ):
        """Super-resolve consecutive output frames, carrying the state.

        Args:
            windows (Tensor): ``(N, L, T, C, H, W)``: for each of the L
                output frames, in order, its window of T input frames.
            state (tuple[Tensor, Tensor] | None): State before the first
                frame; None = zeros.
            return_state (bool): Also return the state after the last frame.

        Returns:
            Tensor | tuple: ``(N, L, num_out_ch, upscale*H, upscale*W)``,
            and the final state when ``return_state``.
        """
        if windows.dim() != 6:
            raise ValueError(
                'DASAA.forward_sequence expects (N, L, T, C, H, '
                f'W) windows, got shape {tuple(windows.shape)}'
            )
        outs = []
        for t in range(windows.shape[1]):
            out, state = self(windows[:, t], state, return_state=True)
            outs.append(out)
        outs = torch.stack(outs, dim=1)
        return (outs, state) if return_state else outs
