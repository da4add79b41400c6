"""MATLAB-exact imresize: pinned against values worked out by hand."""

import numpy as np
import pytest
import torch

from basicattn.utils.matlab_imresize import cubic_kernel, imresize, resize_weights

# Keys cubic (a = -0.5) at the four distances that x2 resizing uses:
#   |x| <= 1:     1.5|x|^3 - 2.5|x|^2 + 1
#   1 < |x| <= 2: -0.5|x|^3 + 2.5|x|^2 - 4|x| + 2
K025, K075, K125, K175 = 0.8671875, 0.2265625, -0.0703125, -0.0234375


def test_cubic_kernel_values():
    got = cubic_kernel(np.array([0.0, 0.25, 0.75, 1.0, 1.25, 1.75, 2.0, 2.5]))
    np.testing.assert_allclose(got, [1.0, K025, K075, 0.0, K125, K175, 0.0, 0.0], atol=1e-15)
    assert K025 + K075 + K125 + K175 == 1.0


def test_x2_upscale_ramp_hand_computed():
    # Output x (1-based) samples u = x / 2 + 0.25. E.g. x = 1: u = 0.75, taps
    # at pixels -1, 0, 1, 2 with weights K175, K075, K025, K125; symmetric
    # padding maps pixel -1 -> 2 and 0 -> 1, so out = 1.09375 v1 - 0.09375 v2.
    ramp = np.array([[0.0, 1.0, 2.0, 3.0]])
    expected = [-0.09375, 0.1796875, 0.7265625, 1.25, 1.75, 2.2734375, 2.8203125, 3.09375]
    out = imresize(ramp, output_shape=(1, 8))
    assert out.dtype == np.float64
    np.testing.assert_allclose(out[0], expected, atol=1e-12)
    # The first output pixel from the formula in the comment.
    v = np.array([5.0, 9.0, 1.0, 4.0])
    assert imresize(v[None], output_shape=(1, 8))[0, 0] == pytest.approx(1.09375 * 5 - 0.09375 * 9)


def test_x2_upscale_weight_rows():
    w = resize_weights(4, 8, 2.0)
    # Interior output x = 4 (u = 2.25): pixels 1..4 get K125, K025, K075, K175.
    np.testing.assert_allclose(w[3], [K125, K025, K075, K175], atol=1e-15)
    np.testing.assert_allclose(w[0], [K075 + K025, K175 + K125, 0, 0], atol=1e-15)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-12)


def test_half_downscale_antialiased_hand_computed():
    # scale 1/2 with antialiasing: kernel 0.5 * cubic(x / 2), width 8, so the
    # 8 taps around u = 2x - 0.5 weigh 0.5 * (K175, K125, K075, K025, K025,
    # K075, K125, K175) (already summing to 1).
    taps = 0.5 * np.array([K175, K125, K075, K025, K025, K075, K125, K175])
    rng = np.random.default_rng(1)
    row = rng.random(8) * 100
    padded = np.pad(row, 3, mode='symmetric')  # edge repeated, like MATLAB
    # Output x uses 1-based pixels 2x-4 .. 2x+3 -> padded[2x-4+2 .. 2x+3+2].
    expected = [taps @ padded[2 * x - 2 : 2 * x + 6] for x in range(1, 5)]
    out = imresize(row[None], output_shape=(1, 4))
    np.testing.assert_allclose(out[0], expected, atol=1e-10)
    # Without antialiasing: plain kernel (width 4); u = 2x - 0.5 lies halfway
    # between two pixels, so the 4 taps sit at distances 1.5, 0.5, 0.5, 1.5.
    k15, k05 = cubic_kernel(1.5), cubic_kernel(0.5)
    taps4 = np.array([k15, k05, k05, k15]) / (2 * (k15 + k05))
    padded2 = np.pad(row, 2, mode='symmetric')
    exp2 = [taps4 @ padded2[2 * x - 1 : 2 * x + 3] for x in range(1, 5)]
    out2 = imresize(row[None], output_shape=(1, 4), antialiasing=False)
    np.testing.assert_allclose(out2[0], exp2, atol=1e-10)


def test_2d_is_separable_and_rows_first():
    rng = np.random.default_rng(2)
    img = rng.random((4, 4, 2))
    out = imresize(img, scale=2)
    wh = resize_weights(4, 8, 2.0)
    ref = np.einsum('oh,hwc->owc', wh, img)
    ref = np.einsum('pw,owc->opc', wh, ref)
    np.testing.assert_allclose(out, ref, atol=1e-12)
    # HW input keeps HW.
    assert imresize(img[..., 0], scale=0.5).shape == (2, 2)


