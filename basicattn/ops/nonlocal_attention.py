"""Gaussian-weighted non-local attention (MANA's cross-frame attention).

For a query pixel ``p`` and the key/value pixels ``q`` of one frame
(Yu et al., CVPR 2022, eq. 1 and the authors' code)::

    out[p] = sum_q softmax_q(Q[p] . K[q]) * exp(-|p - q|^2 / (2 s^2)) * V[q]

with ``s = sigma``.

The softmax runs over *all* positions of the frame, the Gaussian multiplies
its result afterwards and the weights are not renormalised. Distances are in
pixels of the feature grid; there is no ``1 / sqrt(d)`` scaling.

Two implementations with the same layout, ``(..., H, W, C)`` channels-last
maps whose leading dimensions broadcast (e.g. query ``(B, 1, H, W, C)``
against key/value ``(B, T, H, W, C)``):

* :func:`gaussian_nonlocal_attention_dense`: the reference, one
  ``HW x HW`` matrix per frame (what the authors compute).
* :func:`gaussian_nonlocal_attention`: exact up to a documented tolerance,
  never builds an ``HW x HW`` matrix. Queries are processed in square tiles
  of ``tile_size x tile_size`` pixels. For a tile:

  1. ``logits = Q_tile . K^T`` against all ``HW`` keys (``tile^2 x HW``) and
     their ``logsumexp``: the softmax denominator needs every key;
  2. the numerator only uses the keys in the tile's rectangle grown by
     ``r`` pixels on each side, where ``r`` is the smallest radius beyond
     which the Gaussian is below ``tol``:
     ``r = ceil(|sigma| * sqrt(2 ln(1 / tol)))``. Every dropped pair has
     ``exp(-d^2 / (2 sigma^2)) < tol`` and softmax weight <= 1, so each
     output differs from the dense one by less than
     ``tol * sum_q softmax(q) * |V[q]| <= tol * max |V|`` (1e-8 relative to
     the largest value by default, below float32 resolution).

  ``r`` is read from the current value of ``sigma`` at every call (one host
  sync), so a trainable ``sigma`` that grows or shrinks during training
  moves the window with it; the Gaussian inside the window is computed from
  the ``sigma`` tensor, so its gradient flows. When autograd records, each
  tile runs under :func:`torch.utils.checkpoint.checkpoint` (recomputed in
  the backward pass), so training memory is also ``O(tile^2 x HW)`` per
  frame instead of ``O(HW^2)``.

Memory per frame and batch item: without autograd one ``tile^2 x HW``
buffer, reused in place for the logsumexp (16 x 16 tiles at 180 x 320:
59 MB), plus the ``tile^2 x (tile + 2r)^2`` window; with autograd a few such
buffers, freed after each tile. Compute: one ``HW x HW x C`` product for the
denominators (unavoidable for an exact softmax over all positions) plus the
windowed numerator, about half the dense multiply-adds. Gradients differ
from the dense ones by terms of the same ``tol`` order (tested).

Under autocast (``train.amp`` / ``val.amp``) the logits, their logsumexp,
the Gaussian and the weights are computed in float32 with autocast off;
only the weighted sum of the values runs in the autocast dtype.

While an ONNX export traces the call (:func:`~.op_utils.exporting`), the tile
loops are TorchScript loops (:func:`_export_tiled`) that the exporter writes
as ONNX ``Loop`` nodes: the graph then holds for any frame size (dynamic
height and width) with the same per-tile memory bound; a traced Python loop
would be unrolled into the tiles of the export size.
"""

import math
from functools import cache, partial
from typing import Any, List, Tuple, Union

import torch
from torch.utils.checkpoint import checkpoint

from basicattn.utils.bounds import check_positive_int

from .op_utils import at_least_float32, exporting, no_autocast, records_autograd

__all__ = [
    'gaussian_window_radius',
    'gaussian_nonlocal_attention',
    'gaussian_nonlocal_attention_dense',
]

SigmaLike = Union[torch.Tensor, float]


