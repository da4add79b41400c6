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


def test_upscale_is_the_name_and_scale_still_works():
    x = torch.rand(1, 3, 4, 6)
    assert Bicubic(upscale=3)(x).shape == (1, 3, 12, 18)
    assert Bicubic(scale=3)(x).shape == (1, 3, 12, 18)
    assert Bicubic(upscale=2, scale=2).upscale == 2
    assert Bicubic().upscale == 4
    with pytest.raises(ValueError, match='upscale=2 and scale=3 disagree'):
        Bicubic(upscale=2, scale=3)


def test_option_files_pass_upscale_and_check_scale(tmp_path):
    from basicattn.config.options import OptionError, validate_options

    def opt(**network):
        return {
            'name': 'b',
            'scale': 3,
            'model_type': 'SRModel',
            'network_g': {'type': 'Bicubic', **network},
            'datasets': {},
        }

    assert validate_options(opt(), purpose='test')['network_g'] == {'type': 'Bicubic', 'upscale': 3}
    assert validate_options(opt(scale=3), purpose='test')['network_g'] == {
        'type': 'Bicubic',
        'scale': 3,
    }
    with pytest.raises(OptionError, match='network_g.scale: 2 differs from scale: 3'):
        validate_options(opt(scale=2), purpose='test')
