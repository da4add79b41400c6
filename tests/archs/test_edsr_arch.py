"""EDSR specifics beyond the shared arch cases: scales, counts, options."""

import pytest
import torch

from basicattn.registry import ARCHS


def _count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize('scale,count', [(2, 1_369_859), (3, 1_554_499), (4, 1_517_571)])
def test_paper_counts(scale, count):
    assert _count(ARCHS.build(dict(type='EDSR', upscale=scale))) == count


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_tiny_shapes(scale):
    model = ARCHS.build(dict(type='EDSR', num_feat=4, num_block=1, upscale=scale))
    assert model(torch.rand(1, 3, 5, 6)).shape == (1, 3, 5 * scale, 6 * scale)


def test_bicubic_global_skip():
    pytest.importorskip('basicattn.utils.matlab_imresize')
    from basicattn.utils.matlab_imresize import imresize

    kwargs = dict(type='EDSR', num_feat=4, num_block=1, upscale=2)
    plain = ARCHS.build(kwargs)
    skip = ARCHS.build(dict(kwargs, global_skip='bicubic'))
    skip.load_state_dict(plain.state_dict())
    x = torch.rand(1, 3, 6, 5, requires_grad=True)
    out = skip(x)
    # the residual over bicubic carries no mean: plain adds it back, the skip does not
    assert torch.allclose(out, plain(x) - plain.mean + imresize(x, scale=2), atol=1e-6)
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_errors():
    with pytest.raises(ValueError, match='upscale=5'):
        ARCHS.build(dict(type='EDSR', upscale=5))
    with pytest.raises(ValueError, match="global_skip='cubic'"):
        ARCHS.build(dict(type='EDSR', global_skip='cubic'))
    with pytest.raises(ValueError, match='rgb_mean'):
        ARCHS.build(dict(type='EDSR', num_in_ch=1, num_out_ch=1))
