"""Building blocks of DASAA (see :mod:`basicattn.archs.dasaa_arch`).

* :class:`ResidualDenseBlock`: RDN's residual dense block.
* :class:`PositionAttention` (PAB) and :class:`ChannelAttentionBlock` (CAB).
* :class:`MorphologicalMask`: threshold + binary opening / closing, in torch.

The generic helpers it uses live in :mod:`basicattn.ops` and are re-exported
here: :func:`~basicattn.ops.attention.chunked_attention` /
:func:`~basicattn.ops.attention.attention_coverage` (softmax attention over
all ``HW`` positions, ``chunk_size`` queries at a time, so that no
``HW x HW`` matrix exists) and the binary morphology of
:mod:`basicattn.ops.morphology` (``disk``, ``binary_dilation``,
``binary_erosion``).
* :class:`SelfAttentionAlignment` (SAAM) and :class:`ConvLSTMCell`.

The attention taps (:mod:`basicattn.archs.taps`) are listed in
:class:`basicattn.archs.dasaa_arch.DASAA`'s ``TAPS``.
"""

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from basicattn.ops.attention import attention_coverage, chunked_attention
from basicattn.ops.morphology import binary_dilation, binary_erosion, disk
from basicattn.utils.bounds import check_positive_int

from .taps import Tap

__all__ = [
    'ResidualDenseBlock',
    'PositionAttention',
    'ChannelAttentionBlock',
    'chunked_attention',
    'attention_coverage',
    'disk',
    'binary_dilation',
    'binary_erosion',
    'MorphologicalMask',
    'SelfAttentionAlignment',
    'ConvLSTMCell',
]

LSTMState = Tuple[torch.Tensor, torch.Tensor]

#: SAAM's attention extent: the whole frame (the paper) or each row (the authors' code).
SAAM_MODES = ('frame', 'row')


