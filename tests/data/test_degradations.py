"""BI / BD / DN degradations: hand-computed values, seeding, the dataset and
tools/make_lr.py."""

import importlib
import math
import os
import os.path as osp
import sys
import zlib

import numpy as np
import pytest
from conftest import REPO_ROOT

from basicattn.data.degradation_transform import (
    BDDegradation,
    BIDegradation,
    DNDegradation,
    build_degradation,
    gaussian_kernel,
    imfilter_replicate,
)
from basicattn.data.paired_image_dataset import PairedImageDataset
from basicattn.registry import TRANSFORMS
from basicattn.utils.img_util import imread, imwrite, mod_crop
from basicattn.utils.matlab_imresize import imresize

# fspecial('gaussian', 7, 1.6) = a(x) a(y) / S^2 with a(x) = exp(-x^2 / 5.12)
A = [math.exp(-x * x / 5.12) for x in range(4)]  # a(0) .. a(3)
S = A[0] + 2 * (A[1] + A[2] + A[3])  # 3.905665...


def test_gaussian_kernel_is_fspecial():
    k = gaussian_kernel(7, 1.6)
    assert k.shape == (7, 7) and math.isclose(k.sum(), 1.0, rel_tol=1e-12)
    assert math.isclose(k[3, 3], 1 / S**2, rel_tol=1e-12)  # 0.065556
    assert math.isclose(k[0, 0], A[3] ** 2 / S**2, rel_tol=1e-12)
    assert math.isclose(k[3, 5], A[2] / S**2, rel_tol=1e-12)
    assert math.isclose(S, 3.905665, rel_tol=1e-6)
    # MATLAB zeroes entries below eps * max: a tiny sigma is a delta
    delta = gaussian_kernel(7, 0.1)
    assert delta[3, 3] == 1 and delta.sum() == 1
    # even sizes sit on the half-integer grid -0.5, 0.5
    assert np.allclose(gaussian_kernel(2, 1e3), 0.25)


