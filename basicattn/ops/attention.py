"""Softmax attention over all positions, processed a chunk of queries at a time.

``softmax(Q K^T) V`` and the attention each key receives (the column sums
of the attention matrix, PASSRnet's validity check: Wang et al., "Learning
Parallax Attention for Stereo Image Super-Resolution", CVPR 2019), without
ever forming the ``L_q x L_key`` matrix unless asked to. Used by DASAA's
SAAM (:mod:`basicattn.archs.dasaa_blocks`).

Under autocast (``train.amp`` / ``val.amp``) the logits ``Q K^T`` and the
softmax run in float32 with autocast off; only the product of the weights
with ``V`` runs in the autocast dtype. The coverage is summed in float32.

While an ONNX export traces the call (:func:`~.op_utils.exporting`), the loop
over query chunks is a TorchScript loop (:func:`_export_attention`,
:func:`_export_coverage`) that the exporter writes as one ONNX ``Loop``: the
graph then holds for any number of positions (dynamic height and width) and
keeps the memory bound of ``chunk_size`` queries; a traced Python loop would
be unrolled into the chunks of the export size.
"""

from functools import cache
from typing import List, Optional, Tuple

import torch
from torch.utils.checkpoint import checkpoint

from basicattn.utils.bounds import check_positive_int

from .op_utils import at_least_float32, exporting, no_autocast, records_autograd

__all__ = ['chunked_attention', 'attention_coverage']


def _check_qkv(
    query: torch.Tensor, key: torch.Tensor, value: Optional[torch.Tensor] = None
) -> None:
    if query.dim() != 3 or key.dim() != 3:
        raise ValueError(
            f'query and key must be (B, L, C), got shapes '
            f'{tuple(query.shape)} and {tuple(key.shape)}'
        )
    if query.shape[0] != key.shape[0] or query.shape[2] != key.shape[2]:
        raise ValueError(
            f'query {tuple(query.shape)} and key {tuple(key.shape)} need the same B and C'
        )
    if value is not None and (value.dim() != 3 or value.shape[:2] != key.shape[:2]):
        raise ValueError(
            f'value must be (B, L_key, C_v) with key {tuple(key.shape)}, got {tuple(value.shape)}'
        )


def _chunks(length: int, chunk_size: Optional[int]) -> List[Tuple[int, int]]:
    """``(start, end)`` spans of ``chunk_size`` over ``range(length)``; None: one span."""
    check_positive_int(chunk_size, 'chunk_size', allow_none=True)
    if chunk_size is None:
        return [(0, length)]
    return [(s, min(s + chunk_size, length)) for s in range(0, length, chunk_size)]


def _softmax_logits(q: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """``softmax(q key^T)`` in float32 or wider, autocast off (see :func:`at_least_float32`)."""
    dtype = at_least_float32(q, key)
    with no_autocast(q.device):
        return torch.softmax(q.to(dtype) @ key.to(dtype).transpose(1, 2), dim=-1)


def _attend(q: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    # The weights in value's dtype; under autocast the product runs in its dtype.
    return _softmax_logits(q, key).to(value.dtype) @ value


def _export_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, chunk: int
) -> torch.Tensor:
    """:func:`chunked_attention` as a loop TorchScript can compile (ONNX ``Loop``)."""
    outs: List[torch.Tensor] = []
    key_t = key.transpose(1, 2)
    for start in range(0, query.size(1), chunk):
        weights = torch.softmax(torch.matmul(query[:, start : start + chunk], key_t), dim=-1)
        outs.append(torch.matmul(weights, value))
    return torch.cat(outs, dim=1)


def _export_coverage(query: torch.Tensor, key: torch.Tensor, chunk: int) -> torch.Tensor:
    """:func:`attention_coverage` as a loop TorchScript can compile (ONNX ``Loop``)."""
    total = torch.zeros_like(key[:, :, 0])
    key_t = key.transpose(1, 2)
    for start in range(0, query.size(1), chunk):
        logits = torch.matmul(query[:, start : start + chunk], key_t)
        total = total + torch.softmax(logits, dim=-1).sum(dim=1)
    return total


@cache
def _scripted(name: str):
    """The TorchScript function ``name``, compiled on first use (exports only)."""
    return torch.jit.script(globals()[name])


def chunked_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    chunk_size: Optional[int] = 1024,
    use_checkpoint: bool = True,
) -> torch.Tensor:
    """``softmax(Q K^T) V`` with the softmax of each query over all keys.

    The softmax of a query row needs every key, but rows are independent,
    so the queries are processed ``chunk_size`` at a time: the largest
    temporary is ``B x chunk_size x L_key`` instead of ``B x L_q x L_key``.
    When autograd records, each chunk runs under
    :func:`torch.utils.checkpoint.checkpoint` (recomputed in the backward
    pass), so training memory is bounded the same way. No ``1 / sqrt(C)``
    scaling (as in DASAA's authors' code and PASSRnet).

    Args:
        query (Tensor): ``(B, L_q, C)``.
        key (Tensor): ``(B, L_key, C)``.
        value (Tensor): ``(B, L_key, C_v)``.
        chunk_size (int | None): Queries per chunk; None processes all
            queries at once (the dense ``L_q x L_key`` reference).
            Default: 1024.
        use_checkpoint (bool): Recompute chunks in the backward pass.
            Default: True.

    Returns:
        Tensor: ``(B, L_q, C_v)``.
    """
    _check_qkv(query, key, value)
    if exporting() and chunk_size is not None:
        return _scripted('_export_attention')(query, key, value, chunk_size)
    spans = _chunks(query.shape[1], chunk_size)
    if len(spans) == 1:
        return _attend(query, key, value)
    recompute = use_checkpoint and records_autograd(query, key, value)
    outs = []
    for s, e in spans:
        if recompute:
            outs.append(checkpoint(_attend, query[:, s:e], key, value, use_reentrant=False))
        else:
            outs.append(_attend(query[:, s:e], key, value))
    return torch.cat(outs, dim=1)


@torch.no_grad()
def attention_coverage(
    query: torch.Tensor, key: torch.Tensor, chunk_size: Optional[int] = 1024
) -> torch.Tensor:
    """How much attention every key receives: ``sum_q softmax(Q K^T)[q, k]``.

    The column sums of the attention matrix (PASSRnet's validity check:
    a key position that no query looks at is "occluded"). Every row sums
    to one, so the mean over keys is ``L_q / L_key`` (1 for a square map).
    Computed without gradient (it only feeds a thresholded mask), chunk by
    chunk over the queries.

    Args:
        query (Tensor): ``(B, L_q, C)``.
        key (Tensor): ``(B, L_key, C)``.
        chunk_size (int | None): Queries per chunk; None: all at once.
            Default: 1024.

    Returns:
        Tensor: ``(B, L_key)``.
    """
    _check_qkv(query, key)
    if exporting() and chunk_size is not None:
        return _scripted('_export_coverage')(query, key, chunk_size)
    total = query.new_zeros(key.shape[:2], dtype=at_least_float32(query, key))
    for s, e in _chunks(query.shape[1], chunk_size):
        total += _softmax_logits(query[:, s:e], key).sum(dim=1)
    return total.to(query.dtype)
