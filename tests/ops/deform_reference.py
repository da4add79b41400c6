"""Slow, obviously-correct references for the deformable ops (tests only).

Explicit Python loops over batch, output pixel, tap and output channel, with
mmcv's bilinear rule written out corner by corner. Float64, tiny shapes.
"""

import math

import torch


def bilinear(img, y, x):
    """mmcv's ``dmcn_im2col_bilinear``: ``img`` (..., H, W), zero outside.

    A point with ``y <= -1``, ``y >= H``, ``x <= -1`` or ``x >= W`` gives 0;
    otherwise each of the four neighbours inside the image contributes.
    """
    h, w = img.shape[-2:]
    out = torch.zeros(img.shape[:-2], dtype=img.dtype)
    if y <= -1 or y >= h or x <= -1 or x >= w:
        return out
    y0, x0 = math.floor(y), math.floor(x)
    ly, lx = y - y0, x - x0
    for yy, xx, wt in (
        (y0, x0, (1 - ly) * (1 - lx)),
        (y0, x0 + 1, (1 - ly) * lx),
        (y0 + 1, x0, ly * (1 - lx)),
        (y0 + 1, x0 + 1, ly * lx),
    ):
        if 0 <= yy < h and 0 <= xx < w:
            out = out + wt * img[..., yy, xx]
    return out


def _geometry(input, kernel_size, stride, padding, dilation):
    h, w = input.shape[-2:]
    kh, kw = kernel_size
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    return ho, wo


def sample_columns(input, offset, mask, kernel_size, stride, padding, dilation, deform_groups):
    """cols[b, c, i, j, ho, wo]: the (modulated) sample of tap (i, j)."""
    b, c = input.shape[:2]
    kh, kw = kernel_size
    ho, wo = _geometry(input, kernel_size, stride, padding, dilation)
    cg = c // deform_groups
    cols = torch.zeros(b, c, kh, kw, ho, wo, dtype=input.dtype)
    for n in range(b):
        for g in range(deform_groups):
            img = input[n, g * cg : (g + 1) * cg]
            for i in range(kh):
                for j in range(kw):
                    k = i * kw + j
                    for oy in range(ho):
                        for ox in range(wo):
                            y = oy * stride[0] - padding[0] + i * dilation[0]
                            x = ox * stride[1] - padding[1] + j * dilation[1]
                            if offset is not None:
                                base = g * 2 * kh * kw + 2 * k
                                y += float(offset[n, base, oy, ox])
                                x += float(offset[n, base + 1, oy, ox])
                            val = bilinear(img, y, x)
                            if mask is not None:
                                val = val * float(mask[n, g * kh * kw + k, oy, ox])
                            cols[n, g * cg : (g + 1) * cg, i, j, oy, ox] = val
    return cols


def ref_modulated_deform_conv2d(
    input, offset, mask, weight, bias, stride, padding, dilation, groups, deform_groups
):
    """DCNv2 by loops: out[b, o] = sum over its group's channels and taps."""
    o, cpg, kh, kw = weight.shape
    cols = sample_columns(input, offset, mask, (kh, kw), stride, padding, dilation, deform_groups)
    b, _, _, _, ho, wo = cols.shape
    opg = o // groups
    out = torch.zeros(b, o, ho, wo, dtype=input.dtype)
    for n in range(b):
        for oc in range(o):
            g = oc // opg
            for ci in range(cpg):
                for i in range(kh):
                    for j in range(kw):
                        out[n, oc] += weight[oc, ci, i, j] * cols[n, g * cpg + ci, i, j]
            if bias is not None:
                out[n, oc] += bias[oc]
    return out


def ref_deform_kernel_conv2d(
    input,
    weight,
    bias,
    offset,
    mask,
    kernel_offset,
    kernel_size,
    stride,
    padding,
    dilation,
    groups,
    deform_groups,
    kernel_offset_groups,
    tap_rows,
    tap_cols,
):
    """Deformable kernel conv by loops: each tap's weight is read from the
    scope by :func:`bilinear` at ``(tap_rows[i] + dky, tap_cols[j] + dkx)``
    for every output pixel."""
    o, cpg, sh, sw = weight.shape
    kh, kw = kernel_size
    c = input.shape[1]
    cols = sample_columns(
        input, offset, mask, kernel_size, stride, padding, dilation, deform_groups
    )
    b, _, _, _, ho, wo = cols.shape
    opg = o // groups
    cpk = c // kernel_offset_groups
    out = torch.zeros(b, o, ho, wo, dtype=input.dtype)
    for n in range(b):
        for oc in range(o):
            g = oc // opg
            for ci in range(cpg):
                cin = g * cpg + ci
                kg = cin // cpk
                for i in range(kh):
                    for j in range(kw):
                        k = i * kw + j
                        for oy in range(ho):
                            for ox in range(wo):
                                ty, tx = tap_rows[i], tap_cols[j]
                                if kernel_offset is not None:
                                    base = kg * 2 * kh * kw + 2 * k
                                    ty += float(kernel_offset[n, base, oy, ox])
                                    tx += float(kernel_offset[n, base + 1, oy, ox])
                                wk = bilinear(weight[oc, ci], ty, tx)
                                out[n, oc, oy, ox] += wk * cols[n, cin, i, j, oy, ox]
            if bias is not None:
                out[n, oc] += bias[oc]
    return out