def test_bd_on_an_impulse_by_hand():
    """A 255 impulse at the centre of a 9x9 image, x3.

    LR pixel (i, j) is the blurred pixel (3i + 1, 3j + 1): the impulse's own
    cell gets 255 / S^2 = 16.72 -> 17; the 4-neighbour cells sit 3 pixels
    away along one axis: 255 a(3) / S^2 = 2.88 -> 3; the diagonal cells
    3 + 3 away: 255 a(3)^2 / S^2 = 0.497 -> 0 (rounding checked too).
    """
    img = np.zeros((9, 9), np.uint8)
    img[4, 4] = 255
    assert 255 / S**2 == pytest.approx(16.7167, abs=1e-4)
    assert 255 * A[3] / S**2 == pytest.approx(2.8823, abs=1e-4)
    assert 255 * A[3] ** 2 / S**2 == pytest.approx(0.4970, abs=1e-4)
    lr = BDDegradation(scale=3).degrade(img)
    assert lr.dtype == np.uint8
    np.testing.assert_array_equal(lr, [[0, 3, 0], [3, 17, 3], [0, 3, 0]])
    lr3 = BDDegradation(scale=3).degrade(np.dstack([img, img // 5, 0 * img]))
    assert lr3.shape == (3, 3, 3) and lr3[1, 1].tolist() == [17, 3, 0]
    # float input: no rounding
    lr_f = BDDegradation(scale=3).degrade(img.astype(np.float64) / 255)
    assert lr_f[1, 1] == pytest.approx(1 / S**2, rel=1e-12)
    assert lr_f[0, 0] == pytest.approx(A[3] ** 2 / S**2, rel=1e-12)


def test_bd_replicates_the_border():
    """Impulse in the corner (0, 0) of a 6x6 image.

    imfilter 'replicate' repeats the corner over the 3 padded rows/columns:
    blurred(0, 0) = 255 (a0 + a1 + a2 + a3)^2 / S^2 = 100.57 -> 101;
    blurred(1, 1) = 255 (a1 + a2 + a3)^2 / S^2 = 35.28 -> 35 = LR(0, 0).
    """
    img = np.zeros((6, 6), np.uint8)
    img[0, 0] = 255
    blurred = imfilter_replicate(img, gaussian_kernel(7, 1.6))
    assert 255 * (sum(A) / S) ** 2 == pytest.approx(100.574, abs=1e-3)
    assert blurred[0, 0] == 101
    assert 255 * ((A[1] + A[2] + A[3]) / S) ** 2 == pytest.approx(35.28, abs=1e-2)
    assert BDDegradation(scale=3).degrade(img)[0, 0] == 35
    # zero padding would have given 255 a0^2 / S^2 = 16.7 at the corner
    assert blurred[0, 0] != 17


def test_bd_sampling_offset_and_even_kernels():
    hr = np.arange(12 * 12, dtype=np.uint8).reshape(12, 12)
    for scale, off in ((2, 0), (3, 1), (4, 1)):
        lr = BDDegradation(scale=scale, sigma=0.1).degrade(hr)  # delta blur
        np.testing.assert_array_equal(lr, hr[off::scale, off::scale])
    # an even kernel: MATLAB's centre is floor((n + 1) / 2), so a 2x2 box
    # averages pixel (i, j) with its right / lower neighbours
    img = np.array([[0, 4], [8, 12]], np.float64)
    out = imfilter_replicate(img, np.full((2, 2), 0.25))
    np.testing.assert_allclose(out, [[6, 8], [10, 12]])


def test_imfilter_two_dimensional_path_agrees():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (10, 13, 3)).astype(np.uint8)
    k = gaussian_kernel(5, 1.0)
    k_2d = k.copy()
    k_2d[0, 0] += 1e-3  # no longer rank one: the tap-by-tap path
    k_2d /= k_2d.sum()
    sep = imfilter_replicate(img.astype(float), k)
    full = imfilter_replicate(img.astype(float), k_2d)
    assert np.abs(sep - full).max() < 1.0
    padded = np.pad(img.astype(float), ((2, 2), (2, 2), (0, 0)), mode='edge')
    ref = sum(k_2d[i, j] * padded[i : i + 10, j : j + 13] for i in range(5) for j in range(5))
    np.testing.assert_allclose(full, ref, rtol=1e-12)


def test_bi_is_matlab_bicubic():
    rng = np.random.default_rng(1)
    hr = rng.integers(0, 256, (12, 9, 3)).astype(np.uint8)
    np.testing.assert_array_equal(BIDegradation(3).degrade(hr), imresize(hr, scale=1 / 3))
    np.testing.assert_array_equal(
        BIDegradation(3, padding='replicate').degrade(hr),
        imresize(hr, scale=1 / 3, padding='replicate'),
    )
    flat = np.full((6, 6, 3), 77, np.uint8)
    np.testing.assert_array_equal(BIDegradation(3).degrade(flat), np.full((2, 2, 3), 77))
    # By hand: shrinking x3, output pixel i samples input 3i + 1 (0-based)
    # with the cubic kernel stretched 3x, weights cubic(d / 3) / 3 for
    # offsets d (they sum to one: three interleaved partitions of unity).
    # An impulse at input (4, 4) reaches output (1, 1) with weight
    # (cubic(0) / 3)^2 = 1/9 and the other outputs, 3 pixels away, with
    # cubic(1) = 0.
    impulse = np.zeros((9, 9))
    impulse[4, 4] = 1.0
    expected = np.zeros((3, 3))
    expected[1, 1] = 1 / 9
    np.testing.assert_allclose(BIDegradation(3).degrade(impulse), expected, rtol=0, atol=1e-15)


def test_bi_reproduces_the_matlab_set5_files(testdata):
    root = testdata('Set5', 'X3')
    bi = BIDegradation(3, padding='replicate')
    for name in ('img_001', 'img_003'):
        hr = imread(osp.join(root, 'HR', f'{name}.png'))
        lr = imread(osp.join(root, 'LR', f'{name}.png'))
        np.testing.assert_array_equal(bi.degrade(hr), lr)


def test_dn_noise_by_hand():
    hr = np.full((300, 300, 3), 128, np.uint8)
    dn = DNDegradation(scale=3)
    lr = dn.degrade(hr, seed=11, key='sub/img')
    noise = np.random.default_rng([11, zlib.crc32(b'sub/img')]).standard_normal((100, 100, 3))
    expected = np.floor(np.clip(128 + 30 * noise, 0, 255) + 0.5)
    np.testing.assert_array_equal(lr, expected.astype(np.uint8))
    diff = lr.astype(np.float64) - 128
    assert abs(diff.mean()) < 0.7 and 29.0 < diff.std() < 31.0
    # reproducible; another seed or key gives other noise
    np.testing.assert_array_equal(dn.degrade(hr, seed=11, key='sub/img'), lr)
    assert not np.array_equal(dn.degrade(hr, seed=12, key='sub/img'), lr)
    assert not np.array_equal(dn.degrade(hr, seed=11, key='other'), lr)
    # a fixed seed wins over the per-sample one
    fixed = DNDegradation(scale=3, seed=11)
    np.testing.assert_array_equal(fixed.degrade(hr, seed=99, key='sub/img'), lr)
    # noise 0 is BI; the noise is added to the rounded BI image
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (9, 12, 3)).astype(np.uint8)
    np.testing.assert_array_equal(
        DNDegradation(3, noise_level=0).degrade(img, seed=0), BIDegradation(3).degrade(img)
    )
    bi = BIDegradation(3).degrade(img).astype(np.float64)
    noise = np.random.default_rng([5, 0]).standard_normal(bi.shape)
    np.testing.assert_array_equal(
        dn.degrade(img, seed=5), np.floor(np.clip(bi + 30 * noise, 0, 255) + 0.5).astype(np.uint8)
    )
    # float images: noise / 255, no rounding or clipping
    out = dn.degrade(img / 255.0, seed=5)
    ref = imresize(img / 255.0, scale=1 / 3) + 30 / 255 * noise
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12)


