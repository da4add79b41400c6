"""DAN: sizes, the GCA/LEA equations, the cross-layer wiring, variants, errors."""

import pytest
import torch
import torch.nn.functional as F

from basicattn.archs.dan_arch import (
    DAN,
    DAN_VARIANTS,
    EDSR_BACKBONE,
    GlobalCrossLayerAttention,
    LEAChannelAttention,
    LocalEnhancedAttention,
)
from basicattn.registry import ARCHS

TINY = dict(num_feat=8, num_block=4, num_res=1, reduction=4, upscale=2)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('upscale, count', [(2, 11_276_105), (3, 11_460_745), (4, 11_423_817)])
def test_default_parameter_counts(upscale, count):
    net = DAN(upscale=upscale)
    assert n_params(net) == count
    # "almost a quarter less parameters" than RCAN's 15.6M (paper IV-B)
    assert 0.70 < count / 15.59e6 < 0.76


def test_parameter_count_by_hand():
    """C=16, r=4, 2 DABs of 1 unit, x2: every weight accounted for."""
    c, h = 16, 4
    conv = lambda cin, cout, k: cin * cout * k * k + cout  # noqa: E731
    unit = 2 * conv(c, c, 3)
    lea = conv(c, h, 1) + 3 * conv(h, h, 3) + conv(h, 1, 1)
    gca = 2 * conv(c, h, 1) + conv(h, c, 1)
    expected = conv(3, c, 3) + 2 * (unit + lea + gca) + conv(c, 4 * c, 3) + conv(c, 3, 3)
    net = DAN(num_feat=c, num_block=2, num_res=1, reduction=4, upscale=2)
    assert n_params(net) == expected
    # GCA-S: W2 maps C/r -> 1; LEA-C: RCAN's C -> C/r -> C
    gca_s = DAN(num_feat=c, num_block=2, num_res=1, reduction=4, upscale=2, gca='position')
    assert n_params(gca_s) == expected - 2 * (conv(h, c, 1) - conv(h, 1, 1))
    lea_c = DAN(num_feat=c, num_block=2, num_res=1, reduction=4, upscale=2, lea='channel')
    assert n_params(lea_c) == expected - 2 * (lea - conv(c, h, 1) - conv(h, c, 1))


def test_registered_and_shapes():
    assert ARCHS.get('DAN') is DAN
    torch.manual_seed(0)
    for upscale in (2, 3, 4):
        net = DAN(**dict(TINY, upscale=upscale)).eval()
        out = net(torch.rand(2, 3, 7, 10))
        assert out.shape == (2, 3, 7 * upscale, 10 * upscale)
    with pytest.raises(ValueError, match='upscale=5'):
        DAN(**dict(TINY, upscale=5))


def test_gca_equations():
    torch.manual_seed(0)
    gca = GlobalCrossLayerAttention(8, 2, 'channel', 'relu')
    x_n, x_m = torch.randn(2, 8, 5, 6), torch.randn(2, 8, 5, 6)
    g = gca.proj_n(x_n) * gca.proj_m(x_m)  # W1 x_n . W0 x_m
    z = F.relu(g.mean(dim=(2, 3), keepdim=True))  # h(.), ReLU
    expected = x_n * torch.sigmoid(gca.expand(z))  # eq. 6-7
    torch.testing.assert_close(gca(x_n, x_m), expected)
    assert gca.expand.out_channels == 8
    literal = GlobalCrossLayerAttention(8, 2, 'channel', 'none')
    g = literal.proj_n(x_n) * literal.proj_m(x_m)
    torch.testing.assert_close(
        literal(x_n, x_m), x_n * torch.sigmoid(literal.expand(g.mean(dim=(2, 3), keepdim=True)))
    )
    pos = GlobalCrossLayerAttention(8, 2, 'position', 'relu')  # GCA-S, eq. 10
    g = pos.proj_n(x_n) * pos.proj_m(x_m)
    torch.testing.assert_close(pos(x_n, x_m), x_n * torch.sigmoid(pos.expand(F.relu(g))))
    assert pos.expand.out_channels == 1


