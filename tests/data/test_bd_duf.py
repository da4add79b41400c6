"""BD-DUF, the video community's blur-down: pinned by hand and against independent code.

The hand values come from the closed form: DUF's kernel is the outer product of
the sampled Gaussian ``exp(-x^2 / (2 sigma^2))``, ``|x| <= int(4 sigma + 0.5)``,
normalised; LR pixel ``(i, j)`` is centred on HR pixel ``(s i, s j)``. The
independent implementation is the recipe of DUF's and BasicSR's Python code:
``scipy.ndimage.gaussian_filter`` of an impulse, a mirrored pad, a strided 2-D
correlation written as explicit loops, the 2-pixel crop.
"""

import importlib
import os.path as osp
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT

from basicattn.data.degradation_transform import (
    DEGRADATION_NAMES,
    BDDUFDegradation,
    build_degradation,
)
from basicattn.utils.img_util import imread, imwrite, mod_crop


def gaussian_1d(sigma):
    """The closed form of one axis of DUF's kernel, on -6 .. 6."""
    radius = min(6, int(4 * sigma + 0.5))
    x = np.arange(-6, 7, dtype=np.float64)
    g = np.where(np.abs(x) <= radius, np.exp(-(x**2) / (2 * sigma**2)), 0.0)
    return g / g.sum()


def reference_bd_duf(img, scale):
    """DUF's recipe with scipy's kernel and a loop over LR pixels (float64, one channel)."""
    from scipy.ndimage import gaussian_filter

    impulse = np.zeros((13, 13))
    impulse[6, 6] = 1.0
    kernel = gaussian_filter(impulse, 0.4 * scale)
    pad = 6 + 2 * scale
    padded = np.pad(img.astype(np.float64), pad, mode='reflect')
    rows = (padded.shape[0] - 13) // scale + 1
    cols = (padded.shape[1] - 13) // scale + 1
    full = np.empty((rows, cols))
    for i in range(rows):
        for j in range(cols):
            window = padded[i * scale : i * scale + 13, j * scale : j * scale + 13]
            full[i, j] = (window * kernel).sum()
    return full[2:-2, 2:-2]


def test_kernel_is_the_truncated_sampled_gaussian():
    for scale in (2, 3, 4):
        deg = BDDUFDegradation(scale)
        assert deg.sigma == pytest.approx(0.4 * scale)
        g = gaussian_1d(0.4 * scale)
        np.testing.assert_allclose(deg.kernel, np.outer(g, g), rtol=0, atol=1e-15)
        assert deg.kernel.shape == (13, 13)
        assert deg.kernel.sum() == pytest.approx(1.0, abs=1e-12)
    # x2: radius 3, so only the middle 7x7 taps are non-zero; x4: the whole 13x13
    assert np.count_nonzero(BDDUFDegradation(2).kernel) == 49
    assert np.count_nonzero(BDDUFDegradation(4).kernel) == 169
    # the centre tap at x4, by hand: 1 / (sum_{|x| <= 6} exp(-x^2 / 5.12))^2
    total = sum(np.exp(-(x**2) / 5.12) for x in range(-6, 7))
    assert BDDUFDegradation(4).kernel[6, 6] == pytest.approx(1 / total**2, rel=1e-12)


def test_impulse_gives_the_kernel_at_x4():
    img = np.zeros((16, 16), np.float64)
    img[8, 8] = 255.0
    lr = BDDUFDegradation(4).degrade(img)
    g = gaussian_1d(1.6)
    # LR pixel (i, j) is centred on HR (4i, 4j): it sees the impulse at offset 8 - 4i
    expected = np.zeros((4, 4))
    for i in range(4):
        for j in range(4):
            a, b = 8 - 4 * i + 6, 8 - 4 * j + 6
            if 0 <= a < 13 and 0 <= b < 13:
                expected[i, j] = 255.0 * g[a] * g[b]
    np.testing.assert_allclose(lr, expected, rtol=0, atol=1e-12)
    assert expected[2, 2] > 15 and expected[0, 0] == 0  # the hand value is not trivial
    as_uint8 = BDDUFDegradation(4).degrade(img.astype(np.uint8))
    assert as_uint8.dtype == np.uint8
    np.testing.assert_array_equal(as_uint8, np.floor(expected + 0.5).astype(np.uint8))


def test_ramp_is_kept_inside_and_mirrored_at_the_border():
    img = np.tile(np.arange(32, dtype=np.float64), (16, 1))  # X[r, c] = c
    lr = BDDUFDegradation(4).degrade(img)
    g = gaussian_1d(1.6)
    # LR column j is centred on c = 4j and reads c - 6 .. c + 6: inside the image
    # (j = 2 .. 6) a symmetric kernel keeps the ramp
    for j in range(2, 7):
        np.testing.assert_allclose(lr[:, j], 4.0 * j, atol=1e-12)
    # j = 0: the mirror turns c into |c|
    left = sum(g[6 + x] * abs(x) for x in range(-6, 7))
    np.testing.assert_allclose(lr[:, 0], left, atol=1e-12)
    # j = 7 (c = 28): c = 32, 33, 34 are mirrored to 30, 29, 28, i.e. 2 (x - 3) too low
    right = 28.0 - sum(g[6 + x] * 2 * (x - 3) for x in range(4, 7))
    np.testing.assert_allclose(lr[:, 7], right, atol=1e-12)
    constant = BDDUFDegradation(4).degrade(np.full((16, 16), 77, np.uint8))
    np.testing.assert_array_equal(constant, 77)


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_matches_the_reference_on_a_random_image(scale):
    rng = np.random.default_rng(scale)
    img = rng.integers(0, 256, (6 * scale, 5 * scale, 3)).astype(np.uint8)
    deg = build_degradation('BD-DUF', scale)
    lr_float = deg.degrade(img.astype(np.float64))
    assert lr_float.shape == (6, 5, 3)
    for c in range(3):
        np.testing.assert_allclose(
            lr_float[..., c], reference_bd_duf(img[..., c], scale), rtol=0, atol=1e-10
        )
    lr = deg.degrade(img)
    assert lr.dtype == np.uint8
    np.testing.assert_array_equal(lr, np.floor(np.clip(lr_float, 0, 255) + 0.5))


