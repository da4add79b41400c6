"""The LAM maths (basicattn/analysis/lam.py) against OpenCV and closed forms."""

import cv2
import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from basicattn.analysis.lam import (
    BlurPath,
    attribution_map,
    check_window,
    diffusion_index,
    filter_channels,
    gaussian_kernel,
    gini,
    gradient_detector,
    path_attribution,
)
from basicattn.errors import DataError, UserError


def _authors_kernel(size, sigma):
    """The LAM release's isotropic kernel formula, written out in numpy."""
    ax = np.arange(-size // 2 + 1.0, size // 2 + 1.0)
    xx, yy = np.meshgrid(ax, ax)
    kernel = np.exp(-(xx**2 + yy**2) / (2.0 * (sigma + 1e-5) ** 2))
    return kernel / kernel.sum()


@pytest.mark.parametrize('size,sigma', [(9, 1.2), (9, 0.0), (5, 0.6), (1, 2.0)])
def test_gaussian_kernel_is_the_definition(size, sigma):
    kernel = gaussian_kernel(size, sigma).numpy()
    # same formula in float64, different order of operations: 1e-15 apart at most
    np.testing.assert_allclose(kernel, _authors_kernel(size, sigma), rtol=0, atol=1e-15)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-12)


def test_gaussian_kernel_is_opencvs_separable_gaussian():
    # cv2.getGaussianKernel normalises the 1-D Gaussian; its outer product is our kernel
    g = cv2.getGaussianKernel(9, 1.2 + 1e-5)
    np.testing.assert_allclose(gaussian_kernel(9, 1.2).numpy(), g @ g.T, rtol=1e-12, atol=1e-15)


def test_sigma_zero_end_is_the_identity():
    kernel = gaussian_kernel(9, 0.0)
    assert kernel[4, 4] == 1.0 and kernel.sum() == 1.0  # exp(-1/2e-10) underflows to 0


def test_filter_channels_is_filter2d_with_reflect_101(rng):
    image = rng.random((11, 14, 3))
    kernels = BlurPath(sigma=1.2, fold=4).kernels()
    out = filter_channels(torch.from_numpy(image.transpose(2, 0, 1)), kernels).numpy()
    for k, kernel in enumerate(kernels.numpy()):
        expected = cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
        # float64 both; OpenCV's direct 9x9 filter sums in another order: 1e-14 apart
        np.testing.assert_allclose(out[k].transpose(1, 2, 0), expected, rtol=0, atol=1e-14)
    # the default border of filter2D is reflect-101, as the LAM release calls it
    default = cv2.filter2D(image, -1, kernels[1].numpy())
    np.testing.assert_allclose(out[1].transpose(1, 2, 0), default, rtol=0, atol=1e-14)


def test_filter_channels_keeps_leading_dimensions(rng):
    clip = torch.from_numpy(rng.random((2, 3, 7, 8)))
    out = filter_channels(clip, gaussian_kernel(3, 1.0)[None])
    assert out.shape == (1, 2, 3, 7, 8)
    single = filter_channels(clip[1, 2], gaussian_kernel(3, 1.0)[None])
    assert torch.equal(out[0, 1, 2], single[0])  # the same plane, the same arithmetic


def test_path_steps_and_derivatives(rng):
    image = torch.from_numpy(rng.random((3, 9, 10)))
    path = BlurPath(sigma=1.0, fold=4, kernel_size=5)
    inputs, derivatives = path.steps(image, range(4))
    kernels = path.kernels()
    assert inputs.shape == derivatives.shape == (4, 3, 9, 10)
    # the last step is the image itself (sigma 1e-5: a delta kernel)
    np.testing.assert_allclose(inputs[-1].numpy(), image.numpy(), rtol=0, atol=1e-15)
    # derivative of step i = filter with (k_{i+1} - k_i) * fold; linear in the kernel
    expected = filter_channels(image, (kernels[2:3] - kernels[1:2]) * 4)[0]
    np.testing.assert_allclose(derivatives[1].numpy(), expected.numpy(), rtol=0, atol=1e-14)
    # the derivatives sum (times 1/fold) to image - blurred image: the path's two ends
    start = filter_channels(image, kernels[:1])[0]
    np.testing.assert_allclose(
        (derivatives.sum(0) / 4).numpy(), (image - start).numpy(), rtol=0, atol=1e-13
    )


