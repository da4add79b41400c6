"""The chunked DCNv2 autograd function (basicattn/ops/deform_conv_function.py).

Several chunks of pixels with a partial last one, one image per sampling
call, and every subset of inputs needing a gradient, must give the values and
gradients of the single-chunk, whole-batch computation, which
tests/ops/test_deform_conv.py checks against the slow reference and
gradcheck.
"""

import pytest
import torch

from basicattn.ops import deform_conv_function, modulated_deform_conv2d

NAMES = ('input', 'offset', 'mask', 'weight', 'bias')


def _tensors(groups, dg, with_mask, seed=0):
    gen = torch.Generator().manual_seed(seed)
    opts = dict(generator=gen, dtype=torch.float64)
    b, c, o, h, w = 2, 4, 6, 5, 6  # 30 output pixels per image
    x = torch.randn(b, c, h, w, **opts)
    offset = torch.randn(b, 2 * dg * 9, h, w, **opts) * 2
    mask = torch.rand(b, dg * 9, h, w, **opts) if with_mask else None
    weight = torch.randn(o, c // groups, 3, 3, **opts)
    bias = torch.randn(o, **opts)
    return dict(input=x, offset=offset, mask=mask, weight=weight, bias=bias)


def _run(tensors, groups, dg, requires=NAMES, retain=False):
    leaves = {
        k: (None if v is None else v.clone().requires_grad_(k in requires))
        for k, v in tensors.items()
    }
    out = modulated_deform_conv2d(
        leaves['input'],
        leaves['offset'],
        leaves['mask'],
        leaves['weight'],
        leaves['bias'],
        1,
        1,
        1,
        groups,
        dg,
    )
    grad_out = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    out.backward(grad_out, retain_graph=retain)
    grads = {k: v.grad.clone() for k, v in leaves.items() if v is not None and v.requires_grad}
    if retain:  # a second backward resamples the overwritten columns
        out.backward(grad_out)
        for k, g in grads.items():
            torch.testing.assert_close(leaves[k].grad, 2 * g)
    return out.detach(), grads


def _chunk(monkeypatch, pixels, channels=4):
    """Make the CPU chunk ``pixels`` output pixels (float64, 3x3) and sample
    one image per ``grid_sample`` call (the defaults give one chunk and one
    call for these sizes)."""
    monkeypatch.setattr(deform_conv_function, 'CPU_CHUNK_BYTES', pixels * channels * 9 * 8)
    monkeypatch.setattr(deform_conv_function, 'SAMPLE_BLOCK_BYTES', 1)


@pytest.mark.parametrize(
    'groups,dg,with_mask',
    [(1, 1, True), (2, 2, True), (1, 2, False)],
    ids=['plain', 'groups2-dg2', 'no-mask'],
)
def test_chunks_with_partial_last_chunk_equal_one_chunk(monkeypatch, groups, dg, with_mask):
    tensors = _tensors(groups, dg, with_mask)
    whole_out, whole_grads = _run(tensors, groups, dg)
    _chunk(monkeypatch, 7)  # 30 pixels: 7, 7, 7, 7, 2
    out, grads = _run(tensors, groups, dg, retain=True)
    torch.testing.assert_close(out, whole_out)
    assert grads.keys() == whole_grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, whole_grads[name], msg=name)
    with torch.no_grad():  # the plain-ops path
        fast = modulated_deform_conv2d(*tensors.values(), 1, 1, 1, groups, dg)
    torch.testing.assert_close(fast, whole_out)


@pytest.mark.parametrize(
    'requires',
    [('weight',), ('input',), ('offset', 'mask'), ('mask',), ('bias',), ('input', 'weight')],
    ids='+'.join,
)
def test_only_the_requested_gradients_are_computed_and_correct(monkeypatch, requires):
    tensors = _tensors(1, 2, True, seed=1)
    _, whole_grads = _run(tensors, 1, 2)
    _chunk(monkeypatch, 8)
    _, grads = _run(tensors, 1, 2, requires=requires)
    assert sorted(grads) == sorted(requires)
    for name in requires:
        torch.testing.assert_close(grads[name], whole_grads[name], msg=name)
