"""Test-time inference modes: x8 self-ensemble and tiled inference.

* Self-ensemble (Lim et al., EDSR, CVPRW 2017, "geometric self-ensemble"):
  the input is flipped/rotated in the 8 ways of the dihedral group, each
  output transformed back, and the 8 outputs averaged.
* Tiled inference: the LR image is cut into overlapping tiles run one at a
  time, for images too large for memory.

EDSR-style quadrant "chop" inference is in :mod:`.chop_inference`.
:func:`apply_test_cfg` combines them as a
:class:`~basicattn.config.test_settings.TestConfig` says.
"""

from typing import Callable, List, Tuple

import torch
from torch import Tensor

from basicattn.config.test_settings import TestConfig
from basicattn.models.chop_inference import chop_forward

Network = Callable[[Tensor], Tensor]

__all__ = [
    'apply_test_cfg',
    'dihedral_transform',
    'inverse_dihedral_transform',
    'self_ensemble_forward',
    'tile_starts',
    'tiled_forward',
]


def dihedral_transform(x: Tensor, index: int) -> Tensor:
    """Apply the ``index``-th (0..7) of the 8 flips/rotations to ``x``.

    Bit 0 flips W, bit 1 flips H, bit 2 transposes H and W, in that order.

    Args:
        x: (..., H, W).
        index: 0..7; 0 is the identity.

    Returns:
        The transformed tensor (contiguous).
    """
    if index & 1:
        x = x.flip(-1)
    if index & 2:
        x = x.flip(-2)
    if index & 4:
        x = x.transpose(-2, -1)
    return x.contiguous()


def inverse_dihedral_transform(x: Tensor, index: int) -> Tensor:
    """Undo :func:`dihedral_transform` with the same ``index``.

    Args:
        x: (..., H, W).
        index: 0..7.

    Returns:
        The back-transformed tensor (contiguous).
    """
    if index & 4:
        x = x.transpose(-2, -1)
    if index & 2:
        x = x.flip(-2)
    if index & 1:
        x = x.flip(-1)
    return x.contiguous()


def self_ensemble_forward(run: Network, lq: Tensor) -> Tensor:
    """The mean of ``run`` over the 8 dihedral transforms of ``lq``, each transformed back.

    Args:
        run: Maps (N, C, h, w) (or (N, T, C, h, w)) to its super-resolved output.
        lq: The input; the transforms act on its last two axes.

    Returns:
        The averaged output.
    """
    out = None
    for index in range(8):
        res = inverse_dihedral_transform(run(dihedral_transform(lq, index)), index)
        out = res if out is None else out + res
    return out / 8


