"""MANA: Memory-Augmented Non-local Attention for video super-resolution.

Reference:
    Jiyang Yu, Jingen Liu, Liefeng Bo, Tao Mei. "Memory-Augmented Non-Local
    Attention for Video Super-Resolution". CVPR 2022.
    Authors' training code (MIT): https://github.com/jiy173/MANA
    (no test code and no weights were released).

Seven LR frames -> the x4 centre frame. Every frame goes through a shared
encoder (3x3 conv + LeakyReLU(0.1) + 5 residual blocks). The centre feature
queries (1) every frame with a Gaussian-weighted non-local attention
(paper Sec. 3.2) and (2) a learned memory bank (Sec. 3.3). Both outputs go
through zero-initialised 1x1 convs and are added to the un-normalised
centre feature; 40 residual blocks and a pixel-shuffle upsampler give a
residual that is added to the bilinear x4 upsampling of the centre frame.

Differences from the paper and from the authors' code (all deliberate):

* **Any frame size, no HW x HW matrix.** The authors precompute the squared
  pixel distances of a fixed 64 x 64 grid (a 4096 x 4096 tensor stored as a
  frozen parameter in every checkpoint), so their model only runs on
  64 x 64 inputs. We compute the Gaussian on the fly for the current size
  and, by default (``attention_mode='tiled'``), never build an HW x HW
  matrix: :func:`basicattn.ops.nonlocal_attention.gaussian_nonlocal_attention`
  keeps the exact softmax over all positions (tiled logsumexp) and skips
  the keys where the Gaussian is below ``attention_tol`` (1e-8). The dense
  computation is ``attention_mode='dense'``.
* **Memory size.** ``num_slots`` defaults to 256 as in the code (the paper's
  tables pick N = 512 as best; pass ``num_slots=512`` for the paper's
  model, as options/train/mana_x4_vimeo.yml does). ``use_memory=False`` is
  Table 2's ``No_Mem`` row: no memory module, the cross-frame attention
  alone (not in the code).
* **Quantisation loss.** The authors' forward always returns
  ``(output, quant_loss)``. Ours returns the output (so generic training and
  test code can call it) and ``(output, {'quant': quant_loss})`` with
  ``return_aux=True`` (the toolbox's convention for losses a network
  computes itself, read by ``AuxiliaryLoss(term='quant')``);
  :meth:`MANA.quant_loss` computes the loss alone from the centre frame
  (the only input it depends on), which is all that the second training
  stage needs.
* **Precision.** The authors' ``is_training=False`` path casts the attention
  to half precision; we compute in the input dtype.
* **Names.** Their ``phi`` / ``theta`` / ``g`` (query of the centre, key and
  value of every frame), ``W_z``, ``W_z1``, ``mb`` and ``std`` are
  ``to_q`` / ``to_k`` / ``to_v``, ``attention.conv_out``,
  ``memory.conv_out``, ``memory.bank`` and ``attention.sigma`` here (the
  converter ``mana_official`` renames them). The centre frame is
  ``num_frames // 2`` (the code hard-wires index 3 of 7).

Facts kept from the code where the paper is silent: one GroupNorm
(32 groups, eps 1e-6, affine) shared by all frames (the centre is
normalised by the same module); no ``1 / sqrt(d)`` in the cross-frame
logits but ``1 / sqrt(64)`` in the memory logits; the bank is initialised
from a standard normal; sigma is one trainable scalar (init 4 LR pixels)
and only ``sigma^2`` is used, so its sign is irrelevant; the quantisation
loss ``mean |Q - Y|`` is taken between the centre query embedding and its
memory read-out, so only the bank and the layers before the query (if
trainable) receive its gradient -- in the second stage ``memory.conv_out``
is trainable in the code but gets no gradient from that loss.

Attention taps (:mod:`basicattn.archs.taps`; record them with
:func:`basicattn.analysis.taps.record_taps`), on the LR grid:

* ``attention.query_attention``: the cross-frame non-local attention of the
  chosen query pixels (:attr:`~basicattn.archs.taps.Tap.queries`; default
  the centre) of the centre frame over every pixel of every frame,
  ``softmax * Gaussian`` as in eq. 1, (N, K, T, H, W); computed only while
  recorded, never as an ``HW x HW`` matrix.
* ``memory.slot_attention``: the memory-bank attention, which of the
  ``num_slots`` entries each pixel reads, (N, H, W, num_slots).
"""

