"""Tests of basicattn.data.transforms: paired crop and dihedral augment."""

import numpy as np
import pytest

from basicattn.data.transforms import augment, paired_random_crop


def _coords(h, w):
    """Image whose pixel (y, x) holds (y, x, 0): position is readable."""
    ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing='ij')
    return np.stack([ys, xs, np.zeros_like(ys)], axis=2).astype(np.int32)


@pytest.mark.parametrize('scale', [1, 2, 3, 4])
def test_crop_correspondence(scale):
    lq = _coords(10, 13)
    gt = np.repeat(np.repeat(lq, scale, axis=0), scale, axis=1)  # nearest up
    rng = np.random.default_rng(1)
    for _ in range(10):
        gt_patch, lq_patch = paired_random_crop(gt, lq, 4 * scale, scale, rng)
        assert lq_patch.shape == (4, 4, 3)
        assert gt_patch.shape == (4 * scale, 4 * scale, 3)
        up = np.repeat(np.repeat(lq_patch, scale, axis=0), scale, axis=1)
        np.testing.assert_array_equal(up, gt_patch)
        assert gt_patch.flags['C_CONTIGUOUS']
        assert lq_patch.flags['C_CONTIGUOUS']


def test_crop_lists_same_position_and_determinism():
    gts = [_coords(8, 8), _coords(8, 8) + 1]
    lqs = [_coords(4, 4), _coords(4, 4) * 2]
    out_a = paired_random_crop(gts, lqs, 4, 2, np.random.default_rng(5))
    out_b = paired_random_crop(gts, lqs, 4, 2, np.random.default_rng(5))
    assert isinstance(out_a[0], list) and len(out_a[1]) == 2
    for a, b in zip(out_a[0] + out_a[1], out_b[0] + out_b[1]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(out_a[0][1], out_a[0][0] + 1)
    np.testing.assert_array_equal(out_a[1][1], out_a[1][0] * 2)


def test_crop_errors_name_path_and_sizes():
    gt, lq = np.zeros((16, 16, 3)), np.zeros((8, 7, 3))
    with pytest.raises(ValueError, match=r'16x16 .*8x7.*\(x/gt\.png\)'):
        paired_random_crop(gt, lq, 4, 2, None, gt_path='x/gt.png')
    with pytest.raises(ValueError, match=r'smaller than the LQ patch.*a\.png'):
        paired_random_crop(gt, np.zeros((8, 8, 3)), 18, 2, None, 'a.png')
    with pytest.raises(ValueError, match='multiple of scale'):
        paired_random_crop(gt, np.zeros((8, 8, 3)), 5, 2, None)


def test_augment_same_transform_for_all():
    base = _coords(5, 7)
    for seed in range(20):
        a, b, c = augment([base, base + 100, base[..., 0]], rng=np.random.default_rng(seed))
        np.testing.assert_array_equal(b, a + 100)
        np.testing.assert_array_equal(c, a[..., 0])
        assert a.flags['C_CONTIGUOUS'] and c.flags['C_CONTIGUOUS']
    single = augment(base, rng=np.random.default_rng(3))
    assert isinstance(single, np.ndarray)


def _dihedral(img):
    rots = [np.rot90(img, k) for k in range(4)]
    return rots + [r[:, ::-1] for r in rots]


def test_augment_reaches_all_8_variants():
    base = _coords(4, 4)
    variants = _dihedral(base)
    seen = set()
    for seed in range(64):
        out = augment(base, rng=np.random.default_rng(seed))
        index = [i for i, v in enumerate(variants) if np.array_equal(out, v)]
        assert len(index) == 1  # always one of the square's symmetries
        seen.add(index[0])
    assert seen == set(range(8))


def test_augment_flags():
    base = _coords(3, 5)
    for seed in range(16):
        rng = np.random.default_rng(seed)
        assert np.array_equal(augment(base, False, False, rng), base)
        out = augment(base, hflip=True, rotation=False, rng=rng)
        assert np.array_equal(out, base) or np.array_equal(out, base[:, ::-1])
