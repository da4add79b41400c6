"""The paths the ops take while an ONNX export traces them give the eager numbers.

``torch.onnx.is_in_onnx_export()`` is patched to True, so these run the
export branches (plain no-grad DCN with ``F.grid_sample``, no checkpointing,
in-place softmax) on ordinary tensors that require grad, and compare them
with the eager forward.

The two paths run different kernels (``grid_sample`` against our gather and
lerp, a GEMM blocked differently, ``logsumexp`` against max-subtract-exp),
so they agree to float32 rounding, not bit for bit: on a 2-thread AVX-512
EPYC the DCN paths differ by 7e-7 on outputs of magnitude 6, and by 0 with
one thread. :data:`FLOAT32_PATHS` allows about ten float32 ulps of that
magnitude, far below any real mistake in an export branch (a wrong offset,
mask or weight shows at 1e-2 and more).
"""

import pytest
import torch

from basicattn.ops import chunked_attention, modulated_deform_conv2d
from basicattn.ops.deform_conv_function import _DeformConvColumns
from basicattn.ops.nonlocal_attention import gaussian_nonlocal_attention
from basicattn.ops.op_utils import exporting, records_autograd

FLOAT32_PATHS = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture
def under_export(monkeypatch):
    monkeypatch.setattr(torch.onnx, 'is_in_onnx_export', lambda: True)


def test_records_autograd_is_off_while_exporting(under_export):
    x = torch.rand(2, requires_grad=True)
    assert exporting() and not records_autograd(x, None)


def test_records_autograd_outside_export():
    x = torch.rand(2, requires_grad=True)
    assert not exporting() and records_autograd(None, x) and not records_autograd(x.detach())
    with torch.no_grad():
        assert not records_autograd(x)


def _dcn_inputs():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 4, 7, 9, generator=g, requires_grad=True)
    offset = torch.randn(2, 2 * 2 * 9, 7, 9, generator=g) * 2
    mask = torch.rand(2, 2 * 9, 7, 9, generator=g)
    weight = torch.randn(6, 4, 3, 3, generator=g, requires_grad=True)
    bias = torch.randn(6, generator=g)
    return x, offset, mask, weight, bias


def _dcn(x, offset, mask, weight, bias):
    return modulated_deform_conv2d(x, offset, mask, weight, bias, padding=1, deform_groups=2)


def test_dcn_export_path_equals_eager(monkeypatch):
    inputs = _dcn_inputs()
    eager = _dcn(*inputs)
    assert type(eager.grad_fn).__name__ == '_DeformConvColumnsBackward'
    monkeypatch.setattr(torch.onnx, 'is_in_onnx_export', lambda: True)

    def not_traceable(*args):
        raise AssertionError('the custom autograd function ran under export')

    monkeypatch.setattr(_DeformConvColumns, 'apply', not_traceable)
    monkeypatch.setattr(torch, 'grid_sampler_2d', not_traceable)  # F.grid_sample instead
    torch.testing.assert_close(_dcn(*inputs).detach(), eager.detach(), **FLOAT32_PATHS)


def test_attention_export_paths_equal_eager(monkeypatch):
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.rand(1, 6, 5, 5, 4, generator=g, requires_grad=True) for _ in range(3))
    sigma = torch.tensor(2.0, requires_grad=True)
    flat = [t.flatten(1, 3) for t in (q, k, v)]
    eager = (chunked_attention(*flat, chunk_size=7), gaussian_nonlocal_attention(q, k, v, sigma, 2))
    monkeypatch.setattr(torch.onnx, 'is_in_onnx_export', lambda: True)
    traced = (
        chunked_attention(*flat, chunk_size=7),
        gaussian_nonlocal_attention(q, k, v, sigma, 2),
    )
    for a, b in zip(eager, traced):
        torch.testing.assert_close(a.detach(), b.detach(), **FLOAT32_PATHS)


@pytest.mark.parametrize('scale', [1, 2, 3, 4, 1.5, 2.5])
def test_traced_bicubic_upsample_is_matlab_imresize(scale):
    from basicattn.ops.traced_imresize import traced_bicubic_upsample
    from basicattn.utils.matlab_imresize import imresize

    g = torch.Generator().manual_seed(2)
    for hw in ((8, 8), (5, 11), (1, 3)):
        x = torch.rand(2, 3, *hw, generator=g)
        # the same matrix products, with weights computed by torch here and by
        # numpy there: equal up to the float32 rounding of those weights
        torch.testing.assert_close(
            traced_bicubic_upsample(x, scale), imresize(x, scale=scale), **FLOAT32_PATHS
        )


def test_traced_bicubic_upsample_refuses_downscaling():
    from basicattn.ops.traced_imresize import traced_bicubic_upsample

    with pytest.raises(ValueError, match='scale must be >= 1'):
        traced_bicubic_upsample(torch.rand(1, 3, 4, 4), 0.5)
