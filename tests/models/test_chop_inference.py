"""EDSR-style quadrant ("chop") inference."""

import pytest
import torch
from torch import nn

from basicattn.models.chop_inference import chop_forward
from basicattn.models.sr_model import SRModel


class PixelNet(nn.Module):
    """Per-pixel x2 network: chop must not change its output."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x):
        return self.shuffle(self.conv(x))


class GlobalNet(PixelNet):
    """Adds the input's global mean: quadrants see different means."""

    def forward(self, x):
        return super().forward(x) + x.mean(dim=(2, 3), keepdim=True)


@pytest.mark.parametrize('size', [(20, 20), (17, 23), (9, 40)])
def test_chop_equals_whole_for_per_pixel_network(size):
    torch.manual_seed(0)
    net, x = PixelNet(), torch.rand(2, 3, *size)
    assert torch.allclose(chop_forward(net, x, shave=3), net(x), atol=1e-6)
    # recursion (every quadrant split again) gives the same result
    assert torch.allclose(chop_forward(net, x, shave=3, min_size=10), net(x), atol=1e-6)


def test_chop_quadrants_are_run_alone():
    """Each output quadrant equals the network run on that overlapping patch."""
    torch.manual_seed(0)
    net, x = GlobalNet(), torch.rand(1, 3, 16, 16)
    out = chop_forward(net, x, shave=2)
    assert not torch.allclose(out, net(x))
    top_left = net(x[..., :10, :10])[..., :16, :16]
    bottom_right = net(x[..., 6:, 6:])[..., 4:, 4:]
    assert torch.allclose(out[..., :16, :16], top_left)
    assert torch.allclose(out[..., 16:, 16:], bottom_right)


def test_sr_model_chop_option_and_errors():
    torch.manual_seed(0)
    model = SRModel(GlobalNet(), test_cfg=dict(chop=True, chop_shave=2, clamp=False))
    x = torch.rand(1, 3, 16, 16)
    assert torch.allclose(model.inference(x), chop_forward(model.generator, x, shave=2))
    with pytest.raises(ValueError, match='chop and test_cfg.tile'):
        SRModel(GlobalNet(), test_cfg=dict(chop=True, tile=16))
    with pytest.raises(ValueError, match='chop_shave'):
        SRModel(GlobalNet(), test_cfg=dict(chop=True, chop_shave=-1))