def gaussian_window_radius(sigma: float, tol: float) -> int:
    """Smallest integer ``r`` with ``exp(-r^2 / (2 sigma^2)) <= tol``.

    Args:
        sigma (float): Standard deviation of the Gaussian, in pixels.
        tol (float): Weight below which a key is dropped, in (0, 1).

    Returns:
        int: ``ceil(|sigma| * sqrt(2 ln(1 / tol)))``.
    """
    if not 0.0 < tol < 1.0:
        raise ValueError(f'tol must be in (0, 1), got {tol!r}')
    return math.ceil(abs(float(sigma)) * math.sqrt(2.0 * math.log(1.0 / tol)))


def _check(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, sigma: SigmaLike
) -> Tuple[int, int, torch.Tensor]:
    """Validate shapes; return ``H, W`` and ``sigma`` as a 0-d tensor."""
    for name, t in (('query', query), ('key', key), ('value', value)):
        if t.dim() < 3:
            raise ValueError(f'{name} must be (..., H, W, C), got shape {tuple(t.shape)}')
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(
            f'query and key need the same channels, got shapes '
            f'{tuple(query.shape)} and {tuple(key.shape)}'
        )
    if not query.shape[-3:-1] == key.shape[-3:-1] == value.shape[-3:-1]:
        raise ValueError(
            'query, key and value need the same H, W, got shapes '
            f'{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}'
        )
    if key.shape[:-1] != value.shape[:-1]:
        raise ValueError(
            f'key and value need the same (..., H, W), got '
            f'shapes {tuple(key.shape)} and {tuple(value.shape)}'
        )
    try:
        torch.broadcast_shapes(query.shape[:-3], key.shape[:-3])
    except RuntimeError as err:
        raise ValueError(
            f'the leading dims of query {tuple(query.shape)} and key '
            f'{tuple(key.shape)} do not broadcast'
        ) from err
    if not torch.is_tensor(sigma):
        sigma = torch.tensor(float(sigma), dtype=query.dtype, device=query.device)
    if sigma.numel() != 1:
        raise ValueError(f'sigma must have one element, got shape {tuple(sigma.shape)}')
    h, w = query.shape[-3:-1]
    return h, w, sigma.reshape(())


def _squared_distances(
    y0: int, y1: int, x0: int, x1: int, ky0: int, ky1: int, kx0: int, kx1: int, like: torch.Tensor
) -> torch.Tensor:
    """Squared pixel distances between two rectangles, row-major.

    Rows: pixels of ``[y0, y1) x [x0, x1)``; columns: pixels of
    ``[ky0, ky1) x [kx0, kx1)``. Built as an outer sum of the row and column
    terms, so no larger temporary than the result; at least float32 (half
    precision cannot hold large squared distances).
    """

    dtype = torch.promote_types(like.dtype, torch.float32)

    def axis(a0, a1, b0, b1):
        a = torch.arange(a0, a1, dtype=dtype, device=like.device)
        b = torch.arange(b0, b1, dtype=dtype, device=like.device)
        return (a[:, None] - b[None, :]).square()

    dy = axis(y0, y1, ky0, ky1)  # (qh, kh)
    dx = axis(x0, x1, kx0, kx1)  # (qw, kw)
    d2 = dy[:, None, :, None] + dx[None, :, None, :]
    return d2.reshape(dy.shape[0] * dx.shape[0], dy.shape[1] * dx.shape[1])