def test_basicsr_torch_recipe_agrees():
    torch = pytest.importorskip('torch')
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    img = rng.random((32, 24, 3))
    impulse = np.zeros((13, 13))
    impulse[6, 6] = 1.0
    kernel = torch.from_numpy(gaussian_filter(impulse, 1.6))[None, None]
    x = torch.from_numpy(img).permute(2, 0, 1)[:, None]
    x = torch.nn.functional.pad(x, (14, 14, 14, 14), mode='reflect')
    y = torch.nn.functional.conv2d(x, kernel, stride=4)[:, :, 2:-2, 2:-2]
    np.testing.assert_allclose(
        BDDUFDegradation(4).degrade(img), y[:, 0].permute(1, 2, 0).numpy(), atol=1e-12
    )


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_size_relation(scale):
    deg = BDDUFDegradation(scale)
    for h, w in ((scale, scale), (4 * scale, 7 * scale), (2 * scale, 11 * scale)):
        assert deg.degrade(np.zeros((h, w, 3), np.uint8)).shape == (h // scale, w // scale, 3)
    with pytest.raises(ValueError, match='not a positive multiple of scale'):
        deg.degrade(np.zeros((4 * scale + 1, 4 * scale), np.uint8))


def test_names_and_errors():
    assert DEGRADATION_NAMES['BD-DUF'] == 'BDDUFDegradation'
    assert repr(build_degradation('BD-DUF', 4)) == 'BDDUFDegradation(scale=4, sigma=1.6)'
    assert build_degradation(dict(type='BD-DUF', sigma=2.0), 4).sigma == 2.0
    with pytest.raises(ValueError, match="Did you mean 'BD-DUF'"):
        build_degradation('bd-duf', 4)
    with pytest.raises(ValueError, match='sigma'):
        build_degradation(dict(type='BD-DUF', sigma=-1), 4)
    with pytest.raises(ValueError, match='kernel_size: unknown argument of BDDUFDegradation'):
        build_degradation(dict(type='BD-DUF', kernel_size=7), 4)


def _make_lr():
    tools = osp.join(REPO_ROOT, 'tools')
    if tools not in sys.path:
        sys.path.insert(0, tools)
    return importlib.import_module('make_lr')


def test_make_lr_choices_are_the_registered_names():
    assert sorted(_make_lr().DEGRADATIONS) == sorted(DEGRADATION_NAMES)


def test_make_lr_bd_duf(tmp_path, capsys):
    make_lr = _make_lr()
    rng = np.random.default_rng(1)
    src = tmp_path / 'GT' / 'clip'
    for i in range(2):
        imwrite(str(src / f'{i:08d}.png'), rng.integers(0, 256, (18, 21, 3)).astype(np.uint8))
    out = str(tmp_path / 'BDx4')
    assert make_lr.main([str(tmp_path / 'GT'), out, '--degradation', 'BD-DUF', '--scale', '4']) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == out
    for i in range(2):
        hr = mod_crop(imread(str(src / f'{i:08d}.png')), 4)
        lr = imread(osp.join(out, 'clip', f'{i:08d}.png'))
        assert lr.shape == (4, 5, 3)
        np.testing.assert_array_equal(lr, BDDUFDegradation(4).degrade(hr))
    wide = str(tmp_path / 'wide')
    argv = [str(tmp_path / 'GT'), wide, '--degradation', 'BD-DUF', '--scale', '4']
    assert make_lr.main(argv + ['--sigma', '2.5']) == 0
    hr = mod_crop(imread(str(src / '00000000.png')), 4)
    np.testing.assert_array_equal(
        imread(osp.join(wide, 'clip', '00000000.png')), BDDUFDegradation(4, 2.5).degrade(hr)
    )
    capsys.readouterr()
    assert make_lr.main(argv + ['--kernel-size', '7', '--overwrite']) == 2
    assert capsys.readouterr().err.startswith('error: --kernel-size: BD-DUF')
    assert make_lr.main(argv + ['--sigma', '0', '--overwrite']) == 2
    err = capsys.readouterr().err
    assert err.startswith('error:') and 'sigma' in err and 'Traceback' not in err


def test_video_dataset_makes_bd_duf_on_the_fly(tmp_path):
    from basicattn.data.video_test_dataset import VideoTestDataset

    rng = np.random.default_rng(2)
    frames = [rng.integers(0, 256, (16, 20, 3)).astype(np.uint8) for _ in range(3)]
    for i, frame in enumerate(frames):
        imwrite(str(tmp_path / 'GT' / 'walk' / f'{i:08d}.png'), frame)
    ds = VideoTestDataset(str(tmp_path / 'GT'), num_frame=3, degradation='BD-DUF')
    item = ds[1]
    assert '(BD-DUF x4)' in item['lq_path']
    lq = (item['lq'].numpy().transpose(0, 2, 3, 1) * 255).round().astype(np.uint8)
    for t in range(3):
        np.testing.assert_array_equal(lq[t], BDDUFDegradation(4).degrade(frames[t]))
