"""The LPIPS network in plain PyTorch: a frozen ImageNet backbone and linear heads.

Zhang, Isola, Efros, Shechtman and Wang, "The Unreasonable Effectiveness of
Deep Features as a Perceptual Metric", CVPR 2018, version 0.1 of the authors'
release (the ``lpips`` package). The distance of two RGB images ``x0, x1`` in
[-1, 1]:

1. each input is shifted and scaled per channel (the "scaling layer" of
   version 0.1: ``(x - shift) / scale`` with ``shift = (-0.030, -0.088,
   -0.188)`` and ``scale = (0.458, 0.448, 0.450)``);
2. the backbone's features are tapped after five ReLUs: AlexNet relu1..relu5
   (64, 192, 384, 256, 256 channels) or VGG16 relu1_2, relu2_2, relu3_3,
   relu4_3, relu5_3 (64, 128, 256, 512, 512);
3. each tapped feature is unit-normalised over its channels,
   ``f / (sqrt(sum_c f^2) + 1e-10)``;
4. the squared difference of the two normalised features goes through a
   1x1 convolution to one channel (no bias; the heads' dropout does nothing
   at evaluation) and is averaged over space;
5. the five layer values are summed.

The backbones are the ``features`` part of torchvision's AlexNet and VGG16
with the same module indices, so torchvision's ImageNet files load into them
(keys ``features.0.weight`` ...), and the heads load the ``lpips`` package's
``weights/v0.1/<net>.pth`` (keys ``lin0.model.1.weight`` ...). Nothing here
reads files: :mod:`basicattn.metrics.lpips_weights` finds and checks them.
torchvision itself is not used (it does not load with every torch build).
"""

from typing import Dict, List, Tuple

import torch
from torch import nn

__all__ = [
    'BACKBONE_CHANNELS',
    'MIN_SIDE',
    'NETS',
    'SCALING_SCALE',
    'SCALING_SHIFT',
    'LPIPSNet',
    'normalize_channels',
]

#: The scaling layer of LPIPS v0.1 (per RGB channel, applied to inputs in [-1, 1]).
SCALING_SHIFT = (-0.030, -0.088, -0.188)
SCALING_SCALE = (0.458, 0.448, 0.450)
#: Added to the channel norm before dividing (as published).
NORM_EPS = 1e-10

# torchvision's ``features`` layouts: ('conv', in, out, kernel, stride, padding),
# ('relu',) or ('pool', kernel, stride); the index in the list is the module index.
_ALEX = [
    ('conv', 3, 64, 11, 4, 2),
    ('relu',),
    ('pool', 3, 2),
    ('conv', 64, 192, 5, 1, 2),
    ('relu',),
    ('pool', 3, 2),
    ('conv', 192, 384, 3, 1, 1),
    ('relu',),
    ('conv', 384, 256, 3, 1, 1),
    ('relu',),
    ('conv', 256, 256, 3, 1, 1),
    ('relu',),
]


def _vgg16_layers():
    layers, cin = [], 3
    for block, (cout, convs) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]):
        if block:
            layers.append(('pool', 2, 2))
        for _ in range(convs):
            layers += [('conv', cin, cout, 3, 1, 1), ('relu',)]
            cin = cout
    return layers


#: ``net -> (layers, the module indices after which features are tapped)``.
_LAYOUTS: Dict[str, Tuple[List[tuple], Tuple[int, ...]]] = {
    'alex': (_ALEX, (1, 4, 7, 9, 11)),
    'vgg': (_vgg16_layers(), (3, 8, 15, 22, 29)),
}
NETS = tuple(_LAYOUTS)
#: The smallest image side for which every tapped feature has a pixel.
MIN_SIDE = {'alex': 31, 'vgg': 16}
#: Channels of the five tapped features of each backbone.
BACKBONE_CHANNELS = {
    name: tuple(
        next(layer[2] for layer in reversed(layers[: tap + 1]) if layer[0] == 'conv')
        for tap in taps
    )
    for name, (layers, taps) in _LAYOUTS.items()
}


def _module(layer):
    if layer[0] == 'conv':
        _, cin, cout, kernel, stride, padding = layer
        return nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding)
    if layer[0] == 'relu':
        return nn.ReLU(inplace=False)
    return nn.MaxPool2d(kernel_size=layer[1], stride=layer[2])


