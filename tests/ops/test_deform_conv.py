"""DCNv2 (modulated deformable conv) in plain PyTorch: values, gradients,
layout, modules and optional compiled backends."""

import pytest
import torch
import torch.nn.functional as F
from deform_reference import ref_modulated_deform_conv2d

from basicattn.ops import (
    ModulatedDeformConv2d,
    ModulatedDeformConv2dPack,
    dcn_backend_status,
    modulated_deform_conv2d,
    set_default_dcn_backend,
)
from basicattn.ops.op_utils import conv_output_size

# (C, O, H, W, kernel, stride, padding, dilation, groups, deform_groups)
CONFIGS = [
    pytest.param(4, 6, 8, 8, (3, 3), 1, 1, 1, 1, 1, id='3x3'),
    pytest.param(4, 6, 9, 7, (3, 3), 2, 1, 1, 1, 1, id='stride2'),
    pytest.param(4, 6, 9, 9, (3, 3), 1, 2, 2, 1, 1, id='dilation2'),
    pytest.param(4, 6, 7, 8, (3, 3), 1, 1, 1, 2, 1, id='groups2'),
    pytest.param(4, 6, 6, 5, (3, 3), 1, 1, 1, 1, 2, id='deform_groups2'),
    pytest.param(6, 4, 7, 9, (3, 2), (1, 2), (1, 0), (2, 1), 2, 3, id='nonsquare-mixed'),
    pytest.param(4, 4, 5, 6, (1, 3), 1, (0, 1), 1, 4, 4, id='1x3-depthwise'),
]