def test_lea_equations():
    torch.manual_seed(0)
    lea = LocalEnhancedAttention(8, 2, dilations=(1, 2, 4))
    x = torch.randn(1, 8, 11, 9)
    y = lea.reduce(x)  # W_alpha
    convs = [m for m in lea.atrous if isinstance(m, torch.nn.Conv2d)]
    assert [c.dilation for c in convs] == [(1, 1), (2, 2), (4, 4)]
    for conv in convs:  # f_d
        y = F.relu(
            F.conv2d(y, conv.weight, conv.bias, padding=conv.dilation, dilation=conv.dilation)
        )
    expected = x * torch.sigmoid(lea.expand(y))  # W_beta, eq. 9
    torch.testing.assert_close(lea(x), expected)
    assert lea.expand.out_channels == 1
    ca = LEAChannelAttention(8, 2)  # LEA-C
    z = F.relu(ca.reduce(x.mean(dim=(2, 3), keepdim=True)))
    torch.testing.assert_close(ca(x), x * torch.sigmoid(ca.expand(z)))


def _trace(net, x):
    """Run ``net``; return the shallow feature, per-block (out, kept) and
    the x_n / x_m each block's GCA received."""
    shallow, blocks, gca_in = [], [], []
    hooks = [net.conv_first.register_forward_hook(lambda m, i, o: shallow.append(o))]
    for block in net.blocks:
        hooks.append(block.register_forward_hook(lambda m, i, o: blocks.append(o)))
        hooks.append(block.gca.register_forward_hook(lambda m, i, o: gca_in.append(i)))
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    return shallow[0], blocks, gca_in


@pytest.mark.parametrize('distance', [1, 2, 3])
def test_cross_layer_wiring(distance):
    torch.manual_seed(0)
    net = DAN(**dict(TINY, num_block=5, distance=distance))
    shallow, blocks, gca_in = _trace(net, torch.rand(1, 3, 6, 6))
    for n in range(1, 6):
        x_n, x_m = gca_in[n - 1]
        assert torch.equal(x_n, blocks[n - 1][1])  # GCA acts on LEA output
        m = n - distance
        expected = shallow if m <= 0 else blocks[m - 1][1]
        assert torch.equal(x_m, expected), (n, m)
        assert net.cross_layer_index(n) == max(m, 0)


def test_cross_layer_options():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 6, 6)
    net = DAN(**dict(TINY, distance=2, early_source='self'))
    shallow, blocks, gca_in = _trace(net, x)
    assert torch.equal(gca_in[0][1], gca_in[0][0])  # n=1 < d: its own X^
    assert torch.equal(gca_in[1][1], shallow)  # n=2=d: m=0, F_S
    assert torch.equal(gca_in[2][1], blocks[0][1])
    net = DAN(**dict(TINY, distance=2, cross_feature='output'))
    shallow, blocks, gca_in = _trace(net, x)
    assert torch.equal(gca_in[2][1], blocks[0][0])  # block 1's output
    assert torch.equal(gca_in[3][1], blocks[1][0])
    net = DAN(**dict(TINY, distance=0))  # GCA-0
    _, _, gca_in = _trace(net, x)
    assert all(torch.equal(a, b) for a, b in gca_in)


def test_block_is_residual_and_long_skip():
    torch.manual_seed(0)
    net = DAN(**dict(TINY, gca='none', lea='none'))  # the backbone
    block = net.blocks[0]
    x = torch.randn(1, 8, 5, 5)
    unit = block.units[0]
    expected = x + unit.conv2(F.relu(unit.conv1(x)))
    out, kept = block(x)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(kept, expected - x, atol=1e-6, rtol=1e-5)
    assert net.conv_after_body is None
    assert DAN(**dict(TINY, long_skip=True)).conv_after_body is not None