def test_gini_hand_computed_cases():
    # equal values: 0; one non-zero of n: (n - 1) / n (the 1e-7 moves it by 3e-7)
    assert gini(np.ones(5)) == pytest.approx(0.0, abs=1e-12)
    assert gini(np.array([0.0, 0.0, 0.0, 1.0])) == pytest.approx(0.75, abs=1e-6)
    # [1, 2, 3, 4]: sum((2i - 5) a_i) = -3 - 2 + 3 + 12 = 10, n sum = 40
    assert gini(np.array([4.0, 1.0, 3.0, 2.0])) == pytest.approx(0.25, abs=1e-7)
    # negative values are shifted by the minimum: [-1, 0, 1] -> [0, 1, 2]: 4 / 9
    assert gini(np.array([1.0, -1.0, 0.0])) == pytest.approx(4.0 / 9.0, abs=1e-6)
    # a 2-D map is flattened
    assert gini(np.array([[0.0, 1.0], [0.0, 0.0]])) == pytest.approx(0.75, abs=1e-6)


def test_diffusion_index():
    di, g = diffusion_index(np.array([[0.0, 2.0], [0.0, 0.0]]))  # divided by its max first
    assert g == pytest.approx(0.75, abs=1e-6) and di == pytest.approx(25.0, abs=1e-4)
    with pytest.raises(DataError, match='zero everywhere'):
        diffusion_index(np.zeros((3, 3)))


def test_gradient_detector_by_hand():
    y = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    y[0, 0, 0, 0] = 3.0
    y[0, 0, 1, 0] = -1.0  # (0,0): dh = 16, dw = 9 -> 5
    assert gradient_detector(y, 0, 0, 1).item() == 5.0
    # window 2: (0,0) 5, (0,1) sqrt(0 + 0) = 0, (1,0) sqrt(1 + 1), (1,1) 0
    assert gradient_detector(y, 0, 0, 2).item() == pytest.approx(5.0 + 2**0.5)


def test_gradient_detector_has_no_nan_where_neighbours_are_equal():
    torch.manual_seed(0)
    y = torch.rand(1, 1, 5, 5, dtype=torch.float64)
    y.data[0, 0, 2, 1] = y.data[0, 0, 1, 2] = y.data[0, 0, 1, 1]  # g at (1, 1) is exactly 0
    y.requires_grad_(True)
    (grad,) = torch.autograd.grad(gradient_detector(y, 0, 0, 3).sum(), y)
    assert torch.isfinite(grad).all()
    # the same as the published torch.sqrt over the other eight window positions
    dh = (y[..., :-1, :] - y[..., 1:, :]) ** 2
    dw = (y[..., :, :-1] - y[..., :, 1:]) ** 2
    squared = (dh[..., :, :-1] + dw[..., :-1, :])[0, 0, :3, :3]
    mask = torch.ones(3, 3, dtype=torch.bool)
    mask[1, 1] = False
    (expected,) = torch.autograd.grad(torch.sqrt(squared[mask]).sum(), y, retain_graph=True)
    assert torch.equal(grad, expected)
    # published: sqrt'(0) = inf, times the zero differences, is NaN
    (published,) = torch.autograd.grad(torch.sqrt(squared).sum(), y)
    assert torch.isnan(published).any()


def test_equal_neighbours_do_not_erase_the_bicubic_attribution(rng):
    # a flat 2x2 LR patch inside the window: with the published NaN the bicubic
    # resize (whole rows and columns) would spread it over every pixel
    from basicattn.registry import ARCHS

    image = rng.random((3, 12, 12))
    image[:, 5:7, 5:7] = 0.5
    net = ARCHS.build(dict(type='Bicubic', scale=2))
    lam_map = _lam_map(net, image, 8, 8, 6, BlurPath(fold=2))
    assert lam_map.max() > 0 and np.count_nonzero(lam_map) > 16


def test_check_window():
    check_window(0, 0, 4, (3, 5, 5))  # detector 4x4: fits exactly
    with pytest.raises(UserError, match=r'--window 1 0.*ROW must be in \[0, 0\]'):
        check_window(1, 0, 4, (3, 5, 5))
    with pytest.raises(UserError, match='smaller --window-size'):
        check_window(0, 0, 16, (3, 8, 8))
    with pytest.raises(UserError, match='--window -1 2'):
        check_window(-1, 2, 2, (3, 8, 8))


@pytest.mark.parametrize(
    'settings,flag',
    [
        (dict(fold=0), '--fold'),
        (dict(kernel_size=8), '--kernel-size'),
        (dict(kernel_size=0), '--kernel-size'),
        (dict(sigma=-0.5), '--sigma'),
        (dict(sigma=float('nan')), '--sigma'),
    ],
)
def test_bad_path_settings(settings, flag):
    with pytest.raises(UserError, match=flag):
        BlurPath(**settings).check()


def test_image_too_small_for_the_kernel():
    with pytest.raises(DataError, match='at least 5x5'):
        BlurPath().check_size((3, 4, 30))


