"""Chunked softmax attention and attention coverage (basicattn/ops/attention.py)."""

import pytest
import torch

from basicattn.ops import attention_coverage, chunked_attention


def test_chunked_attention_equals_dense_values_and_gradients():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 35, 8, generator=g, requires_grad=True) for _ in range(3))
    dense = torch.softmax(q @ k.transpose(1, 2), -1) @ v  # 35 x 35
    torch.testing.assert_close(chunked_attention(q, k, v, None), dense)
    grads = torch.autograd.grad(dense.square().sum(), (q, k, v))
    for chunk in (1, 4, 16, 34, 35, 100):
        out = chunked_attention(q, k, v, chunk)
        torch.testing.assert_close(out, dense, rtol=0, atol=1e-5)
        for a, b in zip(torch.autograd.grad(out.square().sum(), (q, k, v)), grads):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)  # grads ~10
    with pytest.raises(ValueError, match='chunk_size'):
        chunked_attention(q, k, v, 0)
    with pytest.raises(ValueError, match='same B and C'):
        chunked_attention(q, k[..., :4], v)


def test_attention_coverage_is_column_sum():
    g = torch.Generator().manual_seed(0)
    q, k = (torch.randn(2, 30, 8, generator=g) for _ in range(2))
    dense = torch.softmax(q @ k.transpose(1, 2), -1).sum(1)
    for chunk in (None, 7, 30):
        torch.testing.assert_close(attention_coverage(q, k, chunk), dense, rtol=0, atol=1e-5)
    assert attention_coverage(q, k).mean().item() == pytest.approx(1.0)


def test_old_import_path_still_works():
    from basicattn.archs import dasaa_blocks

    assert dasaa_blocks.chunked_attention is chunked_attention
    assert dasaa_blocks.attention_coverage is attention_coverage