def test_dict_interface_and_registry():
    for name in ('BIDegradation', 'BDDegradation', 'DNDegradation'):
        assert TRANSFORMS.get(name) is not None
    deg = TRANSFORMS.build(dict(type='DNDegradation', scale=2, seed=3))
    results = deg(dict(gt=np.full((4, 6, 3), 50, np.uint8), key='k'))
    assert results['lq'].shape == (2, 3, 3)
    np.testing.assert_array_equal(
        results['lq'], deg.degrade(np.full((4, 6, 3), 50, np.uint8), key='k')
    )
    assert repr(build_degradation('BD', 3)) == 'BDDegradation(scale=3, kernel_size=7, sigma=1.6)'


@pytest.mark.parametrize(
    'cfg, error, message',
    [
        ('XY', ValueError, "degradation 'XY' is not supported; supported: BI, BD, DN"),
        ('bd', ValueError, "Did you mean 'BD'"),
        (dict(sigma=1.6), ValueError, "needs a 'type' key"),
        (
            dict(type='BDDegradatoin'),
            ValueError,
            "'BDDegradatoin' is not a registered degradation.*Did you mean 'BDDegradation'",
        ),
        (
            dict(type='BD', sigmaa=2),
            ValueError,
            "degradation.sigmaa: unknown argument of BDDegradation.*'sigma'",
        ),
        (dict(type='BD', scale=4), ValueError, 'scale=4 differs from the dataset scale 3'),
        (dict(type='DN', noise_level=-1), ValueError, 'noise_level'),
        (dict(type='DN', seed=-2), ValueError, 'seed'),
        (dict(type='BI', padding='zero'), ValueError, 'padding'),
        (dict(type='BD', sigma=0), ValueError, 'sigma'),
        (3, TypeError, 'must be one of BI, BD, DN'),
    ],
)
def test_build_errors(cfg, error, message):
    with pytest.raises(error, match=message):
        build_degradation(cfg, 3)


