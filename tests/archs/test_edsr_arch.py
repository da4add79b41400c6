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


# -- BasicSR's EDSR weights ------------------------------------------------
def basicsr_edsr_shapes(num_feat=64, num_block=16, upscale=2, num_ch=3):
    """The state_dict of BasicSR's ``EDSR`` (basicsr/archs/edsr_arch.py), by key.

    ``conv_first``, ``body.<i>.conv1/conv2`` (ResidualBlockNoBN),
    ``conv_after_body``, ``upsample.0`` (x2, x3) or ``upsample.0`` and
    ``upsample.2`` (x4: conv, PixelShuffle, conv, PixelShuffle), ``conv_last``;
    its ``mean`` is a plain tensor attribute, so it has no key.
    """
    conv = lambda cout, cin: {'weight': (cout, cin, 3, 3), 'bias': (cout,)}  # noqa: E731
    layers = {'conv_first': conv(num_feat, num_ch)}
    for i in range(num_block):
        layers[f'body.{i}.conv1'] = conv(num_feat, num_feat)
        layers[f'body.{i}.conv2'] = conv(num_feat, num_feat)
    layers['conv_after_body'] = conv(num_feat, num_feat)
    if upscale == 3:
        layers['upsample.0'] = conv(9 * num_feat, num_feat)
    else:
        for j in range(upscale.bit_length() - 1):
            layers[f'upsample.{2 * j}'] = conv(4 * num_feat, num_feat)
    layers['conv_last'] = conv(num_ch, num_feat)
    return {f'{k}.{p}': s for k, ps in layers.items() for p, s in ps.items()}


def _basicsr_forward(w, x, upscale, img_range=255.0, res_scale=1.0):
    """BasicSR's EDSR forward, written from its arithmetic with the weights by key."""
    import torch.nn.functional as F

    conv = lambda name, t: F.conv2d(t, w[f'{name}.weight'], w[f'{name}.bias'], padding=1)  # noqa: E731
    mean = torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1)
    feat = conv('conv_first', (x - mean) * img_range)
    res, i = feat, 0
    while f'body.{i}.conv1.weight' in w:
        res = res + conv(f'body.{i}.conv2', F.relu(conv(f'body.{i}.conv1', res))) * res_scale
        i += 1
    res = conv('conv_after_body', res) + feat
    j = 0
    while f'upsample.{j}.weight' in w:
        res = F.pixel_shuffle(conv(f'upsample.{j}', res), 3 if upscale == 3 else 2)
        j += 2
    return conv('conv_last', res) / img_range + mean


@pytest.mark.parametrize('scale', [2, 4])
def test_state_dict_keys_are_basicsr_edsr_m(scale):
    """EDSR-M (64 features, 16 blocks) has BasicSR's key names and shapes, nothing else."""
    cfg = dict(type='EDSR', num_in_ch=3, num_out_ch=3, num_feat=64, num_block=16, upscale=scale)
    cfg.update(res_scale=1, img_range=255.0, rgb_mean=[0.4488, 0.4371, 0.4040])
    state = ARCHS.build(cfg).state_dict()
    expected = basicsr_edsr_shapes(upscale=scale)
    assert {k: tuple(v.shape) for k, v in state.items()} == expected
    assert ('upsample.2.weight' in state) == (scale == 4) and 'mean' not in state


@pytest.mark.parametrize('param_key', ['params', None])
@pytest.mark.parametrize('scale', [2, 4])
def test_basicsr_params_file_loads_strictly_through_pretrain_path(
    scale, param_key, tmp_path, capsys
):
    """A BasicSR release file, ``{'params': state_dict}``, loads by ``path.pretrain_network_g``
    with ``param_key_g: params`` or without it (found), and ``strict_load_g``; the output is
    BasicSR's arithmetic."""
    import os.path as osp
    from types import SimpleNamespace

    from basicattn.config import read_options
    from basicattn.engine.hooks import LOADED_WEIGHTS, GeneratorLoadHook

    gen = torch.Generator().manual_seed(scale)
    weights = {
        k: torch.randn(s, generator=gen) * 0.1
        for k, s in basicsr_edsr_shapes(num_feat=4, num_block=2, upscale=scale).items()
    }
    path = str(tmp_path / f'EDSR_Mx{scale}_official.pth')
    torch.save({'params': weights}, path)  # the shape of EDSR_Mx2_f64b16_DIV2K_official-*.pth
    fixture = osp.join(
        osp.dirname(osp.dirname(osp.abspath(__file__))),
        'engine',
        'fixtures',
        'basicsr',
        'train_EDSR_Mx2.yml',
    )
    opt = read_options(
        fixture,
        [
            f'scale={scale}',
            f'network_g.upscale={scale}',
            'network_g.num_feat=4',
            'network_g.num_block=2',
            f'path.pretrain_network_g={path}',
        ]
        + ([f'path.param_key_g={param_key}'] if param_key else []),
    )
    assert opt['path']['param_key_g'] == param_key
    net = ARCHS.build(dict(opt['network_g']))
    paths = opt['path']
    assert paths['strict_load_g'] is True
    hook = GeneratorLoadHook(
        paths['pretrain_network_g'], paths['strict_load_g'], paths['param_key_g']
    )
    from mmengine.logging import MessageHub

    hub = MessageHub(f'edsr_pretrain_{scale}_{param_key}')
    runner = SimpleNamespace(iter=0, model=SimpleNamespace(generator=net), message_hub=hub)
    hook.before_train(runner)
    assert hub.get_info(LOADED_WEIGHTS)['path'] == path  # what tools/test.py reports
    x = torch.rand(1, 3, 5, 6, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(x), _basicsr_forward(weights, x, scale))
    assert all(torch.equal(net.state_dict()[k], v) for k, v in weights.items())
    # strict: a key BasicSR's file does not have (or lacks) is refused, naming the file
    from basicattn.errors import CheckpointError

    torch.save({'params': dict(weights, mean=torch.zeros(1, 3, 1, 1))}, path)
    with pytest.raises(CheckpointError, match='do not fit EDSR'):
        hook.before_train(runner)
