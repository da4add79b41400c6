"""Golden check on real data: the Bicubic row of SR papers on Set5.

Upsample every Set5 LR image with the MATLAB-exact ``imresize`` (uint8 in,
uint8 out), compare with HR on the Y channel with ``crop_border = scale`` and
average over the 5 images. Papers (EDSR, RCAN ...) report 33.66 / 0.9299,
30.39 / 0.8682, 28.42 / 0.8104 for x2 / x3 / x4. Run with ``-s`` to see the
measured numbers.
"""

import os.path as osp

import numpy as np
import pytest

from basicattn.metrics.psnr_ssim import calculate_psnr, calculate_ssim
from basicattn.utils.img_util import img2tensor, imread
from basicattn.utils.matlab_imresize import imresize

PAPER = {2: (33.66, 0.9299), 3: (30.39, 0.8682), 4: (28.42, 0.8104)}
NAMES = [f'img_{i:03d}.png' for i in range(1, 6)]


def _pairs(testdata, scale):
    root = testdata('Set5', f'X{scale}')
    for name in NAMES:
        yield (name, imread(osp.join(root, 'LR', name)), imread(osp.join(root, 'HR', name)))


@pytest.mark.slow
@pytest.mark.parametrize('scale', [2, 3, 4])
def test_set5_bicubic_matches_papers(testdata, scale):
    psnrs, ssims, psnrs_t = [], [], []
    for name, lr, hr in _pairs(testdata, scale):
        sr = imresize(lr, scale=scale)
        assert sr.dtype == np.uint8 and sr.shape == hr.shape, name
        psnrs.append(calculate_psnr(sr, hr, scale, test_y_channel=True))
        ssims.append(calculate_ssim(sr, hr, scale, test_y_channel=True))
        # The tensor path (what the Bicubic arch runs), rounded at the end.
        sr_t = imresize(img2tensor(lr)[None], scale=scale)
        psnrs_t.append(calculate_psnr(sr_t, hr, scale, test_y_channel=True))
    psnr, ssim, psnr_t = np.mean(psnrs), np.mean(ssims), np.mean(psnrs_t)
    print(
        f'\nSet5 x{scale} Bicubic (Y, crop {scale}): PSNR {psnr:.4f} dB '
        f'SSIM {ssim:.4f} | tensor path PSNR {psnr_t:.4f} dB | paper '
        f'{PAPER[scale][0]:.2f} / {PAPER[scale][1]:.4f}'
    )
    assert abs(psnr - PAPER[scale][0]) <= 0.03
    assert abs(ssim - PAPER[scale][1]) <= 0.002
    assert abs(psnr_t - psnr) <= 0.01


@pytest.mark.slow
@pytest.mark.parametrize('scale', [2, 3, 4])
def test_set5_lr_regenerates_pixel_exact(testdata, scale):
    """The shared LR files are MATLAB ``imresize(HR, 1/scale)`` output.

    They match to the last pixel with the older MATLAB boundary rule
    (``padding='replicate'``) and uint8 rounding after each axis; this pins
    the downscaling arithmetic (antialiased kernel, index maths, axis order,
    rounding) on real data. Current MATLAB's symmetric padding differs only
    in a few border pixels.
    """
    for name, lr, hr in _pairs(testdata, scale):
        down = imresize(hr, scale=1 / scale, padding='replicate')
        assert down.shape == lr.shape, name
        np.testing.assert_array_equal(down, lr, err_msg=name)
        sym = imresize(hr, scale=1 / scale)
        diff = sym != lr
        b = 2  # the antialiased kernel (4 * scale HR px) spans ~2 LR px
        assert not diff[b:-b, b:-b].any(), name
