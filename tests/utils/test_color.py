"""MATLAB BT.601 rgb2ycbcr for numpy and torch."""

import numpy as np
import pytest
import torch

from basicattn.utils.color import rgb2y_torch, rgb2ycbcr


def test_known_values_uint8():
    img = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]]], np.uint8)
    y = rgb2ycbcr(img)
    assert y.dtype == np.float64 and y.shape == (1, 3)
    np.testing.assert_allclose(y[0], [16.0, 235.0, 16 + 65.481], atol=1e-9)
    ycc = rgb2ycbcr(img, y_only=False)
    assert ycc.shape == (1, 3, 3)
    np.testing.assert_allclose(ycc[0, 0], [16, 128, 128], atol=1e-9)
    np.testing.assert_allclose(ycc[0, 1], [235, 128, 128], atol=1e-9)
    np.testing.assert_allclose(ycc[0, 2], [16 + 65.481, 128 - 37.797, 240], atol=1e-9)


def test_float_input_is_on_unit_scale():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    f = (img / 255.0).astype(np.float32)
    yf = rgb2ycbcr(f)
    assert yf.dtype == np.float32
    np.testing.assert_allclose(yf * 255.0, rgb2ycbcr(img), atol=1e-3)
    ycc = rgb2ycbcr(img / 255.0, y_only=False)
    np.testing.assert_allclose(ycc * 255, rgb2ycbcr(img, y_only=False), atol=1e-9)


def test_torch_matches_numpy_and_is_differentiable():
    rng = np.random.default_rng(1)
    img = rng.random((2, 4, 5, 3))
    t = torch.from_numpy(img.transpose(0, 3, 1, 2).copy()).requires_grad_()
    y = rgb2y_torch(t)
    assert y.shape == (2, 1, 4, 5) and y.dtype == torch.float64
    for i in range(2):
        np.testing.assert_allclose(y[i, 0].detach().numpy(), rgb2ycbcr(img[i]), atol=1e-12)
    y.sum().backward()
    assert t.grad is not None
    assert rgb2y_torch(torch.rand(3, 4, 5)).shape == (1, 4, 5)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r'\(4, 5\)'):
        rgb2ycbcr(np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match=r'\(4, 5, 4\)'):
        rgb2ycbcr(np.zeros((4, 5, 4), np.uint8))
    with pytest.raises(TypeError, match='int32'):
        rgb2ycbcr(np.zeros((4, 5, 3), np.int32))
    with pytest.raises(TypeError, match='numpy array'):
        rgb2ycbcr([[0, 0, 0]])
    with pytest.raises(ValueError, match=r'\(1, 4, 5, 5\)'):
        rgb2y_torch(torch.zeros(1, 4, 5, 5))
    with pytest.raises(TypeError, match='float tensor'):
        rgb2y_torch(torch.zeros(1, 3, 5, 5, dtype=torch.uint8))
