"""Tests of SRModel: modes, tiled inference, self-ensemble, training step."""

import pytest
import torch
from mmengine.optim import OptimWrapper
from torch import nn

from basicattn.models.sr_model import SRModel
from basicattn.models.tiled_inference import dihedral_transform, inverse_dihedral_transform
from basicattn.registry import MODELS

TINY_EDSR = dict(type='EDSR', num_feat=8, num_block=1, upscale=2)
PIXEL = {'pixel': {'type': 'L1Loss', 'loss_weight': 1.0}}


class PointwiseShuffle(nn.Module):
    """1x1 conv + pixel shuffle: receptive field of one LR pixel."""

    def __init__(self, scale=2):
        super().__init__()
        self.conv = nn.Conv2d(3, 3 * scale * scale, 1)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x):
        return self.shuffle(self.conv(x))


class LocalNet(nn.Module):
    """Two 3x3 convs + pixel shuffle: reaches 2 LR pixels from the centre."""

    def __init__(self, scale=3):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, 1, 1),
            nn.ReLU(),
            nn.Conv2d(8, 3 * scale * scale, 3, 1, 1),
            nn.PixelShuffle(scale),
        )

    def forward(self, x):
        return self.body(x)


class Asymmetric(nn.Module):
    """Direction- and position-dependent, so the 8 transforms all differ."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, (1, 3), padding=(0, 1))

    def forward(self, x):
        return self.conv(x) + x[..., :1, :]  # plus the first row, broadcast


def _batch(n=2, h=6, w=5, scale=2, with_gt=True):
    torch.manual_seed(0)
    data = dict(
        lq=torch.rand(n, 3, h, w),
        key=[f'img_{i}' for i in range(n)],
        lq_path=[f'lr/img_{i}.png' for i in range(n)],
    )
    if with_gt:
        data['gt'] = torch.rand(n, 3, h * scale, w * scale)
    return data


def test_loss_mode_and_backward():
    model = MODELS.build(dict(type='SRModel', generator=TINY_EDSR, losses=PIXEL))
    losses = model(**_batch(), mode='loss')
    assert set(losses) == {'loss_pixel'} and losses['loss_pixel'].dim() == 0
    losses['loss_pixel'].backward()
    grads = [p.grad for p in model.generator.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_losses_as_list():
    model = SRModel(TINY_EDSR, losses=[dict(type='L1Loss'), dict(type='MSELoss', loss_weight=0.5)])
    assert set(model(**_batch(), mode='loss')) == {'loss_0', 'loss_1'}


def test_tensor_mode():
    model = SRModel(TINY_EDSR)
    lq = torch.rand(1, 3, 4, 5)
    out = model(lq)
    assert out.shape == (1, 3, 8, 10)
    assert torch.equal(out, model.generator(lq))


def test_predict_format():
    model = SRModel(TINY_EDSR)
    data = _batch(n=2)
    data['gt_path'] = ['hr/img_0.png', 'hr/img_1.png']
    results = model(**data, mode='predict')
    assert isinstance(results, list) and len(results) == 2
    for i, res in enumerate(results):
        assert res['pred'].shape == (3, 12, 10)
        assert res['pred'].dtype == torch.float32
        assert res['pred'].device.type == 'cpu'
        assert res['pred'].min() >= 0 and res['pred'].max() <= 1
        assert torch.equal(res['gt'], data['gt'][i])
        assert res['key'] == f'img_{i}'
        assert res['lq_path'] == f'lr/img_{i}.png'
        assert res['gt_path'] == f'hr/img_{i}.png'
    # Pure inference: no gt, no gt key in the results.
    results = model(**_batch(n=1, with_gt=False), mode='predict')
    assert 'gt' not in results[0] and results[0]['key'] == 'img_0'


def test_predict_clamp_off():
    net = PointwiseShuffle()
    with torch.no_grad():
        net.conv.bias.fill_(5.0)
    assert SRModel(net).inference(torch.rand(1, 3, 2, 2)).max() == 1.0
    out = SRModel(net, test_cfg=dict(clamp=False)).inference(torch.rand(1, 3, 2, 2))
    assert out.max() > 1.0


def test_val_and_test_step():
    model = SRModel(TINY_EDSR, test_cfg=dict(self_ensemble=True))
    for step in (model.val_step, model.test_step):
        batch = _batch(n=2)
        results = step(batch)
        assert results[0]['pred'].shape == (3, 12, 10)
        for i, res in enumerate(results):  # the input, as a view of the batch (no copy)
            assert res['lq'].data_ptr() == batch['lq'][i].data_ptr()


@pytest.mark.parametrize(
    'h,w,tile,overlap', [(13, 10, 4, 2), (9, 9, 5, 4), (7, 16, 6, 0), (3, 4, 8, 2)]
)
def test_tiling_pointwise_exact(h, w, tile, overlap):
    torch.manual_seed(1)
    net = PointwiseShuffle(scale=2)
    lq = torch.rand(2, 3, h, w)
    cfg = dict(tile=tile, tile_overlap=overlap, clamp=False)
    tiled = SRModel(net, test_cfg=cfg).inference(lq)
    with torch.no_grad():
        full = net(lq)
    assert tiled.shape == (2, 3, 2 * h, 2 * w)
    assert torch.allclose(tiled, full, atol=1e-6)


@pytest.mark.parametrize('h,w,tile', [(17, 11, 8), (10, 23, 9)])
def test_tiling_local_receptive_field(h, w, tile):
    # Radius 2 LR pixels <= overlap // 2 = 2: stitched output is exact.
    torch.manual_seed(2)
    net = LocalNet(scale=3)
    lq = torch.rand(1, 3, h, w)
    tiled = SRModel(net, test_cfg=dict(tile=tile, tile_overlap=4, clamp=False)).inference(lq)
    with torch.no_grad():
        full = net(lq)
    assert torch.allclose(tiled, full, atol=1e-5)


def test_tiling_with_edsr_shape():
    model = SRModel(TINY_EDSR, test_cfg=dict(tile=4, tile_overlap=2))
    assert model.inference(torch.rand(1, 3, 9, 7)).shape == (1, 3, 18, 14)


def test_dihedral_roundtrip():
    x = torch.arange(24.0).view(1, 1, 4, 6)
    outs = [dihedral_transform(x, i) for i in range(8)]
    assert len({tuple(o.flatten().tolist()) for o in outs}) == 8
    for i, o in enumerate(outs):
        assert torch.equal(inverse_dihedral_transform(o, i), x)


def test_self_ensemble_equals_hand_computed_mean():
    torch.manual_seed(3)
    net = Asymmetric()
    lq = torch.rand(1, 3, 7, 7)
    with torch.no_grad():
        outs = [
            net(lq),
            net(lq.flip(-1)).flip(-1),
            net(lq.flip(-2)).flip(-2),
            net(lq.flip(-1).flip(-2)).flip(-2).flip(-1),
            net(lq.transpose(-2, -1)).transpose(-2, -1),
            net(lq.flip(-1).transpose(-2, -1)).transpose(-2, -1).flip(-1),
            net(lq.flip(-2).transpose(-2, -1)).transpose(-2, -1).flip(-2),
            net(lq.flip(-1).flip(-2).transpose(-2, -1)).transpose(-2, -1).flip(-2).flip(-1),
        ]
    # The transforms matter for this net, so the test is not vacuous.
    assert not torch.allclose(outs[0], outs[5])
    expect = torch.stack(outs).mean(0)
    got = SRModel(net, test_cfg=dict(self_ensemble=True, clamp=False)).inference(lq)
    assert torch.allclose(got, expect, atol=1e-6)


def test_self_ensemble_with_tiling():
    torch.manual_seed(4)
    net = LocalNet(scale=2)
    lq = torch.rand(1, 3, 11, 9)
    plain = SRModel(net, test_cfg=dict(self_ensemble=True, clamp=False))
    tiled = SRModel(net, test_cfg=dict(self_ensemble=True, tile=6, tile_overlap=4, clamp=False))
    assert torch.allclose(plain.inference(lq), tiled.inference(lq), atol=1e-5)


def test_train_step_decreases_loss():
    torch.manual_seed(5)
    model = SRModel(dict(TINY_EDSR, num_feat=16), losses=PIXEL)
    optim = OptimWrapper(torch.optim.Adam(model.parameters(), lr=2e-3))
    data = _batch(n=2, h=8, w=8)
    data['gt'] = nn.functional.interpolate(data['lq'], scale_factor=2, mode='nearest')
    history = [model.train_step(data, optim)['loss'].item() for _ in range(15)]
    assert history[-1] < 0.7 * history[0], history


def test_errors():
    with pytest.raises(ValueError, match="'tile_size'"):
        SRModel(TINY_EDSR, test_cfg=dict(tile_size=8))
    with pytest.raises(
        ValueError, match=r'test_cfg.tile_overlap: 8 must be smaller than test_cfg.tile \(8\)'
    ):
        SRModel(TINY_EDSR, test_cfg=dict(tile=8))
    with pytest.raises(ValueError, match='self_ensemble'):
        SRModel(TINY_EDSR, test_cfg=dict(self_ensemble='yes'))
    with pytest.raises(TypeError, match='generator'):
        SRModel('EDSR')
    with pytest.raises(ValueError, match="losses.pixel has no 'type'"):
        SRModel(TINY_EDSR, losses={'pixel': {'loss_weight': 1.0}})
    model = SRModel(TINY_EDSR, losses=PIXEL)
    with pytest.raises(ValueError, match="'gt'"):
        model(**_batch(with_gt=False), mode='loss')
    with pytest.raises(ValueError, match='differs from gt shape'):
        model(lq=torch.rand(1, 3, 4, 4), gt=torch.rand(1, 3, 4, 4), mode='loss')
    with pytest.raises(ValueError, match="mode='train'"):
        model(**_batch(), mode='train')
    with pytest.raises(ValueError, match='no losses'):
        SRModel(TINY_EDSR)(**_batch(), mode='loss')


def test_test_config_is_one_typed_object():
    from basicattn.config.test_settings import TestConfig, VideoTestConfig, option_settings

    model = SRModel(TINY_EDSR, test_cfg=dict(tile=0, chop=True))
    assert isinstance(model.test_cfg, TestConfig) and model.test_cfg.tile is None  # 0: off
    with pytest.raises(ValueError, match='test_cfg.sequence is a setting of VideoSRModel'):
        SRModel(TINY_EDSR, test_cfg=dict(sequence=False))
    assert [s.name for s in option_settings()] == [
        'self_ensemble',
        'tile',
        'tile_overlap',
        'chop',
        'chop_shave',
        'amp',
        'channels_last',
        'compile',
        'sequence',
    ]
    assert TestConfig.from_options({'tile': 16, 'val_freq': 3}, 'SRModel') == dict(
        self_ensemble=False,
        tile=16,
        tile_overlap=8,
        chop=False,
        chop_shave=10,
        amp=None,
        channels_last=None,
        compile=False,
    )
    assert VideoTestConfig.from_options({'sequence': True}, 'VideoSRModel')['sequence'] is True
    with pytest.raises(ValueError, match=r'val.sequence: sequence is a setting of VideoSRModel'):
        TestConfig.from_options({'sequence': True}, 'SRModel')
    with pytest.raises(ValueError, match=r'val.tile: must be an int >= 1'):
        TestConfig.from_options({'tile': -2}, 'SRModel')
