"""The Bicubic baseline on images and on video windows (centre frame)."""

import pytest
import torch

from basicattn.archs.bicubic_arch import Bicubic
from basicattn.utils.matlab_imresize import imresize


def test_video_window_upsamples_the_centre_frame():
    x = torch.rand(2, 5, 3, 6, 8)
    out = Bicubic(scale=4)(x)
    assert out.shape == (2, 3, 24, 32)
    assert torch.equal(out, imresize(x[:, 2], scale=4))


def test_bad_input_shape_is_named():
    with pytest.raises(ValueError, match=r'got shape \(3, 6, 8\)'):
        Bicubic(scale=2)(torch.rand(3, 6, 8))
