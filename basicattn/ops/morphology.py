"""Binary morphology on 0/1 ``(N, 1, H, W)`` masks, in torch on the input's device.

Dilation and erosion are one convolution with the structuring element and a
threshold, so they cost the same for every mask and never leave the device
(used by DASAA's validity mask, :class:`basicattn.archs.dasaa_blocks.MorphologicalMask`;
the definitions are the textbook ones, e.g. Gonzalez & Woods, "Digital Image
Processing", ch. 9).
"""

from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ['disk', 'binary_dilation', 'binary_erosion']


def disk(
    radius: int, device: Optional[torch.device] = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Disk structuring element, 1 where ``y^2 + x^2 <= r^2``.

    Args:
        radius (int): r >= 0.
        device, dtype: Of the returned tensor.

    Returns:
        Tensor: ``(2r+1, 2r+1)``, 0/1 values.
    """
    offsets = torch.arange(-radius, radius + 1, device=device)
    d2 = offsets[:, None] ** 2 + offsets[None, :] ** 2
    return (d2 <= radius * radius).to(dtype)


def _hits(mask: torch.Tensor, se: torch.Tensor, border: float) -> torch.Tensor:
    """Per pixel, how many structuring-element taps fall on foreground."""
    ry, rx = se.shape[0] // 2, se.shape[1] // 2
    padded = F.pad(mask, (rx, rx, ry, ry), value=border)
    return F.conv2d(padded, se[None, None].to(mask.dtype))


def binary_dilation(mask: torch.Tensor, se: torch.Tensor) -> torch.Tensor:
    """Binary dilation of a 0/1 ``(N, 1, H, W)`` mask (outside = 0).

    Args:
        mask (Tensor): 0/1 float ``(N, 1, H, W)``.
        se (Tensor): 0/1 ``(kh, kw)`` structuring element, odd sides,
            symmetric (a disk or a square).

    Returns:
        Tensor: 0/1 float, same shape.
    """
    return (_hits(mask, se, 0.0) > 0.5).to(mask.dtype)


def binary_erosion(mask: torch.Tensor, se: torch.Tensor, border: float = 1.0) -> torch.Tensor:
    """Binary erosion of a 0/1 ``(N, 1, H, W)`` mask.

    Args:
        mask (Tensor): 0/1 float ``(N, 1, H, W)``.
        se (Tensor): 0/1 ``(kh, kw)`` structuring element, odd sides.
        border (float): Value assumed outside the image: 1 (default) does
            not erode from the frame border, 0 does.

    Returns:
        Tensor: 0/1 float, same shape.
    """
    return (_hits(mask, se, border) > se.sum() - 0.5).to(mask.dtype)