@pytest.mark.parametrize('variant', sorted(DAN_VARIANTS))
def test_variants_forward_and_backward(variant):
    torch.manual_seed(0)
    net = DAN(**dict(DAN_VARIANTS[variant], **TINY))  # the EDSR rows at a tiny size too
    x = torch.rand(1, 3, 6, 7)
    out = net(x)
    assert out.shape == (1, 3, 12, 14) and torch.isfinite(out).all()
    out.mean().backward()
    assert all(p.grad is not None for p in net.parameters())
    kw = DAN_VARIANTS[variant]
    block = net.blocks[0]
    assert (block.gca is None) == (kw.get('gca') == 'none')
    assert (block.lea is None) == (kw.get('lea') == 'none')
    if kw.get('lea') == 'channel':
        assert isinstance(block.lea, LEAChannelAttention)
    if kw.get('gca') == 'position':
        assert block.gca.expand.out_channels == 1


def test_global_skip_bicubic():
    from basicattn.utils.matlab_imresize import imresize

    torch.manual_seed(0)
    net = DAN(**dict(TINY, global_skip='bicubic'))
    plain = DAN(**dict(TINY))
    plain.load_state_dict(net.state_dict())
    x = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        # the residual over bicubic carries no mean: plain adds it back, the skip does not
        torch.testing.assert_close(net(x), plain(x) - plain.mean + imresize(x, scale=2))


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(gca='chanel'), "gca='chanel'"),
        (dict(lea='spatial_c'), "lea='spatial_c'"),
        (dict(cross_feature='input'), 'cross_feature'),
        (dict(early_source='first'), 'early_source'),
        (dict(gca_act='gelu'), 'gca_act'),
        (dict(reduction=16), 'reduction=16 leaves no channel'),
        (dict(distance=-1), 'distance must be an int >= 0'),
        (dict(num_res=0), 'num_res must be an int >= 1'),
        (dict(lea_dilations=(1, 0, 2)), 'lea_dilations'),
        (dict(rgb_mean=(0.5,)), 'rgb_mean has 1 values'),
        (dict(global_skip='bilinear'), 'global_skip'),
        (dict(res_scale=0), 'res_scale must be a number > 0'),
    ],
)
def test_errors_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message.replace('(', r'\(')):
        DAN(**dict(TINY, **kwargs))


def test_edsr_backbone_without_attention_is_edsr():
    """Table 5's EDSR rows: ``DAN(**DAN_VARIANTS['EDSR'])`` computes EDSR
    (``res_scale=0.1``, trunk conv and long skip) with EDSR's weights renamed."""
    from basicattn.archs.edsr_arch import EDSR

    torch.manual_seed(0)
    small = dict(num_feat=8, num_block=2, upscale=3)  # reduction only sizes the attentions
    edsr = EDSR(res_scale=0.1, **small)
    dan = DAN(**dict(DAN_VARIANTS['EDSR'], reduction=4, **small))
    renamed = {
        k.replace('body.', 'blocks.').replace('.conv', '.units.0.conv')
        if k.startswith('body.')
        else k: v
        for k, v in edsr.state_dict().items()
    }
    dan.load_state_dict(renamed)  # strict: the same tensors
    x = torch.rand(1, 3, 5, 6)
    # DAB forms the residual as U(x) - x, EDSR adds it directly: equal up to rounding.
    torch.testing.assert_close(dan(x), edsr(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    'variant, count',
    [
        ('EDSR', 43_680_003),  # = EDSR(num_feat=256, num_block=32, upscale=3), "43M"
        ('EDSR+GCA', 44_082_435),
        ('EDSR+LEA', 44_034_851),
        ('EDSR+GCA+LEA', 44_437_283),
    ],
)
def test_edsr_backbone_parameter_counts(variant, count):
    from basicattn.archs.edsr_arch import EDSR

    with torch.device('meta'):  # counts only, no memory
        net = DAN(upscale=3, **DAN_VARIANTS[variant])
        edsr = EDSR(num_feat=256, num_block=32, res_scale=0.1, upscale=3)
    assert n_params(net) == count
    assert n_params(edsr) == 43_680_003
    # the paper: EDSR has "more than 3 times the number of parameters" of DAN
    assert count / 11_460_745 > 3
    assert EDSR_BACKBONE['res_scale'] == 0.1 and net.blocks[0].res_scale == 0.1
