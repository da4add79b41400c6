"""LPIPSNet's wiring against an independent float64 re-computation.

The only place random weights are used for a number: the backbone and heads
are seeded random tensors (the published files are third-party data and are
not needed to check the wiring). The re-computation below is written from
the published description (scaling layer constants, torchvision's layer
list, the tapped ReLUs, channel normalisation with eps 1e-10, 1x1 heads,
spatial mean, sum), with ``torch.nn.functional`` in float64, not with the
module's layers.
"""

import pytest
import torch
import torch.nn.functional as F

from basicattn.metrics.lpips_net import BACKBONE_CHANNELS, MIN_SIDE, LPIPSNet

SHIFT = torch.tensor([-0.030, -0.088, -0.188], dtype=torch.float64).view(1, 3, 1, 1)
SCALE = torch.tensor([0.458, 0.448, 0.450], dtype=torch.float64).view(1, 3, 1, 1)

# (conv index, stride, padding) per conv, 'P' for a 3x3/2 (alex) or 2x2/2 (vgg) max-pool,
# 'T' after the ReLU whose output is tapped.
ALEX = [(0, 4, 2), 'T', 'P', (3, 1, 2), 'T', 'P', (6, 1, 1), 'T', (8, 1, 1), 'T', (10, 1, 1), 'T']
VGG = (
    [(0, 1, 1), (2, 1, 1), 'T', 'P', (5, 1, 1), (7, 1, 1), 'T', 'P']
    + [(10, 1, 1), (12, 1, 1), (14, 1, 1), 'T', 'P']
    + [(17, 1, 1), (19, 1, 1), (21, 1, 1), 'T', 'P']
    + [(24, 1, 1), (26, 1, 1), (28, 1, 1), 'T']
)


def random_state(net, seed):
    """Seeded random backbone (torchvision keys) and non-negative heads (lpips keys)."""
    gen = torch.Generator().manual_seed(seed)
    model = LPIPSNet(net)
    backbone = {
        k: torch.randn(v.shape, generator=gen) * (0.1 if k.endswith('bias') else 0.05)
        for k, v in model.backbone_state_dict().items()
    }
    heads = {k: torch.rand(v.shape, generator=gen) for k, v in model.head_state_dict().items()}
    return backbone, heads


def reference(net, backbone, heads, x0, x1):
    """float64 LPIPS v0.1 of two batches in [-1, 1], from the published recipe."""
    plan, pool = (ALEX, (3, 2)) if net == 'alex' else (VGG, (2, 2))

    def taps(x):
        x = (x.double() - SHIFT) / SCALE
        out = []
        for step in plan:
            if step == 'T':
                out.append(x)
            elif step == 'P':
                x = F.max_pool2d(x, pool[0], pool[1])
            else:
                index, stride, padding = step
                w = backbone[f'features.{index}.weight'].double()
                b = backbone[f'features.{index}.bias'].double()
                x = F.relu(F.conv2d(x, w, b, stride=stride, padding=padding))
        return out

    total = torch.zeros(x0.shape[0], dtype=torch.float64)
    for k, (a, b) in enumerate(zip(taps(x0), taps(x1))):
        a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        w = heads[f'lin{k}.model.1.weight'].double()
        total += F.conv2d((a - b) ** 2, w).mean(dim=(1, 2, 3))
    return total


@pytest.mark.parametrize('net, size', [('alex', (40, 48)), ('vgg', (24, 32))])
def test_matches_an_independent_float64_recomputation(net, size):
    backbone, heads = random_state(net, seed=3)
    model = LPIPSNet(net)
    model.load_backbone(backbone)
    model.load_heads(heads)
    gen = torch.Generator().manual_seed(4)
    x0 = torch.rand(2, 3, *size, generator=gen) * 2 - 1
    x1 = (x0 + 0.3 * torch.randn(2, 3, *size, generator=gen)).clamp(-1, 1)
    got = model(x0, x1)
    want = reference(net, backbone, heads, x0, x1)
    assert got.shape == (2,)
    assert (want > 0).all()
    # float32 convolutions vs float64: agreement to a relative 1e-4, not bit equality
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-7)


def test_layers_and_parameter_counts_are_torchvision_s():
    alex, vgg = LPIPSNet('alex'), LPIPSNet('vgg')
    assert BACKBONE_CHANNELS == {'alex': (64, 192, 384, 256, 256), 'vgg': (64, 128, 256, 512, 512)}
    # torchvision's alexnet().features and vgg16().features parameter counts
    assert sum(p.numel() for p in alex.features.parameters()) == 2_469_696
    assert sum(p.numel() for p in vgg.features.parameters()) == 14_714_688
    assert set(alex.backbone_state_dict()) == {
        f'features.{i}.{p}' for i in (0, 3, 6, 8, 10) for p in ('weight', 'bias')
    }
    assert {k: tuple(v.shape) for k, v in vgg.head_state_dict().items()} == {
        f'lin{k}.model.1.weight': (1, c, 1, 1) for k, c in enumerate((64, 128, 256, 512, 512))
    }
    assert not any(p.requires_grad for p in alex.parameters())


@pytest.mark.parametrize('net', ['alex', 'vgg'])
def test_smallest_image_side(net):
    model = LPIPSNet(net)
    side = MIN_SIDE[net]
    x = torch.zeros(1, 3, side, side + 3)
    assert model(x, x).item() == 0.0
    small = torch.zeros(1, 3, side - 1, side + 3)
    with pytest.raises(ValueError, match=f'at least {side} pixels'):
        model(small, small)


def test_wrong_layouts_are_refused():
    model = LPIPSNet('alex')
    backbone = model.backbone_state_dict()
    with pytest.raises(KeyError, match='missing keys'):
        model.load_backbone({k: v for k, v in backbone.items() if k != 'features.0.bias'})
    heads = LPIPSNet('vgg').head_state_dict()
    with pytest.raises(ValueError, match=r'lin1.model.1.weight has shape \(1, 128, 1, 1\)'):
        model.load_heads(heads)
