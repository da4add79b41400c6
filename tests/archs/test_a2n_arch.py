"""A2N-specific checks (the generic build/forward/backward test is in
test_all_archs.py, driven by arch_cases.py)."""

import pytest
import torch

from basicattn.archs.a2n_arch import A2N
from basicattn.registry import ARCHS


@pytest.mark.parametrize(
    'upscale,non_attention,count',
    [
        (2, '3x3', 1_036_443),
        (3, '3x3', 1_036_443),
        (4, '3x3', 1_047_459),
        (2, '1x1', 831_643),
        (3, '1x1', 831_643),
        (4, '1x1', 842_659),
    ],
)
def test_paper_parameter_counts(upscale, non_attention, count):
    model = ARCHS.build(dict(type='A2N', upscale=upscale, non_attention=non_attention))
    assert sum(p.numel() for p in model.parameters()) == count


def tiny(**kwargs):
    torch.manual_seed(0)
    cfg = dict(num_feat=8, unf=6, num_block=2, upscale=2)
    cfg.update(kwargs)
    return A2N(**cfg).eval()


@pytest.mark.parametrize('upscale', [2, 3, 4])
def test_shapes_and_batch_independence(upscale):
    model = tiny(upscale=upscale)
    x = torch.rand(3, 3, 6, 5)
    with torch.no_grad():
        y = model(x)
        y1 = model(x[1:2])
    assert y.shape == (3, 3, 6 * upscale, 5 * upscale)
    # The dropout weights are per image: batching must not mix images.
    torch.testing.assert_close(y[1:2], y1, rtol=1e-5, atol=1e-6)


def test_img_range_is_a_pure_rescale():
    model = tiny(img_range=255.0)
    ref = tiny(img_range=1.0)
    ref.load_state_dict(model.state_dict())
    x = torch.rand(1, 3, 7, 7)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x * 255.0) / 255.0, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('upscale,img_range', [(2, 1.0), (3, 255.0), (4, 255.0)])
def test_inference_path_is_bit_identical(upscale, img_range):
    """Without autograd the gates and sums run in place: same bits."""
    model = tiny(upscale=upscale, img_range=img_range)
    x = torch.rand(2, 3, 7, 6)
    x_copy = x.clone()
    out_grad = model(x)  # autograd on: out-of-place path
    with torch.no_grad():
        out_nograd = model(x)
    with torch.inference_mode():
        out_inference = model(x)
    assert torch.equal(x, x_copy)  # the input is never overwritten
    assert torch.equal(out_grad.detach(), out_nograd)
    assert torch.equal(out_nograd, out_inference)
    out_grad.mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_channels_last_input():
    model = tiny()
    x = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        ref = model(x)
        out = model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    'kwargs,match',
    [
        (dict(upscale=8), 'upscale must be 2, 3 or 4'),
        (dict(non_attention='5x5'), 'non_attention must be one of'),
        (dict(num_in_ch=1, num_out_ch=3), 'num_in_ch'),
        (dict(img_range=0), 'img_range'),
        (dict(num_feat=3, reduction=4), 'reduction=4'),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny(**kwargs)


def test_bad_input_shape():
    with pytest.raises(ValueError, match=r'shape \(3, 4, 4\)'):
        tiny()(torch.rand(3, 4, 4))


@pytest.mark.parametrize(
    'key,value,match',
    [
        ('fusion', 'sum', 'fusion: A2N expects Literal'),
        ('attention', 'cbam', 'attention: A2N expects Literal'),
        ('non_attention', '5x5', 'non_attention: A2N expects Literal'),
        ('channel_reduction', 0, 'channel_reduction: A2N: must be >= 1'),
    ],
)
def test_option_validator_names_the_bad_key(key, value, match):
    from basicattn.archs.build import build_network
    from basicattn.errors import OptionError

    with pytest.raises(OptionError, match=match):
        build_network({'type': 'A2N', key: value}, 'x.yml: network_g')
