"""Tiled Gaussian non-local attention against the dense reference."""

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from basicattn.ops.nonlocal_attention import (
    gaussian_nonlocal_attention,
    gaussian_nonlocal_attention_dense,
    gaussian_window_radius,
)


def inputs(h, w, frames=2, c=8, cv=6, sigma=4.0, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(1, 1, h, w, c, generator=g, dtype=dtype)
    k = torch.randn(1, frames, h, w, c, generator=g, dtype=dtype)
    v = torch.randn(1, frames, h, w, cv, generator=g, dtype=dtype)
    s = torch.tensor([sigma], dtype=dtype)
    return [t.requires_grad_() for t in (q, k, v, s)]


def run_both(args, **kwargs):
    out = gaussian_nonlocal_attention(*args, **kwargs)
    ref = gaussian_nonlocal_attention_dense(*args)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    grads = torch.autograd.grad(out, args, grad)
    ref_grads = torch.autograd.grad(ref, args, grad)
    return out, ref, grads, ref_grads


def test_tiled_equals_dense_on_64x64():
    """The brief's check: 64x64 LR, float32, outputs and gradients."""
    out, ref, grads, ref_grads = run_both(inputs(64, 64, frames=1))
    assert out.shape == ref.shape == (1, 1, 64, 64, 6)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)
    for name, g, r in zip('qkv', grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=0, atol=1e-5, msg=name)
    # sigma gets a sum over 4096 x 4096 terms: compare relatively
    torch.testing.assert_close(grads[3], ref_grads[3], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    'h,w,tile,sigma',
    [
        (13, 29, 5, 1.5),  # window smaller than the frame, ragged tiles
        (11, 7, 16, 0.6),  # one tile larger than the frame
        (9, 12, 4, 30.0),  # window covers the whole frame
        (10, 10, 3, -2.0),  # only sigma^2 matters
    ],
)
def test_tiled_equals_dense_any_size_and_sigma(h, w, tile, sigma):
    args = inputs(h, w, sigma=sigma, dtype=torch.float64)
    out, ref, grads, ref_grads = run_both(args, tile_size=tile)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-9)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-7, atol=1e-8)
    with torch.no_grad():  # the in-place inference path
        torch.testing.assert_close(
            gaussian_nonlocal_attention(*args, tile_size=tile), ref, rtol=0, atol=1e-9
        )


def test_window_follows_sigma_during_training():
    """After an optimiser step on sigma the window is re-derived."""
    q, k, v, s = inputs(20, 20, sigma=1.0, dtype=torch.float64)
    opt = torch.optim.SGD([s], lr=50.0)
    for _ in range(2):
        loss = gaussian_nonlocal_attention(q, k, v, s, tile_size=6).sum()
        opt.zero_grad()
        loss.backward()
        assert s.grad is not None and s.grad.abs().item() > 0
        opt.step()
    assert gaussian_window_radius(s.item(), 1e-8) != gaussian_window_radius(1.0, 1e-8)
    with torch.no_grad():
        torch.testing.assert_close(
            gaussian_nonlocal_attention(q, k, v, s, tile_size=6),
            gaussian_nonlocal_attention_dense(q, k, v, s),
            rtol=0,
            atol=1e-9,
        )


def test_checkpoint_and_plain_paths_agree():
    args = inputs(12, 10, sigma=2.0, dtype=torch.float64)
    a = gaussian_nonlocal_attention(*args, tile_size=4, use_checkpoint=True)
    b = gaussian_nonlocal_attention(*args, tile_size=4, use_checkpoint=False)
    ga = torch.autograd.grad(a.sum(), args)
    gb = torch.autograd.grad(b.sum(), args)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y)


def test_window_radius():
    assert gaussian_window_radius(4.0, 1e-8) == 25
    for sigma, tol in [(4.0, 1e-8), (0.7, 1e-6), (13.3, 1e-10)]:
        r = gaussian_window_radius(sigma, tol)
        assert math.exp(-r * r / (2 * sigma * sigma)) <= tol
        assert math.exp(-((r - 1) ** 2) / (2 * sigma * sigma)) > tol


class LargestTensor(TorchDispatchMode):
    """Records the largest number of elements of any op output."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def test_no_hw_by_hw_tensor_forward_or_backward():
    h, w, tile = 32, 40, 8
    q, k, v, s = inputs(h, w, frames=1, sigma=2.0)
    with LargestTensor() as mode:
        out = gaussian_nonlocal_attention(q, k, v, s, tile_size=tile)
        out.sum().backward()
    assert mode.largest <= tile * tile * h * w < (h * w) ** 2 // 4
    assert q.grad is not None and s.grad is not None


def test_bad_arguments_are_named():
    q, k, v, s = inputs(6, 6)
    with pytest.raises(ValueError, match='same channels'):
        gaussian_nonlocal_attention(q[..., :4], k, v, s)
    with pytest.raises(ValueError, match='same H, W'):
        gaussian_nonlocal_attention(q[:, :, :5], k, v, s)
    with pytest.raises(ValueError, match=r'\(\.\.\., H, W\)'):
        gaussian_nonlocal_attention(q, k, v[:, :1], s)
    with pytest.raises(ValueError, match='do not broadcast'):
        gaussian_nonlocal_attention(q.expand(1, 3, 6, 6, 8), k, v, s)
    with pytest.raises(ValueError, match='non-zero'):
        gaussian_nonlocal_attention(q, k, v, 0.0)
    with pytest.raises(ValueError, match='tile_size'):
        gaussian_nonlocal_attention(q, k, v, s, tile_size=0)
    with pytest.raises(ValueError, match='tol'):
        gaussian_nonlocal_attention(q, k, v, s, tol=1.0)
    with pytest.raises(ValueError, match='one element'):
        gaussian_nonlocal_attention(q, k, v, torch.ones(2))