def tile_starts(length: int, tile: int, overlap: int) -> Tuple[List[int], int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)``.

    Consecutive tiles overlap by ``overlap`` pixels; the last tile is moved
    back to end at ``length`` (so it may overlap more).

    Returns:
        The starts, and the tile size actually used (``length`` when it is
        below ``tile``).
    """
    if length <= tile:
        return [0], length
    starts = list(range(0, length - tile, tile - overlap))
    starts.append(length - tile)
    return starts, tile


def tiled_forward(network: Network, lq: Tensor, tile: int, overlap: int = 8) -> Tensor:
    """Run ``network`` tile by tile and stitch the outputs.

    The LR image is split into ``tile`` x ``tile`` tiles (smaller where
    the image is) that overlap by ``overlap`` pixels; the last tile of a
    row/column is moved back to end at the border, so any size works.
    Each tile keeps its output except a margin of ``overlap // 2`` LR
    pixels (times the scale) along the edges it shares with a neighbour,
    where zero padding makes it differ from the whole-image output; the
    kept regions cover the image and are averaged with a uniform weight
    where they overlap. The result therefore equals the untiled output
    (up to float rounding) when the network's receptive field reaches
    at most ``overlap // 2`` LR pixels from the centre. The tiles of one
    position are run as one batch of N; the scale is the (integer) ratio
    of a tile's output size to its input size.

    Args:
        network: Maps (N, C, h, w) to (N, C_out, s*h, s*w).
        lq: (N, C, h, w).
        tile: Tile size in LR pixels.
        overlap: Overlap in LR pixels, smaller than ``tile``.

    Returns:
        (N, C_out, h * scale, w * scale).

    Raises:
        ValueError: ``overlap`` not in ``[0, tile)``, or a network whose
            scale is not one integer in H and W.
    """
    if not 0 <= overlap < tile:
        raise ValueError(f'tile_overlap={overlap} must be >= 0 and smaller than tile={tile}')
    h, w = lq.shape[-2:]
    ys, th = tile_starts(h, tile, overlap)
    xs, tw = tile_starts(w, tile, overlap)
    if len(ys) == 1 and len(xs) == 1:
        return network(lq)
    lo, hi = overlap // 2, overlap - overlap // 2
    out = weight = None
    s = None
    for y in ys:
        for x in xs:
            res = network(lq[..., y : y + th, x : x + tw])
            if s is None:
                s = res.shape[-2] // th
                out = res.new_zeros(*res.shape[:-2], h * s, w * s)
                weight = res.new_zeros(h * s, w * s)
            if tuple(res.shape[-2:]) != (th * s, tw * s) or s < 1:
                raise ValueError(
                    'tiled inference needs an integer scale equal in H '
                    f'and W; the generator mapped a {th}x{tw} tile to '
                    f'{res.shape[-2]}x{res.shape[-1]}'
                )
            # The kept LR region [y0, y1) x [x0, x1) of this tile.
            y0 = y + lo if y > 0 else y
            y1 = y + th - hi if y + th < h else y + th
            x0 = x + lo if x > 0 else x
            x1 = x + tw - hi if x + tw < w else x + tw
            out[..., y0 * s : y1 * s, x0 * s : x1 * s] += res[
                ..., (y0 - y) * s : (y1 - y) * s, (x0 - x) * s : (x1 - x) * s
            ]
            weight[..., y0 * s : y1 * s, x0 * s : x1 * s] += 1
    return out / weight


@torch.no_grad()
def apply_test_cfg(network: Network, lq: Tensor, cfg: TestConfig) -> Tensor:
    """Super-resolve ``lq`` with the test-time settings ``cfg``.

    Self-ensemble (if on) wraps tiling or chop (if on): each of the 8
    transformed inputs is run tiled, transformed back, and the 8 outputs
    averaged; the result is clamped to [0, 1] if ``cfg.clamp``
    (:func:`clamp_output`: an inf output becomes NaN, not 0 or 1).

    Args:
        network: The generator.
        lq: (N, C, h, w), or (N, T, C, h, w) for a window of frames.
        cfg: The settings.

    Returns:
        (N, C_out, H, W).
    """

    def in_input_dtype(x: Tensor) -> Tensor:
        # under autocast the output is bf16 / fp16: tiles and the 8 transforms are
        # accumulated in lq's dtype (float32), not in 8 bits of mantissa
        return network(x).to(lq.dtype)

    def run(x: Tensor) -> Tensor:
        if cfg.chop:
            return chop_forward(in_input_dtype, x, cfg.chop_shave)
        if cfg.tile:
            return tiled_forward(in_input_dtype, x, cfg.tile, cfg.tile_overlap)
        return in_input_dtype(x)

    out = self_ensemble_forward(run, lq) if cfg.self_ensemble else run(lq)
    return clamp_output(out) if cfg.clamp else out


def clamp_output(out: Tensor) -> Tensor:
    """Clamp to [0, 1], keeping non-finite values visible: inf becomes NaN.

    ``clamp`` alone would turn an overflowed (inf) output into a plain white
    or black pixel, which then scores and saves like a real one; NaN is
    refused when testing and scores NaN in validation.
    """
    clamped = out.clamp(0, 1)
    return clamped.masked_fill(torch.isinf(out), float('nan'))