def _gaussian(d2: torch.Tensor, sigma: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``exp(-d2 / (2 sigma^2))`` computed in ``d2``'s dtype, cast to dtype."""
    sigma = sigma.to(d2.dtype)
    return torch.exp(d2 * (-0.5 / (sigma * sigma))).to(dtype)


def gaussian_nonlocal_attention_dense(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, sigma: SigmaLike
) -> torch.Tensor:
    """Dense reference: ``(softmax(Q K^T) * G) V`` with an ``HW x HW`` matrix.

    Args:
        query (Tensor): ``(..., H, W, C)``.
        key (Tensor): ``(..., H, W, C)``; leading dims broadcast with query.
        value (Tensor): ``(..., H, W, Cv)``, same leading dims as ``key``.
        sigma (Tensor | float): Gaussian standard deviation in pixels (one
            element; may require grad).

    Returns:
        Tensor: ``(..., H, W, Cv)`` with the broadcast leading dims.
    """
    h, w, sigma = _check(query, key, value, sigma)
    dtype = at_least_float32(query, key)
    q = query.flatten(-3, -2)
    k = key.flatten(-3, -2)
    v = value.flatten(-3, -2)
    with no_autocast(query.device):
        attn = torch.softmax(q.to(dtype) @ k.to(dtype).transpose(-1, -2), dim=-1)
        d2 = _squared_distances(0, h, 0, w, 0, h, 0, w, q)
        weights = attn * _gaussian(d2, sigma, attn.dtype)
    return (weights.to(v.dtype) @ v).unflatten(-2, (h, w))


def _attend_tile(q_tile: torch.Tensor, *window: Any, **where: int) -> torch.Tensor:
    """One query tile: full softmax denominator, windowed numerator.

    ``window`` and ``where`` are :func:`_tile_weights`' arguments after ``q_tile``.
    """
    with no_autocast(q_tile.device):  # softmax statistics in float32 (module docstring)
        weights, win_value = _tile_weights(q_tile, *window, **where)
    th, tw = q_tile.shape[-3:-1]
    return (weights.to(win_value.dtype) @ win_value).unflatten(-2, (th, tw))


def _tile_weights(
    q_tile: torch.Tensor,
    key_flat: torch.Tensor,
    value: torch.Tensor,
    sigma: torch.Tensor,
    y0: int,
    x0: int,
    radius: int,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """A tile's windowed weights (float32 or wider) and the window's values."""
    th, tw = q_tile.shape[-3:-1]
    h, w = value.shape[-3:-1]
    dtype = at_least_float32(q_tile, key_flat)
    q = q_tile.flatten(-3, -2).to(dtype)  # (..., t, C)
    logits = q @ key_flat.to(dtype).transpose(-1, -2)  # (..., t, HW)
    ky0, ky1 = max(0, y0 - radius), min(h, y0 + th + radius)
    kx0, kx1 = max(0, x0 - radius), min(w, x0 + tw + radius)
    win_logits = logits.unflatten(-1, (h, w))[..., ky0:ky1, kx0:kx1]
    win_logits = win_logits.flatten(-2)  # (..., t, window)
    win_value = value[..., ky0:ky1, kx0:kx1, :].flatten(-3, -2)
    gauss = _gaussian(
        _squared_distances(y0, y0 + th, x0, x0 + tw, ky0, ky1, kx0, kx1, q), sigma, logits.dtype
    )
    if records_autograd(q, key_flat, value, sigma):
        lse = torch.logsumexp(logits, dim=-1, keepdim=True)
        weights = torch.exp(win_logits - lse) * gauss
    else:
        # Without autograd the same arithmetic runs in place, so the large
        # tile x HW buffer is not allocated a second time.
        if win_logits.untyped_storage().data_ptr() == logits.untyped_storage().data_ptr():
            win_logits = win_logits.clone()  # full-width window: a view
        peak = logits.amax(dim=-1, keepdim=True)
        lse = logits.sub_(peak).exp_().sum(dim=-1, keepdim=True).log_()
        del logits
        weights = win_logits.sub_(lse.add_(peak)).exp_().mul_(gauss)
    return weights, win_value


def _export_axis_d2(a0: int, a1: int, b0: int, b1: int, like: torch.Tensor) -> torch.Tensor:
    """Squared distances between the pixel ranges ``[a0, a1)`` and ``[b0, b1)``.

    Integer ranges cast to ``like``'s dtype: a float ``Range`` inside a ``Loop``
    body trips onnxruntime's float16 converter (it keeps ``Range`` in float32
    and puts the casts for it in the outer graph).
    """
    a = torch.arange(a0, a1, device=like.device).to(like.dtype)
    b = torch.arange(b0, b1, device=like.device).to(like.dtype)
    return (a.unsqueeze(1) - b.unsqueeze(0)) ** 2


def _export_tiled(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    sigma: torch.Tensor,
    tile: int,
    radius: int,
) -> torch.Tensor:
    """The tile loops of :func:`gaussian_nonlocal_attention` for TorchScript (ONNX ``Loop``).

    The same arithmetic as :func:`_tile_weights` with autograd off, written
    out of place (float32 inputs: an export runs without autocast).
    """
    h, w = value.size(-3), value.size(-2)
    key_t = key.flatten(-3, -2).transpose(-1, -2)  # (..., C, HW)
    factor = -0.5 / (sigma * sigma)
    rows: List[torch.Tensor] = []
    for y0 in range(0, h, tile):
        row: List[torch.Tensor] = []
        y1 = min(h, y0 + tile)
        ky0, ky1 = max(0, y0 - radius), min(h, y1 + radius)
        for x0 in range(0, w, tile):
            x1 = min(w, x0 + tile)
            kx0, kx1 = max(0, x0 - radius), min(w, x1 + radius)
            q_tile = query[..., y0:y1, x0:x1, :].flatten(-3, -2)  # (..., t, C)
            logits = torch.matmul(q_tile, key_t)  # (..., t, HW)
            lse = torch.logsumexp(logits, dim=-1, keepdim=True)
            grid = logits.reshape(logits.shape[:-1] + [h, w])
            win_logits = grid[..., ky0:ky1, kx0:kx1].flatten(-2)
            win_value = value[..., ky0:ky1, kx0:kx1, :].flatten(-3, -2)
            dy = _export_axis_d2(y0, y1, ky0, ky1, logits)
            dx = _export_axis_d2(x0, x1, kx0, kx1, logits)
            d2 = (dy.unsqueeze(1).unsqueeze(3) + dx.unsqueeze(0).unsqueeze(2)).reshape(
                (y1 - y0) * (x1 - x0), (ky1 - ky0) * (kx1 - kx0)
            )
            weights = torch.exp(win_logits - lse) * torch.exp(d2 * factor)
            out = torch.matmul(weights, win_value)  # (..., t, Cv)
            row.append(out.reshape(out.shape[:-2] + [y1 - y0, x1 - x0, out.size(-1)]))
        rows.append(torch.cat(row, dim=-2))
    return torch.cat(rows, dim=-3)


@cache
def _scripted_tiled():
    """:func:`_export_tiled` compiled by TorchScript on first use (exports only)."""
    torch.jit.script(_export_axis_d2)
    return torch.jit.script(_export_tiled)


def gaussian_nonlocal_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    sigma: SigmaLike,
    tile_size: int = 16,
    tol: float = 1e-8,
    use_checkpoint: bool = True,
) -> torch.Tensor:
    """Memory-efficient Gaussian-weighted non-local attention.

    Same result as :func:`gaussian_nonlocal_attention_dense` (up to ``tol``,
    see the module docstring) for any frame size, without an ``HW x HW``
    matrix.

    Args:
        query (Tensor): ``(..., H, W, C)``.
        key (Tensor): ``(..., H, W, C)``; leading dims broadcast with query.
        value (Tensor): ``(..., H, W, Cv)``, same leading dims as ``key``.
        sigma (Tensor | float): Gaussian standard deviation in pixels (one
            element, non-zero; may require grad).
        tile_size (int): Side of the square query tiles. Memory grows with
            ``tile_size^2 x HW``. Default: 16.
        tol (float): Gaussian weight below which keys are skipped in the
            numerator, in (0, 1). Default: 1e-8.
        use_checkpoint (bool): When autograd records, recompute each tile in
            the backward pass instead of storing its ``tile^2 x HW``
            logits. Default: True.

    Returns:
        Tensor: ``(..., H, W, Cv)`` with the broadcast leading dims.
    """
    h, w, sigma = _check(query, key, value, sigma)
    check_positive_int(tile_size, 'tile_size')
    sigma_value = float(sigma.detach())
    if sigma_value == 0.0 or not math.isfinite(sigma_value):
        raise ValueError(f'sigma must be finite and non-zero, got {sigma_value}')
    radius = gaussian_window_radius(sigma_value, tol)
    if exporting():
        return _scripted_tiled()(query, key, value, sigma, tile_size, radius)
    key_flat = key.flatten(-3, -2)
    recompute = use_checkpoint and records_autograd(query, key, value, sigma)
    rows = []
    for y0 in range(0, h, tile_size):
        row = []
        for x0 in range(0, w, tile_size):
            q_tile = query[..., y0 : y0 + tile_size, x0 : x0 + tile_size, :]
            fn = partial(_attend_tile, y0=y0, x0=x0, radius=radius)
            if recompute:
                row.append(checkpoint(fn, q_tile, key_flat, value, sigma, use_reentrant=False))
            else:
                row.append(fn(q_tile, key_flat, value, sigma))
        rows.append(torch.cat(row, dim=-2))
    return torch.cat(rows, dim=-3)