def _maps(
    b, c, o, h, w, kernel, stride, padding, dilation, groups, dg, dtype=torch.float64, seed=0
):
    gen = torch.Generator().manual_seed(seed)

    def pair(v):
        return (v, v) if isinstance(v, int) else v

    ho, wo = conv_output_size((h, w), kernel, pair(stride), pair(padding), pair(dilation))
    k = kernel[0] * kernel[1]
    x = torch.randn(b, c, h, w, generator=gen, dtype=dtype)
    weight = torch.randn(o, c // groups, *kernel, generator=gen, dtype=dtype)
    bias = torch.randn(o, generator=gen, dtype=dtype)
    offset = torch.randn(b, 2 * dg * k, ho, wo, generator=gen, dtype=dtype) * 1.5
    mask = torch.rand(b, dg * k, ho, wo, generator=gen, dtype=dtype)
    return x, weight, bias, offset, mask


@pytest.mark.parametrize('c,o,h,w,kernel,stride,padding,dilation,groups,dg', CONFIGS)
def test_zero_offset_unit_mask_equals_conv2d(
    c, o, h, w, kernel, stride, padding, dilation, groups, dg
):
    x, weight, bias, offset, mask = _maps(
        2, c, o, h, w, kernel, stride, padding, dilation, groups, dg, dtype=torch.float32
    )
    offset.zero_()
    mask.fill_(1)
    out = modulated_deform_conv2d(
        x, offset, mask, weight, bias, stride, padding, dilation, groups, dg
    )
    ref = F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    # No mask at all (DCNv1) is the same.
    out_v1 = modulated_deform_conv2d(
        x, offset, None, weight, bias, stride, padding, dilation, groups, dg
    )
    torch.testing.assert_close(out_v1, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    'c,o,h,w,kernel,stride,padding,dilation,groups,dg', CONFIGS[1:3] + CONFIGS[4:6]
)
def test_random_offsets_match_slow_reference(
    c, o, h, w, kernel, stride, padding, dilation, groups, dg
):
    x, weight, bias, offset, mask = _maps(
        1, c, o, h, w, kernel, stride, padding, dilation, groups, dg
    )
    # Some samples far outside (all four neighbours out -> 0), some straddling
    # the border (partial neighbours), some inside.
    offset[:, ::5] *= 6
    offset[:, 1::7] += 20
    out = modulated_deform_conv2d(
        x, offset, mask, weight, bias, stride, padding, dilation, groups, dg
    )
    ref = ref_modulated_deform_conv2d(
        x, offset, mask, weight, bias, _pair(stride), _pair(padding), _pair(dilation), groups, dg
    )
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def test_border_samples_are_partial_and_far_samples_zero():
    x = torch.ones(1, 1, 4, 4, dtype=torch.float64)
    weight = torch.ones(1, 1, 1, 1, dtype=torch.float64)
    offset = torch.zeros(1, 2, 4, 4, dtype=torch.float64)
    offset[0, 0, 0, 0] = -0.25  # y = -0.25: top neighbours outside
    offset[0, 1, 0, 1] = -1.0  # x = 0: exactly on the column -> full value
    offset[0, 0, 3, 3] = 0.5  # y = 3.5: bottom neighbours outside
    offset[0, 0, 1, 1] = -1.0  # y = 0
    offset[0, 0, 2, 2] = -3.0  # y = -1: all neighbours outside
    offset[0, 1, 2, 0] = 4.0  # x = 4 = W: all neighbours outside
    out = modulated_deform_conv2d(x, offset, None, weight)[0, 0]
    assert out[0, 0] == pytest.approx(0.75)
    assert out[0, 1] == pytest.approx(1.0)
    assert out[3, 3] == pytest.approx(0.5)
    assert out[1, 1] == pytest.approx(1.0)
    assert out[2, 2] == 0
    assert out[2, 0] == 0


def test_offset_layout_is_interleaved_dy_dx_per_tap_and_group():
    """Moving one tap of one deformable group only moves that tap."""
    x = torch.arange(2 * 6 * 6, dtype=torch.float64).view(1, 2, 6, 6)
    weight = torch.zeros(2, 1, 3, 3, dtype=torch.float64)
    weight[:, 0, 0, 2] = 1  # tap k = 2 (row 0, col 2) only
    offset = torch.zeros(1, 2 * 2 * 9, 6, 6, dtype=torch.float64)
    offset[0, 1 * 18 + 2 * 2] = 1.0  # group 1, tap 2, dy = +1
    offset[0, 0 * 18 + 2 * 2 + 1] = -2.0  # group 0, tap 2, dx = -2
    out = modulated_deform_conv2d(x, offset, None, weight, padding=1, groups=2, deform_groups=2)
    padded = F.pad(x, (3, 3, 3, 3))  # tap (0, 2) of pixel (y, x) is (y-1, x+1)
    # group 0 (channel 0): dx = -2 -> (y - 1, x - 1)
    torch.testing.assert_close(out[0, 0], padded[0, 0, 2:8, 2:8])
    # group 1 (channel 1): dy = +1 -> (y, x + 1)
    torch.testing.assert_close(out[0, 1], padded[0, 1, 3:9, 4:10])


@pytest.mark.parametrize('h,w', [(5, 6), (4, 8)])
def test_offset_gradient_at_integer_positions_is_forward_difference(h, w):
    """As mmcv: d/dy at an integer y is I(y + 1) - I(y) (zero outside), also
    when H, W are not powers of two."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 1, h, w, generator=gen)
    weight = torch.zeros(1, 1, 3, 3)
    weight[0, 0, 1, 1] = 1
    offset = torch.zeros(1, 18, h, w, requires_grad=True)
    mask = torch.ones(1, 9, h, w)
    out = modulated_deform_conv2d(x, offset, mask, weight, padding=1)
    out.sum().backward()
    img = F.pad(x[0, 0], (0, 1, 0, 1))
    grad_dy = offset.grad[0, 2 * 4]
    grad_dx = offset.grad[0, 2 * 4 + 1]
    torch.testing.assert_close(grad_dy, img[1:, :w] - img[:h, :w])
    torch.testing.assert_close(grad_dx, img[:h, 1:] - img[:h, :w])


@pytest.mark.parametrize('c,h,w,fast', [(2, 3, 3, False), (4, 4, 5, True)])
def test_gradcheck_input_offset_mask_weight_bias(c, h, w, fast):
    x, weight, bias, offset, mask = _maps(1, c, 2, h, w, (3, 3), 1, 1, 1, 2, 2, seed=3)
    offset[:, ::3] += 2.3  # some samples partly or fully outside the image
    tensors = [t.requires_grad_() for t in (x, offset, mask, weight, bias)]

    def fn(x, offset, mask, weight, bias):
        return modulated_deform_conv2d(x, offset, mask, weight, bias, 1, 1, 1, 2, 2)

    assert torch.autograd.gradcheck(fn, tensors, eps=1e-6, atol=1e-6, fast_mode=fast)


def test_gradcheck_stride_dilation_nonsquare():
    x, weight, bias, offset, mask = _maps(1, 2, 2, 5, 6, (2, 3), 2, (1, 2), (2, 1), 1, 1, seed=4)
    tensors = [t.requires_grad_() for t in (x, offset, mask, weight)]

    def fn(x, offset, mask, weight):
        return modulated_deform_conv2d(x, offset, mask, weight, None, 2, (1, 2), (2, 1))

    assert torch.autograd.gradcheck(fn, tensors, eps=1e-6, atol=1e-6)


def test_module_matches_functional_and_mmcv_state_dict():
    torch.manual_seed(0)
    layer = ModulatedDeformConv2d(4, 6, 3, padding=1, groups=2, deform_groups=2)
    assert set(layer.state_dict()) == {'weight', 'bias'}
    assert layer.weight.shape == (6, 2, 3, 3)
    assert torch.all(layer.bias == 0)
    bound = 1 / (4 * 9) ** 0.5
    assert layer.weight.abs().max() <= bound
    x = torch.randn(2, 4, 5, 5)
    offset = torch.randn(2, 36, 5, 5)
    mask = torch.rand(2, 18, 5, 5)
    torch.testing.assert_close(
        layer(x, offset, mask),
        modulated_deform_conv2d(x, offset, mask, layer.weight, layer.bias, 1, 1, 1, 2, 2),
    )
    no_bias = ModulatedDeformConv2d(4, 6, (3, 1), bias=False)
    assert no_bias.bias is None and set(no_bias.state_dict()) == {'weight'}


def test_pack_starts_as_half_masked_conv_and_predicts_mmcv_layout():
    torch.manual_seed(0)
    pack = ModulatedDeformConv2dPack(4, 8, 3, padding=1, deform_groups=2)
    assert set(pack.state_dict()) == {'weight', 'bias', 'conv_offset.weight', 'conv_offset.bias'}
    assert pack.conv_offset.weight.shape == (2 * 3 * 9, 4, 3, 3)
    assert torch.all(pack.conv_offset.weight == 0)
    x = torch.randn(1, 4, 6, 6)
    with torch.no_grad():
        pack.bias.normal_()
        ref = F.conv2d(x, pack.weight, None, padding=1) * 0.5 + pack.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(pack(x), ref, rtol=1e-5, atol=1e-5)

    # offset = cat(o1, o2), mask = sigmoid(m) of conv_offset's three chunks
    with torch.no_grad():
        pack.conv_offset.bias.normal_()
    offset, mask = pack.offset_and_mask(x)
    raw = pack.conv_offset(x)
    torch.testing.assert_close(offset, raw[:, :36])
    torch.testing.assert_close(mask, torch.sigmoid(raw[:, 36:]))
    torch.testing.assert_close(
        pack(x), modulated_deform_conv2d(x, offset, mask, pack.weight, pack.bias, 1, 1, 1, 1, 2)
    )


def test_pack_loads_old_conv_offset_mask_keys():
    pack = ModulatedDeformConv2dPack(2, 2, 3, padding=1)
    state = {k: torch.randn_like(v) for k, v in pack.state_dict().items()}
    old = dict(state)
    old['conv_offset_mask.weight'] = old.pop('conv_offset.weight')
    old['conv_offset_mask.bias'] = old.pop('conv_offset.bias')
    fresh = ModulatedDeformConv2dPack(2, 2, 3, padding=1)
    fresh.load_state_dict(old)  # no version metadata -> treated as old
    torch.testing.assert_close(fresh.conv_offset.weight, state['conv_offset.weight'])


@pytest.mark.parametrize(
    'kwargs,match',
    [
        (dict(offset_shape=(1, 17, 4, 4)), 'offset must have shape'),
        (dict(mask_shape=(1, 8, 4, 4)), 'mask must have shape'),
        (dict(groups=3), 'divisible by groups=3'),
        (dict(deform_groups=3), 'divisible by deform_groups=3'),
        (dict(stride=0), 'stride must be >= 1'),
        (dict(backend='cuda'), 'backend must be one of'),
    ],
)
def test_bad_arguments_raise_clear_value_errors(kwargs, match):
    x = torch.randn(1, 4, 4, 4)
    offset = torch.zeros(kwargs.pop('offset_shape', (1, 18, 4, 4)))
    mask = torch.ones(kwargs.pop('mask_shape', (1, 9, 4, 4)))
    weight = torch.randn(6, 4, 3, 3)
    args = dict(stride=1, padding=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        modulated_deform_conv2d(x, offset, mask, weight, **args)


def test_auto_backend_falls_back_to_torch_with_a_warning(monkeypatch):
    usable, _ = dcn_backend_status('torchvision')
    if usable:
        pytest.skip('torchvision deform_conv2d works here; nothing to fall back from')
    x, weight, bias, offset, mask = _maps(1, 2, 2, 4, 4, (3, 3), 1, 1, 1, 1, 1, dtype=torch.float32)
    ref = modulated_deform_conv2d(x, offset, mask, weight, bias, padding=1, backend='torch')
    monkeypatch.setenv('BASICATTN_DCN_BACKEND', 'torchvision')
    try:
        with pytest.warns(UserWarning, match='using the torch backend'):
            out = modulated_deform_conv2d(x, offset, mask, weight, bias, padding=1)
        torch.testing.assert_close(out, ref)
        set_default_dcn_backend('torch')  # wins over the environment
        modulated_deform_conv2d(x, offset, mask, weight, bias, padding=1)
    finally:
        set_default_dcn_backend(None)
    with pytest.raises(RuntimeError, match='not usable'):
        modulated_deform_conv2d(x, offset, mask, weight, bias, padding=1, backend='torchvision')


@pytest.mark.parametrize('backend', ['mmcv', 'torchvision'])
def test_agrees_with_compiled_backend(backend):
    usable, reason = dcn_backend_status(backend)
    if not usable:
        pytest.skip(f'{backend} deformable conv is not usable here: {reason}')
    x, weight, bias, offset, mask = _maps(
        2, 4, 6, 7, 6, (3, 3), 1, 1, 1, 2, 2, dtype=torch.float32, seed=5
    )
    offset[:, ::4] *= 4
    outs, grads = [], []
    for name in ('torch', backend):
        ts = [t.clone().requires_grad_() for t in (x, offset, mask, weight, bias)]
        out = modulated_deform_conv2d(*ts[:3], ts[3], ts[4], 1, 1, 1, 2, 2, backend=name)
        out.backward(torch.ones_like(out))
        outs.append(out.detach())
        grads.append([t.grad for t in ts])
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-4, atol=1e-4)
    for ours, theirs in zip(*grads):
        torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=1e-3)


def test_non_contiguous_maps_and_half_precision_inputs():
    x, weight, bias, offset, mask = _maps(
        2, 4, 4, 6, 6, (3, 3), 1, 1, 1, 1, 2, dtype=torch.float32, seed=6
    )
    ref = modulated_deform_conv2d(x, offset, mask, weight, bias, 1, 1, 1, 1, 2)
    # channels-last input, offsets / mask as strided slices
    big_offset = torch.stack((offset, -offset), dim=-1).flatten(-2)[..., ::2]
    assert not big_offset.is_contiguous()
    out = modulated_deform_conv2d(
        x.contiguous(memory_format=torch.channels_last),
        big_offset,
        mask.transpose(2, 3).contiguous().transpose(2, 3),
        weight,
        bias,
        1,
        1,
        1,
        1,
        2,
    )
    torch.testing.assert_close(out, ref)
    # bfloat16 input: computed in float32, returned as bfloat16
    out = modulated_deform_conv2d(
        x.bfloat16(), offset.bfloat16(), mask, weight, bias, 1, 1, 1, 1, 2
    )
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=0.1)


def test_pack_under_cpu_autocast_trains():
    torch.manual_seed(0)
    pack = ModulatedDeformConv2dPack(4, 4, 3, padding=1, deform_groups=2)
    x = torch.randn(1, 4, 5, 5)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = pack(x)
    out.float().sum().backward()
    assert pack.weight.grad.dtype == torch.float32
    assert pack.conv_offset.weight.grad.abs().sum() > 0


def test_no_grad_and_retain_graph_paths_agree():
    x, weight, bias, offset, mask = _maps(1, 4, 4, 5, 5, (3, 3), 1, 1, 1, 1, 2, seed=7)
    with torch.no_grad():
        fast = modulated_deform_conv2d(x, offset, mask, weight, bias, 1, 1, 1, 1, 2)
    ts = [t.requires_grad_() for t in (x, offset, mask, weight)]
    out = modulated_deform_conv2d(*ts[:3], ts[3], bias, 1, 1, 1, 1, 2)
    torch.testing.assert_close(out.detach(), fast)
    out.sum().backward(retain_graph=True)
    first = [t.grad.clone() for t in ts]
    out.sum().backward()  # the second pass recomputes the freed columns
    for t, g in zip(ts, first):
        torch.testing.assert_close(t.grad, 2 * g)
