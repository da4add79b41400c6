"""Deformable kernel convolution: tap grid, values against a slow reference,
gradients and the module."""

import pytest
import torch
import torch.nn.functional as F
from deform_reference import ref_deform_kernel_conv2d

from basicattn.ops import (
    DeformableKernelConv2d,
    deform_kernel_conv2d,
    modulated_deform_conv2d,
    sample_scope_kernel,
    scope_tap_positions,
)


def test_centered_grid_puts_3x3_taps_on_2x2_blocks_of_a_4x4_scope():
    assert scope_tap_positions(3, 4) == ((0.5, 1.5, 2.5), (0.5, 1.5, 2.5))
    scope = torch.arange(16, dtype=torch.float64).view(1, 1, 4, 4)
    kernel = sample_scope_kernel(scope, 3)[0, 0]
    blocks = F.avg_pool2d(scope, 2, stride=1)[0, 0]
    torch.testing.assert_close(kernel, blocks)
    # scope == kernel size: the taps are the cells themselves
    assert scope_tap_positions((3, 5), (3, 5)) == ((0, 1, 2), (0, 1, 2, 3, 4))
    torch.testing.assert_close(sample_scope_kernel(scope, 4), scope)


def test_stretched_grid_spans_the_scope():
    assert scope_tap_positions(3, 4, 'stretched') == ((0, 1.5, 3), (0, 1.5, 3))
    scope = torch.arange(16, dtype=torch.float64).view(1, 1, 4, 4)
    kernel = sample_scope_kernel(scope, 3, 'stretched')[0, 0]
    assert kernel[0, 0] == 0 and kernel[2, 2] == 15 and kernel[0, 2] == 3
    assert kernel[1, 1] == scope[0, 0, 1:3, 1:3].mean()
    assert kernel[0, 1] == (1 + 2) / 2
    with pytest.raises(ValueError, match='tap_grid must be one of'):
        scope_tap_positions(3, 4, 'scaled')


# (C, O, H, W, stride, groups, deform_groups, kernel_offset_groups, grid)
CONFIGS = [
    pytest.param(2, 3, 4, 5, 1, 1, 1, 2, 'centered', id='dense-G2'),
    pytest.param(4, 4, 5, 5, 2, 4, 2, 2, 'stretched', id='depthwise-stride2-dg2'),
    pytest.param(4, 2, 4, 4, 1, 2, 4, 1, 'centered', id='groups2-dg4'),
]


def _data(c, o, h, w, stride, groups, dg, kg, scope=(4, 4), kernel=(3, 3), seed=0):
    gen = torch.Generator().manual_seed(seed)
    ho = (h + 2 - kernel[0]) // stride + 1
    wo = (w + 2 - kernel[1]) // stride + 1
    k = kernel[0] * kernel[1]
    f64 = dict(generator=gen, dtype=torch.float64)
    return dict(
        input=torch.randn(1, c, h, w, **f64),
        weight=torch.randn(o, c // groups, *scope, **f64),
        bias=torch.randn(o, **f64),
        offset=torch.randn(1, 2 * dg * k, ho, wo, **f64) * 1.5,
        mask=torch.rand(1, dg * k, ho, wo, **f64),
        # scope-space offsets, some taps pushed partly or fully off the scope
        kernel_offset=torch.randn(1, 2 * kg * k, ho, wo, **f64)
        * torch.tensor([0.7, 3.0], dtype=torch.float64).repeat(kg * k)[None, :, None, None],
    )


@pytest.mark.parametrize('c,o,h,w,stride,groups,dg,kg,grid', CONFIGS)
@pytest.mark.parametrize('with_kernel_offset', [True, False])
def test_matches_slow_reference(c, o, h, w, stride, groups, dg, kg, grid, with_kernel_offset):
    d = _data(c, o, h, w, stride, groups, dg, kg)
    if not with_kernel_offset:
        d['kernel_offset'] = None
    rows, cols = scope_tap_positions(3, 4, grid)
    out = deform_kernel_conv2d(
        **d,
        kernel_size=3,
        stride=stride,
        padding=1,
        groups=groups,
        deform_groups=dg,
        kernel_offset_groups=kg,
        tap_grid=grid,
    )
    ref = ref_deform_kernel_conv2d(
        d['input'],
        d['weight'],
        d['bias'],
        d['offset'],
        d['mask'],
        d['kernel_offset'],
        (3, 3),
        (stride, stride),
        (1, 1),
        (1, 1),
        groups,
        dg,
        kg,
        rows,
        cols,
    )
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)


