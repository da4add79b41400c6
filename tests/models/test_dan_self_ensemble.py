"""DAN+ (x8 self-ensemble) through SRModel's test option, on a tiny DAN."""

import os.path as osp

import torch
from conftest import REPO_ROOT

from basicattn.config import read_options
from basicattn.engine.builder import model_cfg
from basicattn.registry import MODELS

TINY_DAN = dict(type='DAN', num_feat=8, num_block=3, num_res=1, reduction=4, distance=2, upscale=3)


def eight_transforms():
    """(forward, inverse) pairs of the dihedral group: 4 rotations x flip."""
    pairs = []
    for flip in (False, True):
        for k in range(4):

            def fwd(x, k=k, flip=flip):
                x = x.flip(-1) if flip else x
                return torch.rot90(x, k, dims=(-2, -1))

            def inv(y, k=k, flip=flip):
                y = torch.rot90(y, -k, dims=(-2, -1))
                return y.flip(-1) if flip else y

            pairs.append((fwd, inv))
    return pairs


def test_dan_plus_is_the_mean_of_the_eight_outputs():
    torch.manual_seed(0)
    model = MODELS.build(
        dict(type='SRModel', generator=TINY_DAN, test_cfg=dict(self_ensemble=True, clamp=False))
    )
    model.eval()
    lq = torch.rand(2, 3, 5, 7)  # not square: rotations matter
    net = model.generator
    with torch.no_grad():
        outputs = [inv(net(fwd(lq))) for fwd, inv in eight_transforms()]
        expected = torch.stack(outputs).mean(0)
        plain = net(lq)
    ensemble = model.inference(lq)
    assert ensemble.shape == (2, 3, 15, 21)
    torch.testing.assert_close(ensemble, expected, rtol=1e-5, atol=1e-6)
    # the eight outputs differ (DAN is not equivariant), so this is a real test
    assert (outputs[1] - outputs[0]).abs().max() > 1e-4
    assert (ensemble - plain).abs().max() > 1e-5
    # clamped like any prediction when clamp is on (the default)
    model.test_cfg.clamp = True
    torch.testing.assert_close(model.inference(lq), expected.clamp(0, 1), rtol=1e-5, atol=1e-6)


def test_val_self_ensemble_option_reaches_the_model():
    """`val.self_ensemble: true` on a DAN test file builds a DAN+ model."""
    path = osp.join(REPO_ROOT, 'options', 'test', 'dan_x3_bi.yml')
    opt = read_options(
        path,
        [
            'network_g.num_block=2',
            'network_g.num_feat=16',
            'network_g.num_res=1',
            'val.self_ensemble=true',
        ],
        purpose='test',
    )
    assert opt['val']['self_ensemble'] is True
    model = MODELS.build(model_cfg(opt, 'test'))
    assert model.test_cfg.self_ensemble is True
    assert type(model.generator).__name__ == 'DAN'
    model.eval()
    torch.manual_seed(1)
    lq = torch.rand(1, 3, 6, 4)
    with torch.no_grad():
        expected = torch.stack(
            [inv(model.generator(fwd(lq))) for fwd, inv in eight_transforms()]
        ).mean(0)
    torch.testing.assert_close(model.inference(lq), expected.clamp(0, 1), rtol=1e-5, atol=1e-6)