def _depthwise(weight):
    """A fixed linear network: the same k x k correlation on each channel, zero padding."""
    k = weight.shape[-1]
    conv = nn.Conv2d(3, 3, k, padding=k // 2, groups=3, bias=False)
    conv.weight.data = torch.from_numpy(np.repeat(weight[None, None], 3, 0)).float()
    return conv.eval()


def _closed_form(image, weight, row, col, size, path):
    """LAM of ``y = correlate(x, weight)`` written out with OpenCV and SciPy, float64.

    Path by cv2.filter2D; the gradient of sum(g) over the window by hand
    (g = sqrt(a + b), a = (y[p,q] - y[p+1,q])^2, b = (y[p,q] - y[p,q+1])^2);
    the gradient with respect to x is the adjoint of the correlation (a
    convolution with the same kernel and zero padding).
    """
    kernels = [
        _authors_kernel(path.kernel_size, s) for s in np.linspace(path.sigma, 0, path.fold + 1)
    ]
    hwc = image.transpose(1, 2, 0)
    total = np.zeros_like(hwc)
    for i in range(path.fold):
        x = cv2.filter2D(hwc, -1, kernels[i + 1])
        d = cv2.filter2D(hwc, -1, (kernels[i + 1] - kernels[i]) * path.fold)
        grad_x = np.zeros_like(hwc)
        for c in range(3):
            y = ndimage.correlate(x[..., c], weight, mode='constant')
            gy = np.zeros_like(y)
            for p in range(row, row + size):
                for q in range(col, col + size):
                    dv, dh = y[p, q] - y[p + 1, q], y[p, q] - y[p, q + 1]
                    g = np.sqrt(dv**2 + dh**2)
                    gy[p, q] += (dv + dh) / g
                    gy[p + 1, q] -= dv / g
                    gy[p, q + 1] -= dh / g
            grad_x[..., c] = ndimage.convolve(gy, weight, mode='constant')
        total += grad_x * d
    return np.abs((total / path.fold).sum(2))


def _lam_map(net, image, row, col, size, path, batch_size=3):
    objective = lambda y: gradient_detector(y, row, col, size)  # noqa: E731
    attribution = path_attribution(net, torch.from_numpy(image), objective, path, batch_size)
    return attribution_map(attribution)


def test_linear_filter_network_matches_the_closed_form(rng):
    image = cv2.GaussianBlur(rng.random((20, 22, 3)), (3, 3), 0.8).transpose(2, 0, 1).copy()
    weight = rng.random((3, 3))
    path = BlurPath(sigma=1.2, fold=6, kernel_size=9)
    row, col, size = 7, 8, 4
    got = _lam_map(_depthwise(weight), image, row, col, size, path)
    expected = _closed_form(image, weight, row, col, size, path)
    # the network runs in float32 (the reference in float64): agree to 1e-4 of the peak
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * expected.max())
    # nothing outside what the window's outputs (and their +1 neighbours) can see
    reach = np.zeros_like(expected, dtype=bool)
    reach[row - 1 : row + size + 2, col - 1 : col + size + 2] = True
    assert got[~reach].max() == 0.0 and got[reach].max() > 0


def test_wider_receptive_field_gives_larger_diffusion_index(rng):
    image = rng.random((3, 24, 24))
    path = BlurPath(fold=4)
    dis = []
    for k in (1, 3, 7):
        map_ = _lam_map(_depthwise(np.full((k, k), 1.0 / k**2)), image, 10, 10, 3, path)
        dis.append(diffusion_index(map_)[0])
    assert dis[0] < dis[1] < dis[2], dis


def test_batched_equals_one_by_one(rng):
    from basicattn.registry import ARCHS

    torch.manual_seed(0)
    net = ARCHS.build(dict(type='EDSR', num_feat=8, num_block=2, upscale=2)).eval()
    image = torch.from_numpy(rng.random((3, 10, 12)))
    path = BlurPath(fold=7)
    objective = lambda y: gradient_detector(y, 3, 4, 6)  # noqa: E731
    steps = []
    one = path_attribution(net, image, objective, path, 1, steps.append)
    assert steps == [1] * 7
    for batch_size in (3, 7, 50):
        steps = []
        batched = path_attribution(net, image, objective, path, batch_size, steps.append)
        assert sum(steps) == 7 and len(steps) == -(-7 // batch_size)
        # convolutions over a batch may pick other BLAS blockings: float32 summation
        # order differs, so agree to float32 rounding, not bit for bit
        np.testing.assert_allclose(
            batched.numpy(), one.numpy(), rtol=1e-4, atol=1e-6 * one.abs().max().item()
        )


def test_nan_gradients_count_as_zero():
    # a constant output: every g is sqrt(0), whose gradient is NaN; LAM sets it to 0
    net = lambda x: torch.zeros_like(x) + 0 * x  # noqa: E731
    image = torch.rand(3, 8, 8, dtype=torch.float64)
    objective = lambda y: gradient_detector(y, 1, 1, 3)  # noqa: E731
    attribution = path_attribution(net, image, objective, BlurPath(fold=2), 2)
    assert torch.equal(attribution, torch.zeros_like(attribution))
