"""DCNv2 as one autograd function: sampling, modulation and GEMM in chunks.

``y = W @ (samples * mask) + b``, where ``samples`` are the bilinear
deformable columns (:mod:`basicattn.ops.deform_im2col`). Why a custom
function rather than autograd over ``grid_sample`` and ``bmm``: on CPU the
column-sized tensors (``C*K*Ho*Wo`` values per image, 9.4 MB for a
64-channel 3x3 layer on a 64x64 image) cost as much as the arithmetic, as
memory traffic and as allocations (glibc page-faults every allocation above
32 MB in afresh on each call). So:

* images are sampled in blocks of at most :data:`SAMPLE_BLOCK_BYTES`, so
  that a block's samples are still in cache when its chunks are read;
* the forward keeps only the raw samples; the modulated columns exist one
  chunk of pixels at a time (:data:`CPU_CHUNK_BYTES`, in cache between the
  mask multiply and the ``bmm`` that reads them);
* the backward walks the same chunks and, per chunk, computes
  ``G = W^T @ grad_out`` into the chunk buffer, ``grad_mask`` as the channel
  sum of ``G * samples``, the modulated columns again (``samples *= mask``
  in place) for ``grad_W += grad_out @ columns^T``, and finally writes the
  samples' gradient ``G * mask`` over the samples, which
  ``grid_sampler_2d_backward`` then turns into the input and offset
  gradients of that block of images.

So the only column-sized tensors are the samples (saved for backward),
where autograd over the plain ops would keep two and allocate three more in
backward. A second backward through the same graph (``retain_graph=True``)
resamples the overwritten columns; there is no double backward (mmcv's op
has none either). Without gradients the forward is the plain sequence
``grid_sample``, in-place mask, ``bmm`` (this is also what
``torch.jit.trace``, and so ``tools/get_flops.py``, sees).

On CUDA a chunk is a whole image (no cache to fit; fewer launches).
"""

from typing import Optional, Tuple

import torch
from torch.autograd import Function
from torch.autograd.function import once_differentiable

from .columns_matmul import columns_matmul
from .deform_im2col import SamplingGrid, sample_columns, sample_columns_backward, sampling_grid
from .op_utils import records_autograd

__all__ = ['deform_conv_columns', 'CPU_CHUNK_BYTES', 'SAMPLE_BLOCK_BYTES']

#: Size of one chunk of modulated columns on CPU: small enough to stay in
#: cache between the ops that read it, large enough for the ops to run well
#: on several threads (1 MiB was as fast on one thread, slower on two).
CPU_CHUNK_BYTES = 4 << 20

#: Most bytes of samples drawn by one ``grid_sample`` call: images are
#: sampled in blocks of this size (at least one image per block).
SAMPLE_BLOCK_BYTES = 64 << 20

Geometry = Tuple[
    Tuple[int, int], Tuple[int, int], Tuple[int, int], Tuple[int, int], Tuple[int, int]
]


def _chunk_pixels(values_per_pixel: int, itemsize: int, pixels: int, device: torch.device) -> int:
    """Pixels per chunk: about :data:`CPU_CHUNK_BYTES` of columns on CPU,
    a whole image elsewhere."""
    if device.type != 'cpu':
        return pixels
    n = CPU_CHUNK_BYTES // (values_per_pixel * itemsize)
    return max(1, min(pixels, n))


def _sizes(input: torch.Tensor, weight: torch.Tensor, geometry: Geometry):
    """``(B, C, O, K, P)``: batch, input channels, output channels, kernel
    taps and output pixels."""
    kernel_size, out_size = geometry[0], geometry[4]
    return (
        *input.shape[:2],
        weight.shape[0],
        kernel_size[0] * kernel_size[1],
        out_size[0] * out_size[1],
    )