def _conv(in_ch: int, out_ch: int, kernel_size: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size, 1, kernel_size // 2)


# --------------------------------------------------------------------------
# Feature extraction
# --------------------------------------------------------------------------
class ResidualDenseBlock(nn.Module):
    """RDB of RDN (Zhang et al., CVPR 2018).

    ``num_layers`` densely connected 3x3 conv + ReLU layers (each adds
    ``growth`` channels to the running concatenation), a 1x1 local feature
    fusion back to ``num_feat`` channels and a local residual connection.

    Args:
        num_feat (int): Input / output channels. Default: 64.
        num_layers (int): Dense layers. Default: 6.
        growth (int): Channels added by each dense layer. Default: 32.
    """

    def __init__(self, num_feat: int = 64, num_layers: int = 6, growth: int = 32):
        super().__init__()
        self.layers = nn.ModuleList(
            _conv(num_feat + i * growth, growth, 3) for i in range(num_layers)
        )
        self.fusion = nn.Conv2d(num_feat + num_layers * growth, num_feat, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for layer in self.layers:
            feats.append(F.relu(layer(torch.cat(feats, dim=1))))
        return x + self.fusion(torch.cat(feats, dim=1))


# --------------------------------------------------------------------------
# Dual attention: PAB and CAB
# --------------------------------------------------------------------------
class _MapResBlock(nn.Module):
    """``m + conv(relu(conv(m)))`` on a one-channel map, ``hidden`` wide."""

    def __init__(self, hidden: int, kernel_size: int):
        super().__init__()
        self.conv1 = _conv(1, hidden, kernel_size)
        self.conv2 = _conv(hidden, 1, kernel_size)

    def forward(self, m: torch.Tensor) -> torch.Tensor:
        return m + self.conv2(F.relu(self.conv1(m)))


class PositionAttention(nn.Module):
    """PAB (paper Sec. 3.2, eq. 6): ``F_p = sigmoid(W(X_a; X_m)) * F_D``.

    The average and the maximum over the channels of ``F_D`` give two
    one-channel maps; both go through the *same* residual block (one set of
    weights, applied to the two maps stacked along the batch axis), giving
    ``X_a`` and ``X_m``; their concatenation goes through one conv ``W`` and a
    sigmoid, and the resulting ``(N, 1, H, W)`` map multiplies ``F_D``.

    Args:
        hidden (int): Width of the residual block's hidden layer.
            Default: 64.
        kernel_size (int): Kernel of the residual block's convs and of ``W``.
            Default: 3.
    """

    def __init__(self, hidden: int = 64, kernel_size: int = 3):
        super().__init__()
        self.res_block = _MapResBlock(hidden, kernel_size)
        self.fuse = _conv(2, 1, kernel_size)
        self.position_map = Tap()  # the map, (N, 1, H, W)

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """The ``(N, 1, H, W)`` position attention map of ``x``."""
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=0)
        x_a, x_m = self.res_block(pooled).chunk(2, dim=0)  # shared weights
        return self.position_map(torch.sigmoid(self.fuse(torch.cat([x_a, x_m], dim=1))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.attention_map(x)


class ChannelAttentionBlock(nn.Module):
    """CAB (paper Sec. 3.3, eq. 7): ``F_c = sigmoid(F_a + F_m) * F_D``.

    Adaptive average and max pooling to ``1 x 1``, each through its own
    1x1 conv ``C -> C/r``, ReLU, 1x1 conv ``C/r -> C`` (the paper: "different
    convolution operations"), summed, sigmoid: one weight per channel.

    Args:
        num_feat (int): Channels C. Default: 64.
        reduction (int): r; the hidden width is ``C // r``. Default: 16.
    """

    def __init__(self, num_feat: int = 64, reduction: int = 16):
        super().__init__()
        hidden = num_feat // reduction

        def mlp():
            return nn.Sequential(
                nn.Conv2d(num_feat, hidden, 1),
                nn.ReLU(inplace=True),
                nn.Conv2d(hidden, num_feat, 1),
            )

        self.mlp_avg = mlp()
        self.mlp_max = mlp()
        self.channel_weights = Tap()  # the weights, (N, C, 1, 1)

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """The ``(N, C, 1, 1)`` channel attention weights of ``x``."""
        f_a = self.mlp_avg(x.mean(dim=(2, 3), keepdim=True))
        f_m = self.mlp_max(x.amax(dim=(2, 3), keepdim=True))
        return self.channel_weights(torch.sigmoid(f_a + f_m))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.attention_map(x)


class MorphologicalMask(nn.Module):
    """Validity mask: threshold the attention coverage, clean by morphology.

    ``valid = coverage > threshold``; the *invalid* (occluded) region is
    then cleaned, as the authors do with skimage, but in torch on the
    input's device: a binary opening with an ``open_size`` square removes
    specks of invalid pixels (the authors remove invalid components of fewer
    than 20 pixels), and a binary closing with a disk of ``close_radius``
    (with zeros assumed outside the frame, as the authors' zero padding
    before ``binary_closing(disk(3))``) fills gaps and holes inside invalid
    regions (it fills every enclosed hole the disk does not fit in, which
    covers the authors' ``remove_small_holes`` of fewer than 10 pixels).
    The returned mask is 1 where valid.

    The mask has no gradient: thresholding is a step function (derivative 0
    almost everywhere, undefined at the threshold), so it is computed from
    detached values and is a constant input to the layer that consumes it.

    Args:
        threshold (float): Coverage above which a position is valid.
            Default: 0.1.
        open_size (int): Side of the opening's square; 0 or 1 skips it.
            Default: 3.
        close_radius (int): Radius of the closing's disk; 0 skips it.
            Default: 3.
    """

    def __init__(self, threshold: float = 0.1, open_size: int = 3, close_radius: int = 3):
        super().__init__()
        if open_size < 0 or (open_size > 1 and open_size % 2 == 0):
            raise ValueError(f'open_size must be 0, 1 or an odd int, got {open_size!r}')
        if close_radius < 0:
            raise ValueError(f'close_radius must be >= 0, got {close_radius!r}')
        self.threshold = threshold
        self.open_size = open_size
        self.close_radius = close_radius
        # structuring elements as buffers: they follow the module's device
        self.register_buffer('square', torch.ones(open_size, open_size), persistent=False)
        self.register_buffer('disk', disk(close_radius), persistent=False)

    @torch.no_grad()
    def forward(self, coverage: torch.Tensor) -> torch.Tensor:
        """Mask of a ``(N, 1, H, W)`` coverage map.

        Returns:
            Tensor: 0/1 float32 ``(N, 1, H, W)``, 1 = valid.
        """
        invalid = (coverage.float() <= self.threshold).float()
        if self.open_size > 1:
            invalid = binary_dilation(binary_erosion(invalid, self.square), self.square)
        r = self.close_radius
        if r > 0:
            padded = F.pad(invalid, (r, r, r, r), value=0.0)
            closed = binary_erosion(binary_dilation(padded, self.disk), self.disk)
            invalid = closed[..., r:-r, r:-r]
        return 1.0 - invalid


# --------------------------------------------------------------------------
# SAAM
# --------------------------------------------------------------------------
class SelfAttentionAlignment(nn.Module):
    """SAAM (paper Sec. 3.5, Fig. 5): align and fuse ``F_p`` and ``F_c``.

    Upper part: ``P = W_q F_p``, ``Q = W_k F_c``, ``M_pc = softmax(P^T Q)``
    (a row per position of ``F_p``, softmax over all positions of ``F_c``),
    ``S = W_v F_c``, ``R = M_pc S``. Lower part, ``F_p`` and ``F_c``
    swapped: ``M_cp = softmax((W_q F_c)^T (W_k F_p))``; the attention each
    ``F_p`` position receives, ``sum`` over the rows of ``M_cp``, is
    thresholded and cleaned into the mask (:class:`MorphologicalMask`).
    Output: ``conv1x1(cat(F_p, R, mask))``. ``W_q`` and ``W_k`` are shared
    by the two parts (siamese, as in the authors' code and PASSRnet).

    ``mode='frame'`` (the paper's reading, default): both parts attend over
    all ``H x W`` positions (2-D), ``chunk_size`` queries at a time
    (:func:`chunked_attention`), never an ``HW x HW`` matrix unless
    ``chunk_size`` is None or at least ``HW``. ``mode='row'`` (the authors'
    code, qynan/DASAA ``DAM2``, PASSRnet's parallax attention): a position
    attends only to the ``W`` positions of its own row, ``H`` independent
    ``W x W`` attentions, so the cost is ``H W^2 C`` multiply-adds per
    product instead of ``(HW)^2 C`` (``H`` times less); the coverage of the
    mask is then also counted per row. Measured costs: docs/models/dasaa.md.

    Args:
        num_feat (int): Channels C. Default: 64.
        use_mask (bool): Compute the mask and concatenate it; False drops
            the lower part and the mask channel (Table IV, model 2).
            Default: True.
        mask_threshold, mask_open_size, mask_close_radius: See
            :class:`MorphologicalMask`.
        chunk_size (int | None): Queries per attention chunk. Default: 1024.
        mode (str): ``'frame'`` (attend over the whole frame) or ``'row'``
            (along rows, as the authors' code). Default: ``'frame'``.
    """

    def __init__(
        self,
        num_feat: int = 64,
        use_mask: bool = True,
        mask_threshold: float = 0.1,
        mask_open_size: int = 3,
        mask_close_radius: int = 3,
        chunk_size: Optional[int] = 1024,
        mode: str = 'frame',
    ):
        super().__init__()
        check_positive_int(chunk_size, 'chunk_size', allow_none=True)
        if mode not in SAAM_MODES:
            raise ValueError(f'SAAM: mode must be one of {SAAM_MODES}, got {mode!r}')
        self.chunk_size = chunk_size
        self.mode = mode
        self.to_q = nn.Conv2d(num_feat, num_feat, 1)
        self.to_k = nn.Conv2d(num_feat, num_feat, 1)
        self.to_v = nn.Conv2d(num_feat, num_feat, 1)
        self.mask = (
            MorphologicalMask(mask_threshold, mask_open_size, mask_close_radius)
            if use_mask
            else None
        )
        self.fuse = nn.Conv2d(2 * num_feat + int(use_mask), num_feat, 1)
        self.query_attention = Tap()  # rows of M_pc of the query pixels, (N, K, H, W)
        self.valid_mask = Tap()  # the 0/1 mask, (N, 1, H, W)

    # Plain reshapes rather than einops: an ONNX export then records the
    # sizes as graph values, so the graph holds for any H and W.
    @staticmethod
    def _frame_tokens(x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).transpose(1, 2)  # b c h w -> b (h w) c

    def _tokens(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, HW, C)`` (frame: one attention per image) or ``(B H, W, C)`` (row)."""
        if self.mode == 'row':
            return x.permute(0, 2, 3, 1).flatten(0, 1)  # b c h w -> (b h) w c
        return self._frame_tokens(x)

    def _grid(self, tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Back from :meth:`_tokens`' layout to ``(B, C, H, W)``."""
        c = tokens.shape[-1]
        if self.mode == 'row':
            return tokens.reshape(-1, h, w, c).permute(0, 3, 1, 2)  # (b h) w c -> b c h w
        return tokens.transpose(1, 2).reshape(-1, c, h, w)  # b (h w) c -> b c h w

    def validity_mask(self, feat_p: torch.Tensor, feat_c: torch.Tensor) -> torch.Tensor:
        """The lower part: ``(N, 1, H, W)`` 0/1 mask on the grid of ``F_p``.

        Computed without gradient (see :class:`MorphologicalMask`).
        """
        if self.mask is None:
            raise ValueError('SAAM: validity_mask needs use_mask=True')
        h, w = feat_p.shape[-2:]
        with torch.no_grad():
            coverage = attention_coverage(
                self._tokens(self.to_q(feat_c)), self._tokens(self.to_k(feat_p)), self.chunk_size
            )
        coverage = self._grid(coverage.unsqueeze(-1), h, w)
        return self.valid_mask(self.mask(coverage))

    def _record_query_attention(self, q: torch.Tensor, k: torch.Tensor, h: int, w: int) -> None:
        """Pass the rows of ``M_pc = softmax(P^T Q)`` of the query pixels to the tap.

        Only while a recorder listens: K rows of ``HW`` weights, never the
        ``HW x HW`` matrix; float32 as :func:`chunked_attention`. ``q`` and
        ``k`` are in the frame layout ``(B, HW, C)``; in row mode the weights
        outside the query's row are 0.
        """
        index = self.query_attention.query_index(h, w, q.device)
        rows = q[:, index]
        dtype = torch.promote_types(q.dtype, torch.float32)
        with torch.no_grad():
            logits = rows.to(dtype) @ k.to(dtype).transpose(1, 2)
            if self.mode == 'row':
                key_row = torch.arange(h * w, device=q.device) // w
                other = key_row[None, :] != (index // w)[:, None]  # (K, HW)
                logits = logits.masked_fill(other, float('-inf'))
            att = torch.softmax(logits, dim=-1)
        self.query_attention(att.unflatten(-1, (h, w)))

    def forward(self, feat_p: torch.Tensor, feat_c: torch.Tensor) -> torch.Tensor:
        if feat_p.shape != feat_c.shape:
            raise ValueError(
                f'SAAM: F_p and F_c need the same shape, got '
                f'{tuple(feat_p.shape)} and '
                f'{tuple(feat_c.shape)}'
            )
        h, w = feat_p.shape[-2:]
        q_map, k_map = self.to_q(feat_p), self.to_k(feat_c)
        if self.query_attention.listening:
            self._record_query_attention(self._frame_tokens(q_map), self._frame_tokens(k_map), h, w)
        q, k = self._tokens(q_map), self._tokens(k_map)
        ref = chunked_attention(q, k, self._tokens(self.to_v(feat_c)), self.chunk_size)
        parts = [feat_p, self._grid(ref, h, w)]
        if self.mask is not None:
            parts.append(self.validity_mask(feat_p, feat_c).to(feat_p.dtype))
        return self.fuse(torch.cat(parts, dim=1))


# --------------------------------------------------------------------------
# ConvLSTM
# --------------------------------------------------------------------------
class ConvLSTMCell(nn.Module):
    """Convolutional LSTM cell with an explicit state.

    ``i, f, g, o = split(conv(cat(x, h)))``; ``c' = sigmoid(f) * c +
    sigmoid(i) * tanh(g)``; ``h' = sigmoid(o) * tanh(c')``. One conv
    computes the four gates (the same parameters as four separate convs).

    Args:
        in_ch (int): Input channels. Default: 64.
        hidden_ch (int): Channels of ``h`` and ``c``. Default: 64.
        kernel_size (int): Gate conv kernel. Default: 3.
    """

    def __init__(self, in_ch: int = 64, hidden_ch: int = 64, kernel_size: int = 3):
        super().__init__()
        self.hidden_ch = hidden_ch
        self.gates = _conv(in_ch + hidden_ch, 4 * hidden_ch, kernel_size)

    def init_state(self, x: torch.Tensor) -> LSTMState:
        """Zero ``(h, c)`` for an input ``x`` of shape ``(N, in_ch, H, W)``."""
        zeros = x.new_zeros(x.shape[0], self.hidden_ch, *x.shape[-2:])
        return zeros, zeros

    def _check_state(self, x, state):
        if (
            not isinstance(state, (tuple, list))
            or len(state) != 2
            or not all(torch.is_tensor(s) for s in state)
        ):
            raise ValueError(
                f'ConvLSTM state must be a tuple (h, c) of two tensors, got {type(state).__name__}'
            )
        expected = (x.shape[0], self.hidden_ch, *x.shape[-2:])
        for name, s in zip(('h', 'c'), state):
            if tuple(s.shape) != expected:
                raise ValueError(
                    f'ConvLSTM state {name} has shape {tuple(s.shape)}, '
                    f'expected {expected} for an input of shape '
                    f'{tuple(x.shape)} (was the state made for another '
                    'batch or frame size?)'
                )

    def forward(
        self, x: torch.Tensor, state: Optional[LSTMState] = None
    ) -> Tuple[torch.Tensor, LSTMState]:
        """One step.

        Args:
            x (Tensor): ``(N, in_ch, H, W)``.
            state (tuple[Tensor, Tensor] | None): ``(h, c)``, each
                ``(N, hidden_ch, H, W)``; None = zeros.

        Returns:
            tuple: ``h'`` and the new state ``(h', c')``.
        """
        if state is None:
            state = self.init_state(x)
        else:
            self._check_state(x, state)
        h, c = state
        i, f, g, o = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)