def test_zero_kernel_offsets_equal_fixed_taps_and_scope_equal_kernel_is_dcn():
    d = _data(4, 4, 5, 6, 1, 2, 2, 2, seed=1)
    fixed = dict(d, kernel_offset=None)
    zeros = dict(d, kernel_offset=torch.zeros_like(d['kernel_offset']))
    args = dict(padding=1, groups=2, deform_groups=2, kernel_offset_groups=2)
    torch.testing.assert_close(
        deform_kernel_conv2d(**zeros, **args), deform_kernel_conv2d(**fixed, **args)
    )
    # A 3x3 scope read on the centred grid is the kernel itself: plain DCNv2.
    d3 = _data(4, 4, 5, 6, 1, 2, 2, 2, scope=(3, 3), seed=2)
    d3['kernel_offset'] = torch.zeros_like(d3['kernel_offset'])
    torch.testing.assert_close(
        deform_kernel_conv2d(**d3, **args),
        modulated_deform_conv2d(
            d3['input'], d3['offset'], d3['mask'], d3['weight'], d3['bias'], 1, 1, 1, 2, 2
        ),
    )


def test_gradcheck_all_inputs():
    d = _data(2, 2, 3, 3, 1, 2, 2, 2, seed=3)
    names = ['input', 'weight', 'bias', 'offset', 'mask', 'kernel_offset']
    tensors = [d[n].requires_grad_() for n in names]

    def fn(*ts):
        return deform_kernel_conv2d(
            **dict(zip(names, ts)), padding=1, groups=2, deform_groups=2, kernel_offset_groups=2
        )

    assert torch.autograd.gradcheck(fn, tensors, eps=1e-6, atol=1e-6)


def test_module_starts_as_plain_conv_and_learns_both_offsets():
    torch.manual_seed(0)
    layer = DeformableKernelConv2d(
        4, 6, scope_size=4, groups=2, deform_groups=2, kernel_offset_groups=2
    )
    assert set(layer.state_dict()) == {
        'weight',
        'bias',
        'conv_offset.weight',
        'conv_offset.bias',
        'conv_kernel_offset.weight',
        'conv_kernel_offset.bias',
    }
    assert layer.weight.shape == (6, 2, 4, 4)
    assert layer.conv_offset.out_channels == 2 * 2 * 9
    assert layer.conv_kernel_offset.out_channels == 2 * 2 * 9
    x = torch.randn(2, 4, 6, 7)
    out = layer(x)
    ref = F.conv2d(x, layer.effective_kernel(), layer.bias, padding=1, groups=2)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    out.square().mean().backward()
    assert layer.conv_offset.weight.grad.abs().sum() > 0
    assert layer.conv_kernel_offset.weight.grad.abs().sum() > 0
    assert layer.weight.grad.abs().sum() > 0


def test_module_variants():
    x = torch.randn(1, 4, 5, 5)
    fixed = DeformableKernelConv2d(4, 4, groups=4, kernel_offsets=False)
    assert fixed.conv_kernel_offset is None
    assert fixed(x).shape == (1, 4, 5, 5)
    plain = DeformableKernelConv2d(
        4, 4, image_offsets=False, kernel_offsets=False, tap_grid='stretched', bias=False
    )
    torch.testing.assert_close(plain(x), F.conv2d(x, plain.effective_kernel(), padding=1))
    modulated = DeformableKernelConv2d(4, 8, stride=2, modulated=True, deform_groups=4)
    assert modulated.conv_offset.out_channels == 3 * 4 * 9
    with torch.no_grad():  # mask starts at sigmoid(0) = 0.5
        torch.testing.assert_close(
            modulated(x),
            F.conv2d(x, modulated.effective_kernel(), None, 2, 1) * 0.5
            + modulated.bias.view(1, -1, 1, 1),
        )
    assert 'scope_size=(4, 4)' in repr(modulated)


@pytest.mark.parametrize(
    'kwargs,match',
    [
        (dict(scope_size=2), 'scope_size=.* must be at least kernel_size'),
        (dict(tap_grid='scaled'), 'tap_grid must be one of'),
        (dict(modulated=True, image_offsets=False), 'needs image_offsets'),
        (dict(kernel_offset_groups=3), 'divisible by kernel_offset_groups=3'),
    ],
)
def test_module_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DeformableKernelConv2d(4, 4, **kwargs)


def test_functional_bad_kernel_offset_shape():
    d = _data(2, 2, 4, 4, 1, 1, 1, 1)
    d['kernel_offset'] = d['kernel_offset'][:, :9]
    with pytest.raises(ValueError, match='kernel_offset must have shape'):
        deform_kernel_conv2d(**d)