def _image_blocks(batch: int, image_bytes: int):
    """``(start, stop)`` of the blocks of images sampled together."""
    per_block = max(1, SAMPLE_BLOCK_BYTES // max(1, image_bytes))
    return [(i, min(i + per_block, batch)) for i in range(0, batch, per_block)]


class _DeformConvColumns(Function):
    """``W @ (samples * mask) + bias`` with the chunked backward above."""

    @staticmethod
    def forward(ctx, input, offset, mask, weight, bias, geometry, groups, deform_groups):
        b, c, o, k, p = _sizes(input, weight, geometry)
        dg = deform_groups
        grid = sampling_grid(input, offset, geometry, dg)
        m = None if mask is None else mask.view(b, dg, 1, k, p)
        w = weight.reshape(groups, o // groups, -1)
        out = input.new_empty(b, o, p)
        n = _chunk_pixels(c * k, input.element_size(), p, input.device)
        buf = None if m is None else input.new_empty(dg, c // dg, k, n)
        samples = []
        blocks = _image_blocks(b, c * k * p * input.element_size())
        for start, stop in blocks:
            # A block of images at a time: its samples are still in cache
            # for the chunks below.
            s = sample_columns(grid.images(start, stop, dg)).view(stop - start, dg, c // dg, k, p)
            samples.append(s)
            for i in range(start, stop):
                for p0 in range(0, p, n):
                    p1 = min(p0 + n, p)
                    cols = s[i - start, ..., p0:p1]
                    if m is not None:
                        cols = torch.mul(cols, m[i, ..., p0:p1], out=buf[..., : p1 - p0])
                    torch.bmm(
                        w,
                        cols.reshape(groups, -1, p1 - p0),
                        out=out[i, :, p0:p1].view(groups, o // groups, -1),
                    )
        if bias is not None:
            out += bias.view(1, o, 1)
        ctx.save_for_backward(input, mask, weight)
        ctx.grid, ctx.samples, ctx.blocks = grid, samples, blocks
        ctx.meta = (geometry, groups, deform_groups, bias is not None)
        return out.view(b, o, *geometry[4])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        # The forward ran with autocast off on same-dtype tensors (float32 for
        # half inputs); a backward called inside an autocast region must too.
        with torch.autocast(device_type=grad_out.device.type, enabled=False):
            return _DeformConvColumns._backward(ctx, grad_out.to(ctx.saved_tensors[0].dtype))

    @staticmethod
    def _backward(ctx, grad_out):
        input, mask, weight = ctx.saved_tensors
        geometry, groups, dg, has_bias = ctx.meta
        out_size = geometry[4]
        grid: SamplingGrid = ctx.grid
        samples = ctx.samples
        ctx.samples = None  # overwritten below; a second backward resamples
        need_input, need_offset, need_mask, need_weight, need_bias = ctx.needs_input_grad[:5]
        need_sampling = need_input or need_offset
        need_cols_grad = need_sampling or need_mask
        b, c, o, k, p = _sizes(input, weight, geometry)
        cg = c // dg
        m = None if mask is None else mask.view(b, dg, 1, k, p)
        go = grad_out.reshape(b, o, p).contiguous()
        w_t = weight.reshape(groups, o // groups, -1).transpose(1, 2)
        grad_input = torch.empty_like(input) if need_input else None
        grad_offset = input.new_empty(b, 2 * dg * k, *out_size) if need_offset else None
        grad_mask = mask.new_empty(b, dg, k, p) if need_mask else None
        grad_w = weight.new_zeros(groups, o // groups, c // groups * k) if need_weight else None
        n = _chunk_pixels(c * k, input.element_size(), p, input.device)
        buf = input.new_empty(dg, cg, k, n) if need_cols_grad else None
        for block, (start, stop) in enumerate(ctx.blocks):
            grid_b = grid.images(start, stop, dg)
            if samples is None:
                s = sample_columns(grid_b)
            else:
                s, samples[block] = samples[block], None
            s = s.view(stop - start, dg, cg, k, p)
            for i in range(start, stop):
                for p0 in range(0, p, n):
                    p1 = min(p0 + n, p)
                    go_i = go[i, :, p0:p1].view(groups, o // groups, p1 - p0)
                    smp = s[i - start, ..., p0:p1]
                    m_i = None if m is None else m[i, ..., p0:p1]
                    if need_cols_grad:  # column gradient
                        g = buf[..., : p1 - p0]
                        torch.bmm(w_t, go_i, out=g.view(groups, -1, p1 - p0))
                    if need_mask:
                        gm = torch.mul(g[:, 0], smp[:, 0], out=grad_mask[i, ..., p0:p1])
                        for ch in range(1, cg):
                            gm.addcmul_(g[:, ch], smp[:, ch])
                    if need_weight:
                        cols = smp if m_i is None else smp.mul_(m_i)
                        grad_w.baddbmm_(go_i, cols.reshape(groups, -1, p1 - p0).transpose(1, 2))
                    if need_sampling:  # the samples' gradient replaces them
                        if m_i is None:
                            smp.copy_(g)
                        else:
                            torch.mul(g, m_i, out=smp)
            if need_sampling:
                sample_columns_backward(
                    s.view((stop - start) * dg, cg, -1, out_size[1]),
                    grid_b,
                    None if grad_input is None else grad_input[start:stop],
                    None if grad_offset is None else grad_offset[start:stop],
                )
        if need_mask:
            grad_mask = grad_mask.view_as(mask)
        if need_weight:
            grad_w = grad_w.view_as(weight)
        grad_bias = go.sum((0, 2)) if need_bias and has_bias else None
        return (grad_input, grad_offset, grad_mask, grad_w, grad_bias, None, None, None)


def _forward_no_grad(
    input, offset, mask, weight, bias, geometry, groups, deform_groups
) -> torch.Tensor:
    """The forward pass as plain ops, for when no gradient is needed."""
    b, c, o, k, p = _sizes(input, weight, geometry)
    dg = deform_groups
    grid = sampling_grid(input, offset, geometry, dg)
    cols = sample_columns(grid).view(b, dg, c // dg, k, p)
    if mask is not None:
        cols.mul_(mask.reshape(b, dg, 1, k, p))
    out = columns_matmul(cols.view(b, c * k, p), weight, groups, bias)
    return out.view(b, o, *geometry[4])


def deform_conv_columns(
    input: torch.Tensor,
    offset: torch.Tensor,
    mask: Optional[torch.Tensor],
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    geometry: Geometry,
    groups: int,
    deform_groups: int,
) -> torch.Tensor:
    """Modulated deformable convolution on validated, same-dtype tensors.

    Args:
        input (Tensor): (B, C, H, W).
        offset (Tensor): (B, 2*dg*K, Ho, Wo), mmcv layout.
        mask (Tensor | None): (B, dg*K, Ho, Wo); ``None`` = no modulation.
        weight (Tensor): (O, C/groups, kh, kw).
        bias (Tensor | None): (O,).
        geometry (tuple): ``(kernel_size, stride, padding, dilation,
            out_size)``, each an ``(int, int)`` pair.
        groups (int): Convolution groups.
        deform_groups (int): Deformable groups ``dg``.

    Returns:
        Tensor: (B, O, Ho, Wo).
    """
    tensors = (input, offset, mask, weight, bias)
    if not records_autograd(*tensors):
        return _forward_no_grad(*tensors, geometry, groups, deform_groups)
    offset = offset.contiguous()
    mask = None if mask is None else mask.contiguous()
    return _DeformConvColumns.apply(
        input, offset, mask, weight, bias, geometry, groups, deform_groups
    )
