"""Nearest-neighbour enlargement and side-by-side joining of the comparison image."""

import numpy as np

from basicattn.visualization.comparison_image import side_by_side, upsample_nearest


def test_upsample_nearest_integer_and_fractional_scales():
    img = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert np.array_equal(upsample_nearest(img, (4, 6)), img.repeat(2, 0).repeat(2, 1))
    # 2 -> 3 rows: output row y shows input row y * 2 // 3 = 0, 0, 1
    assert np.array_equal(upsample_nearest(img, (3, 3)), img[[0, 0, 1]])


def test_side_by_side_pads_and_expands_grey():
    grey = np.full((2, 2), 7, np.uint8)
    rgb = np.zeros((3, 1, 3), np.uint8)
    out = side_by_side([grey, rgb], gap=2, fill=200)
    assert out.shape == (3, 2 + 2 + 1, 3)
    assert (out[:2, :2] == 7).all() and (out[2, :2] == 200).all()  # padded below
    assert (out[:, 2:4] == 200).all() and (out[:, 4] == 0).all()