def test_image_errors():
    with pytest.raises(ValueError, match='10x9 is not a positive multiple of scale 3.*mod_crop'):
        BDDegradation(3).degrade(np.zeros((10, 9, 3), np.uint8))
    with pytest.raises(TypeError, match='uint8 or float'):
        BIDegradation(3).degrade(np.zeros((9, 9), np.int32))
    with pytest.raises(TypeError, match="dict with a 'gt'"):
        BIDegradation(3)(np.zeros((9, 9), np.uint8))


# -- PairedImageDataset --------------------------------------------------
@pytest.fixture
def hr_folder(tmp_path):
    rng = np.random.default_rng(3)
    folder = tmp_path / 'HR'
    for i in range(3):
        imwrite(str(folder / f'im{i}.png'), rng.integers(0, 256, (20, 25, 3)).astype(np.uint8))
    return str(folder)


def test_dataset_bd_and_dict_cfg(hr_folder):
    gt = mod_crop(imread(osp.join(hr_folder, 'im1.png')), 3)
    for degradation in (
        'BD',
        dict(type='BDDegradation'),
        dict(type='BD', sigma=1.6, kernel_size=7),
    ):
        ds = PairedImageDataset(hr_folder, scale=3, degradation=degradation)
        item = ds[1]
        lq = (item['lq'].numpy().transpose(1, 2, 0) * 255).round()
        np.testing.assert_array_equal(lq, BDDegradation(3).degrade(gt))
        assert '(BD x3)' in item['lq_path']
    wide = PairedImageDataset(hr_folder, scale=3, degradation=dict(type='BD', sigma=3.0))
    assert wide._degradation.sigma == 3.0
    with pytest.raises(ValueError, match='differs from the dataset scale 3'):
        PairedImageDataset(hr_folder, scale=3, degradation=dict(type='BD', scale=2))
    with pytest.raises(ValueError, match="'XY' is not supported; supported: BI, BD, DN"):
        PairedImageDataset(hr_folder, scale=3, degradation='XY')


def test_dataset_dn_noise_comes_from_the_item_seed(hr_folder):
    ds = PairedImageDataset(hr_folder, scale=3, degradation='DN')
    gt = mod_crop(imread(osp.join(hr_folder, 'im2.png')), 3)
    a = ds[2, 1234]
    lq = np.round(a['lq'].numpy().transpose(1, 2, 0) * 255)
    np.testing.assert_array_equal(lq, DNDegradation(3).degrade(gt, seed=1234, key='im2'))
    assert np.array_equal(ds[2, 1234]['lq'], a['lq'])
    assert not np.array_equal(ds[2, 1235]['lq'], a['lq'])
    # with a crop and flips the patch is cut from the same noisy image
    crop = PairedImageDataset(
        hr_folder, scale=3, degradation='DN', gt_size=9, use_hflip=True, use_rot=True
    )
    b, c = crop[2, 77], crop[2, 77]
    assert b['lq'].shape == (3, 3, 3)
    assert np.array_equal(b['lq'], c['lq'])
    full = DNDegradation(3).degrade(gt, seed=77, key='im2')
    patch = np.round(b['lq'].numpy().transpose(1, 2, 0) * 255)
    windows = [
        full[i : i + 3, j : j + 3]
        for i in range(full.shape[0] - 2)
        for j in range(full.shape[1] - 2)
    ]
    variants = [np.rot90(w, k) for w in windows for k in range(4)]
    variants += [v[:, ::-1] for v in variants]
    assert any(np.array_equal(patch, v) for v in variants)
    # a fixed seed ignores the item seed
    fixed = PairedImageDataset(hr_folder, scale=3, degradation=dict(type='DN', seed=5))
    assert np.array_equal(fixed[0, 1]['lq'], fixed[0, 2]['lq'])