from typing import Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from basicattn.archs.arch_util import lrelu
from basicattn.archs.edsr_arch import ResBlock
from basicattn.ops.nonlocal_attention import (
    gaussian_nonlocal_attention,
    gaussian_nonlocal_attention_dense,
)
from basicattn.registry import ARCHS

from .taps import Tap

_ATTENTION_MODES = ('tiled', 'dense')


def _zero_conv1x1(in_ch: int, out_ch: int) -> nn.Conv2d:
    conv = nn.Conv2d(in_ch, out_ch, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def _split_frames(x: torch.Tensor, t: int) -> torch.Tensor:
    """``(B T, C, H, W) -> (B, T, C, H, W)``.

    A reshape with the sizes read from ``x`` (not ``unflatten``, which an
    ONNX export records with the export size's constants), so an exported
    graph holds for any batch, height and width.
    """
    _, c, h, w = x.shape
    return x.reshape(-1, t, c, h, w)


class CrossFrameAttention(nn.Module):
    """Gaussian-weighted cross-frame non-local attention (paper Fig. 3).

    GroupNorm on every frame feature; the centre frame gives the query, every
    frame (centre included) keys and values through 1x1 convs. Each frame is
    attended separately (softmax over its positions, times a Gaussian of the
    pixel distance, not renormalised); the ``T`` outputs are concatenated
    and a zero-initialised 1x1 conv maps them to ``num_feat`` channels.

    Args:
        num_feat (int): Channels of the frame features. Default: 128.
        num_frames (int): Frames per clip, odd. Default: 7.
        embed_dim (int): Query/key/value channels. Default: 64.
        num_groups (int): GroupNorm groups. Default: 32.
        sigma (float): Initial Gaussian standard deviation, LR pixels.
            Default: 4.0.
        mode (str): ``'tiled'`` (memory-efficient) or ``'dense'``.
            Default: ``'tiled'``.
        tile_size (int): Query tile side of the tiled mode. Default: 16.
        tol (float): Gaussian weight below which the tiled mode skips keys.
            Default: 1e-8.
    """

    def __init__(
        self,
        num_feat: int = 128,
        num_frames: int = 7,
        embed_dim: int = 64,
        num_groups: int = 32,
        sigma: float = 4.0,
        mode: str = 'tiled',
        tile_size: int = 16,
        tol: float = 1e-8,
    ):
        super().__init__()
        if mode not in _ATTENTION_MODES:
            raise ValueError(f'attention mode must be one of {_ATTENTION_MODES}, got {mode!r}')
        self.mode = mode
        self.tile_size = tile_size
        self.tol = tol
        self.norm = nn.GroupNorm(num_groups, num_feat, eps=1e-6)
        self.to_q = nn.Conv2d(num_feat, embed_dim, 1)
        self.to_k = nn.Conv2d(num_feat, embed_dim, 1)
        self.to_v = nn.Conv2d(num_feat, embed_dim, 1)
        self.conv_out = _zero_conv1x1(embed_dim * num_frames, num_feat)
        self.sigma = nn.Parameter(torch.full((1,), float(sigma)))
        self.query_attention = Tap()  # (B, K, T, H, W), only while recorded

    @torch.no_grad()
    def _record_query_attention(self, q: torch.Tensor, key: torch.Tensor) -> None:
        """Pass the attention of the query pixels over every frame to the tap.

        ``q`` ``(B, 1, H, W, E)``, ``key`` ``(B, T, H, W, E)``: for each query
        pixel ``p`` and frame ``t``, ``softmax_q(Q[p] . K_t[q]) *
        exp(-|p - q|^2 / (2 sigma^2))`` over the frame's pixels ``q``, in
        float32 (K rows of ``HW`` weights per frame).
        """
        h, w = q.shape[2:4]
        index = self.query_attention.query_index(h, w, q.device)
        dtype = torch.promote_types(q.dtype, torch.float32)
        rows = q.flatten(2, 3)[:, :, index].to(dtype)  # (B, 1, K, E)
        logits = rows @ key.flatten(2, 3).to(dtype).transpose(-1, -2)  # (B, T, K, HW)
        ys = torch.arange(h, device=q.device, dtype=dtype)
        xs = torch.arange(w, device=q.device, dtype=dtype)
        qy, qx = (index // w).to(dtype), (index % w).to(dtype)
        d2 = (ys[None, :, None] - qy[:, None, None]).square() + (
            xs[None, None, :] - qx[:, None, None]
        ).square()  # (K, H, W)
        sigma = self.sigma.to(dtype).reshape(())
        gauss = torch.exp(d2.flatten(1) * (-0.5 / (sigma * sigma)))  # (K, HW)
        att = torch.softmax(logits, dim=-1) * gauss
        self.query_attention(att.unflatten(-1, (h, w)).transpose(1, 2))

    def forward(self, feats: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Attend from the centre frame to every frame.

        Args:
            feats (Tensor): Frame features ``(B, T, C, H, W)``.

        Returns:
            tuple[Tensor, Tensor]: The attention output ``(B, C, H, W)`` and
            the centre query embedding ``(B, embed_dim, H, W)`` (the query of
            the memory module).
        """
        t = feats.shape[1]
        normed = self.norm(feats.flatten(0, 1))
        query = self.to_q(_split_frames(normed, t)[:, t // 2])
        # plain reshapes rather than einops: an ONNX export then records the
        # sizes as graph values, so the graph holds for any H and W
        key = _split_frames(self.to_k(normed), t).permute(0, 1, 3, 4, 2)  # b t h w e
        value = _split_frames(self.to_v(normed), t).permute(0, 1, 3, 4, 2)
        q = query.permute(0, 2, 3, 1).unsqueeze(1)  # b 1 h w e
        if self.query_attention.listening:
            self._record_query_attention(q, key)
        if self.mode == 'dense':
            out = gaussian_nonlocal_attention_dense(q, key, value, self.sigma)
        else:
            out = gaussian_nonlocal_attention(
                q, key, value, self.sigma, tile_size=self.tile_size, tol=self.tol
            )
        out = out.permute(0, 1, 4, 2, 3).flatten(1, 2)  # b (t e) h w
        return self.conv_out(out), query


class MemoryAttention(nn.Module):
    """Memory-augmented attention (paper Fig. 4, eq. 2).

    ``Y = softmax(Q M / sqrt(d)) M^T`` with a learned bank ``M`` of
    ``num_slots`` columns; a zero-initialised 1x1 conv maps ``Y`` to
    ``num_feat`` channels. The quantisation loss is ``mean |Q - Y|``.

    Args:
        embed_dim (int): Query and slot dimension ``d``. Default: 64.
        num_slots (int): Slots ``N`` of the bank. Default: 256.
        num_feat (int): Output channels. Default: 128.
    """

    def __init__(self, embed_dim: int = 64, num_slots: int = 256, num_feat: int = 128):
        super().__init__()
        self.bank = nn.Parameter(torch.randn(embed_dim, num_slots))
        self.conv_out = _zero_conv1x1(embed_dim, num_feat)
        self.slot_attention = Tap()  # (B, H, W, num_slots)

    def read(self, query: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return the read-out ``Y`` and ``Q``, both ``(B, HW, d)``."""
        q = query.flatten(2).transpose(1, 2)  # b (h w) e
        attn = torch.softmax(q @ self.bank * q.shape[-1] ** -0.5, dim=-1)
        if self.slot_attention.listening:  # the (B, H, W, N) view only for a recorder
            self.slot_attention(attn.unflatten(1, query.shape[-2:]))
        return attn @ self.bank.t(), q

    def forward(self, query: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Read the bank with ``query`` ``(B, d, H, W)``.

        Returns:
            tuple[Tensor, Tensor]: The output ``(B, num_feat, H, W)`` and the
            quantisation loss (scalar).
        """
        y, q = self.read(query)
        quant_loss = (q - y).abs().mean()
        n, e, h, w = query.shape
        y = y.transpose(1, 2).reshape(n, e, h, w)
        return self.conv_out(y), quant_loss


@ARCHS.register_module()
class MANA(nn.Module):
    """MANA video super-resolution x4 (Yu et al., CVPR 2022).

    Input: ``(N, T, C, H, W)`` RGB in [0, 1] with ``T = num_frames``, any
    ``H, W``. Output: the centre frame ``(N, C, 4H, 4W)``. See the module
    docstring for the differences from the paper and the authors' code.

    Parameters with the defaults: 14,317,508 (all trainable; the authors'
    model has the same count plus its frozen 4096 x 4096 distance matrix).

    Args:
        num_in_ch (int): Input channels. Default: 3.
        num_out_ch (int): Output channels (must equal ``num_in_ch``: the
            bilinear upsampling of the centre frame is added). Default: 3.
        num_feat (int): Feature channels C. Default: 128.
        num_frames (int): Frames per clip T, odd. Default: 7.
        num_encoder_blocks (int): Residual blocks of the frame encoder.
            Default: 5.
        num_decoder_blocks (int): Residual blocks of the decoder.
            Default: 40.
        embed_dim (int): Attention and memory embedding C' = C / 2.
            Default: 64.
        num_groups (int): GroupNorm groups. Default: 32.
        num_slots (int): Memory slots N (code 256, paper's best 512).
            Default: 256.
        sigma (float): Initial standard deviation of the attention's
            Gaussian, in LR pixels. Default: 4.0.
        hr_feat (int): Channels after the second pixel shuffle. Default: 64.
        attention_mode (str): ``'tiled'`` (exact softmax, no HW x HW
            matrix) or ``'dense'`` (reference). Default: ``'tiled'``.
        attention_tile (int): Query tile side of the tiled attention.
            Default: 16.
        attention_tol (float): Gaussian weight below which the tiled
            attention skips keys. Default: 1e-8.
        use_memory (bool): Build the memory-augmented attention; False is
            Table 2's ``No_Mem`` (no ``memory.*`` weights, no quantisation
            loss). Default: True.
    """

    # x4, 7 frames -> centre, the coded 256 memory slots (the paper's N = 512: +16,384)
    PAPER_PARAMS = (dict(), 14_317_508)
    TAKES_FRAMES = True
    #: The ONNX graph holds for any batch, height and width (``tools/export.py
    #: --dynamic``, checked at a second size; docs/deploy.md): the tiles of the
    #: non-local attention are ONNX ``Loop`` nodes
    #: (:mod:`basicattn.ops.nonlocal_attention`), memory ``O(tile^2 x HW)``.
    ONNX_DYNAMIC_HW = True
    #: bf16 (autocast) output against float32, PSNR in dB, measured on the tiny case by
    #: tests/archs/test_bf16_fidelity.py; at least 40 lets --precision bf16 / auto run it
    #: (basicattn/models/inference_precision.py).
    BF16_PSNR_DB = 76.6

    #: Attention taps, name pattern -> meaning (module docstring; docs/models/mana.md).
    TAPS = {
        'attention.query_attention': 'cross-frame attention of the query pixels over every '
        'frame (eq. 1), (N, K, T, H, W)',
        'memory.slot_attention': 'memory-bank attention, which entries each pixel reads, '
        '(N, H, W, num_slots)',
    }

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 128,
        num_frames: int = 7,
        num_encoder_blocks: int = 5,
        num_decoder_blocks: int = 40,
        embed_dim: int = 64,
        num_groups: int = 32,
        num_slots: int = 256,
        sigma: float = 4.0,
        hr_feat: int = 64,
        attention_mode: str = 'tiled',
        attention_tile: int = 16,
        attention_tol: float = 1e-8,
        use_memory: bool = True,
    ):
        super().__init__()
        if num_in_ch != num_out_ch:
            raise ValueError(
                'MANA adds a bilinear upsampling of the centre frame to the '
                f'output, so num_in_ch ({num_in_ch}) must equal num_out_ch '
                f'({num_out_ch})'
            )
        if num_frames < 1 or num_frames % 2 == 0:
            raise ValueError(
                f'MANA: num_frames must be odd (the centre frame '
                f'is super-resolved), got {num_frames!r}'
            )
        if num_feat % num_groups != 0:
            raise ValueError(
                f'MANA: num_feat ({num_feat}) must be divisible by num_groups ({num_groups})'
            )
        if num_slots < 1:
            raise ValueError(f'MANA: num_slots must be >= 1, got {num_slots!r}')
        if sigma == 0:
            raise ValueError('MANA: sigma must be non-zero')
        self.num_frames = num_frames
        self.num_in_ch = num_in_ch
        self.upscale = 4

        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.encoder = nn.Sequential(*[ResBlock(num_feat) for _ in range(num_encoder_blocks)])
        self.attention = CrossFrameAttention(
            num_feat,
            num_frames,
            embed_dim,
            num_groups,
            sigma,
            attention_mode,
            attention_tile,
            attention_tol,
        )
        self.memory = MemoryAttention(embed_dim, num_slots, num_feat) if use_memory else None
        self.decoder = nn.Sequential(*[ResBlock(num_feat) for _ in range(num_decoder_blocks)])
        self.upconv1 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
        self.upconv2 = nn.Conv2d(num_feat, hr_feat * 4, 3, 1, 1)
        self.conv_hr = nn.Conv2d(hr_feat, hr_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(hr_feat, num_out_ch, 3, 1, 1)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 5 or x.shape[1] != self.num_frames or x.shape[2] != self.num_in_ch:
            raise ValueError(
                f'MANA expects (N, T={self.num_frames}, '
                f'C={self.num_in_ch}, H, W), got shape {tuple(x.shape)}'
            )

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Shared frame encoder: ``(M, C_in, H, W) -> (M, C, H, W)``."""
        return self.encoder(lrelu(self.conv_first(frames)))

    def upsample(self, feat: torch.Tensor) -> torch.Tensor:
        """x4 pixel-shuffle upsampler: ``(N, C, H, W) -> (N, 3, 4H, 4W)``."""
        out = lrelu(F.pixel_shuffle(self.upconv1(feat), 2))
        out = lrelu(F.pixel_shuffle(self.upconv2(out), 2))
        return self.conv_last(lrelu(self.conv_hr(out)))

    def forward(
        self, x: torch.Tensor, return_aux: bool = False
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, dict]]:
        """Super-resolve the centre frame of ``x``.

        Args:
            x (Tensor): ``(N, T, C, H, W)`` in [0, 1].
            return_aux (bool): Also return the auxiliary loss terms,
                ``{'quant': mean |Q - Y|}`` (the memory quantisation loss,
                a scalar). Default: False.

        Returns:
            Tensor | tuple[Tensor, dict]: ``(N, C, 4H, 4W)``, and the dict of
            auxiliary terms when ``return_aux`` is True (empty without memory).
        """
        self._check_input(x)
        b, t = x.shape[:2]
        centre = x[:, t // 2]
        feats = _split_frames(self.encode(x.flatten(0, 1)), t)
        att, query = self.attention(feats)
        feat = feats[:, t // 2] + att
        aux = {}
        if self.memory is not None:
            mem, aux['quant'] = self.memory(query)
            feat = feat + mem
        out = self.upsample(self.decoder(feat))
        out = out + F.interpolate(centre, scale_factor=4, mode='bilinear', align_corners=False)
        return (out, aux) if return_aux else out

    def quant_loss(self, x: torch.Tensor) -> torch.Tensor:
        """Memory quantisation loss alone (the second training stage).

        Equal to ``forward(x, return_aux=True)[1]['quant']``
        but computed from the centre frame only: encoder, GroupNorm, query
        projection and memory read-out (GroupNorm normalises each frame on
        its own, so the other frames do not enter).

        Args:
            x (Tensor): ``(N, T, C, H, W)`` in [0, 1].

        Returns:
            Tensor: Scalar ``mean |Q - Y|``.
        """
        self._check_input(x)
        if self.memory is None:
            raise ValueError('MANA: use_memory=False (No_Mem) has no quantisation loss')
        att = self.attention
        query = att.to_q(att.norm(self.encode(x[:, x.shape[1] // 2])))
        y, q = self.memory.read(query)
        return (q - y).abs().mean()
