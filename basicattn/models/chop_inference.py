"""Quadrant ("chop") inference, the test mode of EDSR-PyTorch and its forks.

Many SR authors (A2N among them) report numbers measured with their code's
``--chop`` option: the LR image is cut into four quadrants that overlap by
``shave`` pixels, each quadrant is super-resolved on its own (recursively
when still larger than ``min_size`` pixels), and the outputs are pasted back
without blending. For a network with a global operator (A2N's attention
dropout pools over the whole input) this changes the result, so reproducing
such a paper needs this exact procedure; ``tile`` inference is the general
tool for large images.
"""

from typing import Callable

from torch import Tensor


def chop_forward(
    network: Callable[[Tensor], Tensor], lq: Tensor, shave: int = 10, min_size: int = 160000
) -> Tensor:
    """Super-resolve ``lq`` quadrant by quadrant (see module docstring).

    The procedure of ``forward_chop`` in EDSR-PyTorch (Lim et al., "Enhanced
    Deep Residual Networks for Single Image Super-Resolution", CVPRW 2017).

    Args:
        network: Maps (N, C, h, w) to (N, C', s*h, s*w).
        lq: (N, C, h, w).
        shave: LR pixels by which a quadrant extends past the middle.
        min_size: Quadrants with at least this many pixels are split
            again (unless splitting no longer makes them smaller).

    Returns:
        (N, C', s*h, s*w).
    """
    h, w = lq.shape[-2:]
    half_h, half_w = h // 2, w // 2
    size_h, size_w = min(half_h + shave, h), min(half_w + shave, w)
    corners = [(0, 0), (0, w - size_w), (h - size_h, 0), (h - size_h, w - size_w)]
    patches = [lq[..., top : top + size_h, left : left + size_w] for top, left in corners]
    # Split again only while that still shrinks the patch (a shave of half
    # the size or more would recurse for ever).
    if size_h * size_w < min_size or size_h * size_w >= h * w:
        outputs = [network(p) for p in patches]
    else:
        outputs = [chop_forward(network, p, shave, min_size) for p in patches]
    scale = outputs[0].shape[-1] // size_w
    out = lq.new_zeros(*outputs[0].shape[:-2], h * scale, w * scale)
    rows = [(0, half_h), (half_h, h)]
    cols = [(0, half_w), (half_w, w)]
    for index, (top, left) in enumerate(corners):
        (r0, r1), (c0, c1) = rows[index // 2], cols[index % 2]
        out[..., r0 * scale : r1 * scale, c0 * scale : c1 * scale] = outputs[index][
            ..., (r0 - top) * scale : (r1 - top) * scale, (c0 - left) * scale : (c1 - left) * scale
        ]
    return out
