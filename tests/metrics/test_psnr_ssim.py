"""PSNR / SSIM functions (BasicSR / EDSR convention)."""

import math

import numpy as np
import pytest
import torch

from basicattn.metrics.psnr_ssim import calculate_psnr, calculate_ssim, metric_name


@pytest.fixture
def pair(rng):
    gt = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    noise = rng.integers(-8, 9, gt.shape)
    pred = np.clip(gt.astype(int) + noise, 0, 255).astype(np.uint8)
    return pred, gt


def test_metric_name():
    assert metric_name('psnr', True, 2) == 'psnr_y_crop2'
    assert metric_name('ssim', False, 0) == 'ssim_rgb_crop0'
    with pytest.raises(ValueError, match="'lpips'"):
        metric_name('lpips', True, 0)


def test_psnr_hand_computed():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 10  # MSE = 100 / 48
    assert calculate_psnr(a, b) == pytest.approx(10 * math.log10(255**2 * 48 / 100))
    assert calculate_psnr(a, a) == float('inf')
    # The differing pixel is inside the 1-px border: cropped away.
    assert calculate_psnr(a, b, crop_border=1) == float('inf')


def test_psnr_y_channel(pair):
    pred, gt = pair

    def y(im):
        return 16 + (65.481 * im[..., 0] + 128.553 * im[..., 1] + 24.966 * im[..., 2]) / 255.0

    c = 3
    mse = np.mean((y(pred.astype(np.float64)) - y(gt.astype(np.float64)))[c:-c, c:-c] ** 2)
    assert calculate_psnr(pred, gt, crop_border=c, test_y_channel=True) == pytest.approx(
        10 * math.log10(255**2 / mse), rel=1e-12
    )


def test_input_kinds_agree(pair):
    pred, gt = pair
    ref = calculate_psnr(pred, gt, 2, True)
    t_pred = torch.from_numpy(pred.transpose(2, 0, 1) / 255.0).float()
    assert calculate_psnr(t_pred, gt, 2, True) == pytest.approx(ref)
    assert calculate_psnr(t_pred[None], gt.astype(np.float64), 2, True) == pytest.approx(ref)
    s = calculate_ssim(pred, gt, 2, True)
    assert calculate_ssim(t_pred, gt, 2, True) == pytest.approx(s)


def test_tensor_input_is_rounded_to_uint8(pair):
    _, gt = pair
    t = torch.from_numpy(gt.transpose(2, 0, 1) / 255.0).float()
    t = t + 0.4 / 255  # less than half a level: vanishes after rounding
    assert calculate_psnr(t, gt) == float('inf')


def test_ssim_properties_and_reference(pair):
    pred, gt = pair
    assert calculate_ssim(gt, gt) == pytest.approx(1.0)
    s = calculate_ssim(pred, gt)
    assert 0 < s < 1
    # Independent reference: scikit-image with the same Gaussian window.
    from skimage.metrics import structural_similarity

    ref = np.mean(
        [
            structural_similarity(
                pred[..., c].astype(np.float64),
                gt[..., c].astype(np.float64),
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                data_range=255,
                full=True,
            )[1][5:-5, 5:-5].mean()
            for c in range(3)
        ]
    )
    assert s == pytest.approx(ref, abs=1e-6)


def test_shape_and_argument_errors(pair):
    pred, gt = pair
    with pytest.raises(ValueError, match=r'\(20, 24, 3\).*\(20, 23, 3\)'):
        calculate_psnr(pred, gt[:, :23])
    with pytest.raises(ValueError, match=r'\(20, 24, 3\).*\(19, 24, 3\)'):
        calculate_ssim(pred, gt[:19])
    with pytest.raises(ValueError, match='crop_border'):
        calculate_psnr(pred, gt, crop_border=-1)
    with pytest.raises(ValueError, match='crop_border=10'):
        calculate_psnr(pred, gt, crop_border=10)
    with pytest.raises(ValueError, match='11x11'):
        calculate_ssim(pred, gt, crop_border=5)
    with pytest.raises(ValueError, match='3 \\(RGB\\) channels'):
        calculate_psnr(pred[..., :2], gt[..., :2], test_y_channel=True)
    with pytest.raises(TypeError, match='int64'):
        calculate_psnr(pred.astype(np.int64), gt)
    with pytest.raises(TypeError, match='list'):
        calculate_psnr([1, 2], gt)
