"""Correlation of attention maps with high-pass responses (A2N paper, Table 1).

The paper (Chen et al. 2021, Sec. 3.1) reports, per attention block, "the
correlation coefficients between the attention map and the output feature
of high-pass filters of the corresponding feature map" for Laplace, Scharr
and Sobel filters, without the exact recipe. Ours:

* the feature: the one the attention multiplies (A2N: ``k3(x)``, tap
  ``blocks.{i}.attention_input``); the map: the sigmoid gate of the same
  block (``blocks.{i}.attention_map``), both ``(N, C, H, W)``;
* the response: per channel, the *magnitude* of the filter output
  (``|Laplace * f|``; ``sqrt(gx^2 + gy^2)`` for the Sobel and Scharr
  derivative pairs), replicate padding at the borders. The signed response
  is symmetric around zero at every edge, so its correlation with a map
  that is high on edges is about zero whatever the map does; the magnitude
  is what "attends to high frequencies" means;
* the coefficient: Pearson's r over the pixels, per image and channel
  (each channel has its own gate), then the mean over the channels
  (constant channels, whose r is undefined, are left out) and over the
  images.

A map equal to the response gives exactly 1, its negative -1
(``tests/analysis/test_highpass.py``).
"""

from typing import Dict

import torch
import torch.nn.functional as F

__all__ = ['FILTERS', 'highpass_response', 'pearson_per_channel', 'highpass_correlation']

_LAPLACE = [[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]
_SOBEL_X = [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]
_SCHARR_X = [[-3.0, 0.0, 3.0], [-10.0, 0.0, 10.0], [-3.0, 0.0, 3.0]]

#: The paper's three filters, in its order.
FILTERS = ('laplace', 'scharr', 'sobel')


def _filter(feat: torch.Tensor, kernel) -> torch.Tensor:
    c = feat.shape[1]
    weight = torch.tensor(kernel, dtype=feat.dtype, device=feat.device)
    weight = weight.expand(c, 1, 3, 3)
    return F.conv2d(F.pad(feat, (1, 1, 1, 1), mode='replicate'), weight, groups=c)


def highpass_response(feat: torch.Tensor, name: str) -> torch.Tensor:
    """Magnitude of the ``name`` high-pass response of every channel of ``feat`` (N, C, H, W)."""
    feat = feat.float()
    if name == 'laplace':
        return _filter(feat, _LAPLACE).abs()
    kx = {'sobel': _SOBEL_X, 'scharr': _SCHARR_X}[name]
    ky = [list(col) for col in zip(*kx)]  # the transpose: the vertical derivative
    return torch.hypot(_filter(feat, kx), _filter(feat, ky))


def pearson_per_channel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson's r over the pixels of ``a`` and ``b`` (N, C, H, W): (N, C), NaN if constant."""
    a = a.double().flatten(2)
    b = b.double().flatten(2)
    a = a - a.mean(dim=2, keepdim=True)
    b = b - b.mean(dim=2, keepdim=True)
    denom = (a.square().sum(dim=2) * b.square().sum(dim=2)).sqrt()
    r = (a * b).sum(dim=2) / denom
    return torch.where(denom > 0, r, torch.full_like(r, float('nan')))


def highpass_correlation(attention: torch.Tensor, feature: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Per image, the channel-mean correlation of ``attention`` with each filter's response.

    Args:
        attention (Tensor): The attention map (N, C, H, W).
        feature (Tensor): The feature it multiplies, same shape.

    Returns:
        dict[str, Tensor]: filter name -> (N,) float64 (NaN for an image
        whose channels are all constant).
    """
    if attention.shape != feature.shape:
        raise ValueError(
            f'attention {tuple(attention.shape)} and feature {tuple(feature.shape)} differ in shape'
        )
    return {
        name: pearson_per_channel(attention, highpass_response(feature, name)).nanmean(dim=1)
        for name in FILTERS
    }