# -- tools/make_lr.py ----------------------------------------------------
def _make_lr():
    tools = osp.join(REPO_ROOT, 'tools')
    if tools not in sys.path:
        sys.path.insert(0, tools)
    return importlib.import_module('make_lr')


def test_make_lr_tool(hr_folder, tmp_path, capsys):
    make_lr = _make_lr()
    out, hr_out = str(tmp_path / 'LR_BD'), str(tmp_path / 'HR_x3')
    assert (
        make_lr.main([hr_folder, out, '--degradation', 'BD', '--scale', '3', '--hr-out', hr_out])
        == 0
    )
    assert capsys.readouterr().out.strip().splitlines()[-1] == out
    for i in range(3):
        hr = imread(osp.join(hr_folder, f'im{i}.png'))
        cropped = imread(osp.join(hr_out, f'im{i}.png'))
        np.testing.assert_array_equal(cropped, mod_crop(hr, 3))
        assert cropped.shape == (18, 24, 3)
        np.testing.assert_array_equal(
            imread(osp.join(out, f'im{i}.png')), BDDegradation(3).degrade(cropped)
        )
    # DN with --seed equals the dataset's on-the-fly DN with that seed
    dn_out = str(tmp_path / 'LR_DN')
    assert (
        make_lr.main(
            [
                hr_folder,
                dn_out,
                '--degradation',
                'DN',
                '--scale',
                '3',
                '--seed',
                '4',
                '--filename-tmpl',
                '{}x3',
            ]
        )
        == 0
    )
    written = PairedImageDataset(hr_out, dn_out, scale=3, filename_tmpl='{}x3')
    on_the_fly = PairedImageDataset(hr_out, scale=3, degradation=dict(type='DN', seed=4))
    for i in range(3):
        assert np.array_equal(written[i]['lq'], on_the_fly[i]['lq'])
    # never overwrites silently
    assert make_lr.main([hr_folder, out, '--degradation', 'BD', '--scale', '3']) == 2
    assert '--overwrite' in capsys.readouterr().err
    assert make_lr.main([hr_folder, out, '--degradation', 'BI', '--scale', '3', '--overwrite']) == 0
    np.testing.assert_array_equal(
        imread(osp.join(out, 'im0.png')),
        imresize(mod_crop(imread(osp.join(hr_folder, 'im0.png')), 3), scale=1 / 3),
    )
    assert make_lr.main([str(tmp_path / 'nope'), out, '--degradation', 'BI', '--scale', '3']) == 2
    with pytest.raises(SystemExit):
        make_lr.main([hr_folder, out, '--degradation', 'BX', '--scale', '3'])


def test_make_lr_failure_leaves_outputs_untouched(tmp_path, capsys, rng):
    make_lr = _make_lr()
    src = tmp_path / 'HR'
    for i in range(3):
        imwrite(str(src / f'im{i}.png'), (rng.random((12, 12, 3)) * 255).astype(np.uint8))
    bad = str(src / 'im1.png')
    with open(bad, 'wb') as f:
        f.write(b'broken')
    out = tmp_path / 'LR'
    assert (
        make_lr.main(
            [
                str(src),
                str(out),
                '--degradation',
                'BI',
                '--scale',
                '2',
                '--hr-out',
                str(tmp_path / 'HRc'),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith('error: ') and bad in err
    assert sorted(os.listdir(tmp_path)) == ['HR']  # nothing, not even temps
    out.mkdir()
    (out / 'keep.txt').write_text('mine')
    assert make_lr.main([str(src), str(out), '--degradation', 'BI', '--scale', '2']) == 2
    assert sorted(os.listdir(out)) == ['keep.txt']
    assert sorted(os.listdir(tmp_path)) == ['HR', 'LR']