def test_uint8_rounds_after_each_axis():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    out = imresize(img, output_shape=(3, 14))  # rows shrink -> rows first
    assert out.dtype == np.uint8 and out.shape == (3, 14, 3)

    def rnd(x):  # MATLAB: clip, round half away from zero
        return np.floor(np.clip(x, 0, 255) + 0.5)

    wh = resize_weights(6, 3, 0.5)
    ww = resize_weights(9, 14, 14 / 9)
    ref = rnd(np.einsum('oh,hwc->owc', wh, img.astype(np.float64)))
    ref = rnd(np.einsum('pw,owc->opc', ww, ref))
    np.testing.assert_array_equal(out, ref.astype(np.uint8))
    # Columns first when the columns shrink more.
    out2 = imresize(img, output_shape=(12, 3))
    ww2 = resize_weights(9, 3, 3 / 9)
    wh2 = resize_weights(6, 12, 2.0)
    ref2 = rnd(np.einsum('pw,hwc->hpc', ww2, img.astype(np.float64)))
    ref2 = rnd(np.einsum('oh,hpc->opc', wh2, ref2))
    np.testing.assert_array_equal(out2, ref2.astype(np.uint8))


def test_uint8_clips_but_float_does_not():
    step = np.zeros((4, 4), np.uint8)
    step[:, 2:] = 255
    up = imresize(step, scale=2)
    upf = imresize(step.astype(np.float64), scale=2)
    assert upf.min() < 0 and upf.max() > 255  # cubic overshoot
    assert up.min() == 0 and up.max() == 255
    np.testing.assert_array_equal(up, np.floor(np.clip(upf, 0, 255) + 0.5).astype(np.uint8))


def test_identity_scale_one():
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(imresize(img, scale=1), img)
    f = img / 255.0
    np.testing.assert_allclose(imresize(f, scale=1.0), f, atol=1e-15)


def test_output_size_is_ceil_of_scale():
    img = np.zeros((9, 10))
    assert imresize(img, scale=1 / 3).shape == (3, 4)
    assert imresize(img, scale=2.5).shape == (23, 25)
    assert imresize(np.zeros((30, 30)), scale=0.1).shape == (3, 3)


def test_replicate_padding():
    row = np.array([[0.0, 1.0, 2.0, 3.0]])
    out = imresize(row, output_shape=(1, 8), padding='replicate')
    # x = 1 (u = 0.75) taps pixels -1, 0, 1, 2: all of -1, 0, 1 -> v1.
    assert out[0, 0] == pytest.approx((K175 + K075 + K025) * 0 + K125 * 1)
    # Interior is the same as symmetric padding.
    sym = imresize(row, output_shape=(1, 8))
    np.testing.assert_allclose(out[0, 3:5], sym[0, 3:5], atol=1e-12)


def test_numpy_equals_torch():
    rng = np.random.default_rng(5)
    img = rng.random((7, 9, 3))
    for kw in (
        dict(scale=2),
        dict(scale=0.5),
        dict(scale=3),
        dict(output_shape=(5, 13)),
        dict(scale=0.25, antialiasing=False),
    ):
        ref = imresize(img, **kw)
        t = torch.from_numpy(img.transpose(2, 0, 1).copy())
        out = imresize(t, **kw)
        assert out.dtype == torch.float64
        np.testing.assert_allclose(out.numpy().transpose(1, 2, 0), ref, atol=1e-12)
        out32 = imresize(t.float()[None].repeat(2, 1, 1, 1), **kw)
        assert out32.dtype == torch.float32 and out32.shape[0] == 2
        np.testing.assert_allclose(out32[1].numpy().transpose(1, 2, 0), ref, atol=1e-5)


def test_torch_not_clipped_and_differentiable():
    x = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    x[..., 2:] = 1.0
    y = imresize(x, scale=2)
    assert y.min() < 0 and y.max() > 1
    x = torch.rand(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    y = imresize(x, scale=2)
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0
    x = torch.rand(1, 1, 4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: imresize(t, scale=0.5), (x,))


def test_weights_are_cached_and_read_only():
    a = resize_weights(10, 20, 2.0)
    assert resize_weights(10, 20, 2.0) is a
    assert not a.flags.writeable


@pytest.mark.parametrize(
    'kwargs, match',
    [
        (dict(), 'exactly one of scale / output_shape'),
        (dict(scale=2, output_shape=(8, 8)), 'exactly one of scale'),
        (dict(scale=0), 'positive'),
        (dict(scale=-2), 'positive'),
        (dict(scale=(2, 3)), 'one number'),
        (dict(scale='x'), 'number'),
        (dict(output_shape=(8,)), r'\(h, w\)'),
        (dict(output_shape=(0, 8)), 'positive integers'),
        (dict(output_shape=(2.5, 8)), 'positive integers'),
        (dict(output_shape=(None, 8)), 'positive integers'),
        (dict(scale=2, padding='reflect'), 'padding'),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        imresize(np.zeros((4, 4, 3), np.uint8), **kwargs)


def test_bad_inputs():
    with pytest.raises(TypeError, match='numpy array or a torch tensor'):
        imresize([[1, 2], [3, 4]], scale=2)
    with pytest.raises(TypeError, match='int64'):
        imresize(np.zeros((4, 4), np.int64), scale=2)
    with pytest.raises(ValueError, match=r'HW or HWC.*\(1, 2, 3, 4\)'):
        imresize(np.zeros((1, 2, 3, 4)), scale=2)
    with pytest.raises(TypeError, match='floating point'):
        imresize(torch.zeros(1, 3, 4, 4, dtype=torch.uint8), scale=2)
    with pytest.raises(ValueError, match=r'\(4, 4\)'):
        imresize(torch.zeros(4, 4), scale=2)