def normalize_channels(feature: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """``feature`` divided by its L2 norm over channels (dim 1) plus ``eps``."""
    norm = torch.sqrt(torch.sum(feature * feature, dim=1, keepdim=True))
    return feature / (norm + eps)


def _check_layout(given: Dict[str, torch.Tensor], own: Dict[str, torch.Tensor]) -> None:
    missing = sorted(set(own) - set(given))
    unexpected = sorted(set(given) - set(own))
    if missing or unexpected:
        raise KeyError(f'missing keys {missing[:3]}, unexpected keys {unexpected[:3]}')
    for key, value in own.items():
        if tuple(given[key].shape) != tuple(value.shape):
            raise ValueError(
                f'{key} has shape {tuple(given[key].shape)}, expected {tuple(value.shape)}'
            )


class LPIPSNet(nn.Module):
    """LPIPS v0.1 distance (see the module docstring); parameters are frozen.

    Args:
        net (str): ``'alex'`` or ``'vgg'`` (VGG16).

    Attributes:
        features (nn.Sequential): The backbone, torchvision's module indices.
        lins (nn.ModuleList): The five 1x1 heads, each ``Sequential(Dropout,
            Conv2d(c, 1, 1, bias=False))`` as in the ``lpips`` package.
    """

    def __init__(self, net: str = 'alex'):
        super().__init__()
        if net not in _LAYOUTS:
            raise ValueError(f'LPIPSNet: net must be one of {NETS}, got {net!r}')
        self.net = net
        layers, taps = _LAYOUTS[net]
        self.taps = taps
        self.features = nn.Sequential(*[_module(layer) for layer in layers])
        self.lins = nn.ModuleList(
            nn.Sequential(nn.Dropout(), nn.Conv2d(c, 1, 1, stride=1, padding=0, bias=False))
            for c in BACKBONE_CHANNELS[net]
        )
        self.register_buffer('shift', torch.tensor(SCALING_SHIFT).view(1, 3, 1, 1))
        self.register_buffer('scale', torch.tensor(SCALING_SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def backbone_state_dict(self) -> Dict[str, torch.Tensor]:
        """The backbone weights in torchvision's layout (``features.<i>.weight`` ...)."""
        return {f'features.{k}': v for k, v in self.features.state_dict().items()}

    def head_state_dict(self) -> Dict[str, torch.Tensor]:
        """The heads in the ``lpips`` package's layout (``lin<k>.model.1.weight``)."""
        return {f'lin{k}.model.1.weight': lin[1].weight for k, lin in enumerate(self.lins)}

    def load_backbone(self, state: Dict[str, torch.Tensor]) -> None:
        """Load backbone weights in torchvision's layout (``features.<i>.weight`` ...).

        ``state`` must hold exactly the keys and shapes of
        :meth:`backbone_state_dict` (drop torchvision's ``classifier.*``
        first); ``KeyError`` / ``ValueError`` otherwise.
        """
        _check_layout(state, self.backbone_state_dict())
        self.features.load_state_dict({k[len('features.') :]: v for k, v in state.items()})

    def load_heads(self, state: Dict[str, torch.Tensor]) -> None:
        """Load the heads in the ``lpips`` package's layout (``lin<k>.model.1.weight``).

        ``KeyError`` / ``ValueError`` for other keys or shapes.
        """
        _check_layout(state, self.head_state_dict())
        for k, lin in enumerate(self.lins):
            lin[1].weight.copy_(state[f'lin{k}.model.1.weight'])

    def tapped_features(self, x: torch.Tensor) -> List[torch.Tensor]:
        """The five tapped backbone features of a scaled input."""
        out, last = [], self.taps[-1]
        for index, module in enumerate(self.features):
            x = module(x)
            if index in self.taps:
                out.append(x)
            if index == last:
                break
        return out

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """Distances of two batches ``(N, 3, H, W)`` of RGB in [-1, 1]; returns ``(N,)``."""
        if x0.shape != x1.shape or x0.dim() != 4 or x0.shape[1] != 3:
            raise ValueError(
                f'LPIPSNet: expected two (N, 3, H, W) batches of one shape, got '
                f'{tuple(x0.shape)} and {tuple(x1.shape)}'
            )
        if min(x0.shape[2:]) < MIN_SIDE[self.net]:
            raise ValueError(
                f'LPIPSNet ({self.net}): images of {x0.shape[3]}x{x0.shape[2]} (WxH) are too '
                f'small; each side needs at least {MIN_SIDE[self.net]} pixels'
            )
        f0 = self.tapped_features((x0 - self.shift) / self.scale)
        f1 = self.tapped_features((x1 - self.shift) / self.scale)
        total = x0.new_zeros(x0.shape[0])
        for lin, a, b in zip(self.lins, f0, f1):
            diff = (normalize_channels(a) - normalize_channels(b)) ** 2
            total = total + lin(diff).mean(dim=(1, 2, 3))
        return total
