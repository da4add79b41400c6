"""LPIPS (Zhang et al., CVPR 2018, v0.1) as a metric for mmengine's evaluator.

``type: LPIPS`` with ``net: alex`` (default, the authors' recommendation for a
metric) or ``vgg``. Lower is better (0 for identical images). Computed per
image like PSNR / SSIM (:mod:`basicattn.metrics.sr_metric`), on the same
pixels: the output rounded to uint8 (as a saved PNG) and ``crop_border``
pixels removed on each side, RGB scaled to [-1, 1] as the authors' code
expects; averaged over the images, or per clip first for video. The result
key names the network and the crop, ``lpips_alex_crop4``.

The published weights are read when the metric is built (before anything
runs): see :mod:`basicattn.metrics.lpips_weights`; without them the metric
is not built and the error says which file is missing and where it goes.
"""

from typing import Any, Literal, Optional

import torch

from basicattn.registry import METRICS

from .lpips_net import MIN_SIDE, NETS
from .lpips_weights import load_lpips_net
from .sr_metric import _PerImageMetric

__all__ = ['LPIPS', 'lpips_distance', 'to_lpips_input']


def to_lpips_input(img: torch.Tensor, crop_border: int = 0) -> torch.Tensor:
    """A ``(C, H, W)`` or ``(N, C, H, W)`` tensor in [0, 1] as LPIPS reads it.

    Clamped to [0, 1], rounded to uint8 levels (``torch.round``, as
    :func:`~basicattn.utils.img_util.tensor2img`), cropped by ``crop_border``
    on each side and mapped to [-1, 1]; float32, ``(N, 3, H, W)``.
    """
    if not isinstance(img, torch.Tensor) or not img.is_floating_point():
        raise TypeError(f'expected a float tensor in [0, 1], got {getattr(img, "dtype", img)!r}')
    x = img.detach()
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(
            f'expected an RGB tensor (3, H, W) or (N, 3, H, W), got {tuple(img.shape)}'
        )
    h, w = x.shape[2:]
    if 2 * crop_border >= min(h, w):
        raise ValueError(f'crop_border={crop_border} leaves nothing of an image of {w}x{h} (WxH)')
    if crop_border:
        x = x[:, :, crop_border : h - crop_border, crop_border : w - crop_border]
    x = torch.round(x.to(torch.float32).clamp(0, 1) * 255.0) / 255.0
    return x * 2.0 - 1.0


def lpips_distance(
    net: torch.nn.Module, pred: torch.Tensor, gt: torch.Tensor, crop_border: int = 0
) -> torch.Tensor:
    """LPIPS of ``pred`` against ``gt`` (tensors in [0, 1], one image or a batch); ``(N,)``.

    Args:
        net: A loaded :class:`~basicattn.metrics.lpips_net.LPIPSNet`.
        pred, gt: ``(3, H, W)`` or ``(N, 3, H, W)`` of one shape.
        crop_border (int): Pixels removed on each side first.

    Raises:
        ValueError: Shapes differ, the crop leaves nothing, or the image is
            smaller than the backbone needs.
    """
    if pred.shape != gt.shape:
        raise ValueError(f'image shapes differ: pred {tuple(pred.shape)} vs gt {tuple(gt.shape)}')
    param = next(net.parameters())
    x0 = to_lpips_input(pred, crop_border).to(param.device)
    x1 = to_lpips_input(gt, crop_border).to(param.device)
    with torch.no_grad():
        return net(x0, x1).to('cpu', torch.float64)


@METRICS.register_module()
class LPIPS(_PerImageMetric):
    """LPIPS v0.1 distance; lower is better (see the module docstring).

    Args:
        net (str): ``'alex'`` (default) or ``'vgg'`` (VGG16).
        crop_border (int): Pixels cropped on each side (as for PSNR / SSIM).
            Defaults to 0.
        backbone_path (str, optional): torchvision's ImageNet weights
            (``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth``); None:
            the torch hub cache, ``$TORCH_HOME/hub/checkpoints``.
        head_path (str, optional): The linear heads (``weights/v0.1/<net>.pth``
            of the ``lpips`` package); None: found in the installed package.
        device (str, optional): Where the network runs, e.g. ``'cuda'``;
            None: where the images are.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Prepended to the key as ``prefix/``.

    Raises:
        CheckpointError: A weight file is missing or wrong (when built).
    """

    kind = 'lpips'

    def __init__(
        self,
        net: Literal['alex', 'vgg'] = 'alex',
        crop_border: int = 0,
        backbone_path: Optional[str] = None,
        head_path: Optional[str] = None,
        device: Optional[str] = None,
        collect_device: str = 'cpu',
        prefix: Optional[str] = None,
    ):
        super().__init__(crop_border=crop_border, collect_device=collect_device, prefix=prefix)
        if net not in NETS:
            raise ValueError(f'LPIPS: net must be one of {", ".join(NETS)}, got {net!r}')
        self.net_name = net
        self.net = load_lpips_net(net, backbone_path, head_path)
        self.device = device

    @property
    def name(self) -> str:
        """The result key, e.g. ``'lpips_alex_crop4'``."""
        return f'lpips_{self.net_name}_crop{self.crop_border}'

    def _compute_one(self, pred: Any, gt: Any) -> float:
        if not isinstance(pred, torch.Tensor) or not isinstance(gt, torch.Tensor):
            raise TypeError(
                f'LPIPS takes tensors, got {type(pred).__name__} and {type(gt).__name__}'
            )
        device = torch.device(self.device) if self.device else pred.device
        if next(self.net.parameters()).device != device:
            self.net.to(device)
        side = min(pred.shape[-2:]) - 2 * self.crop_border
        if side < MIN_SIDE[self.net_name]:
            raise ValueError(
                f'LPIPS ({self.net_name}) needs images of at least {MIN_SIDE[self.net_name]} '
                f'pixels a side after cropping {self.crop_border}, got {tuple(pred.shape)}'
            )
        return float(lpips_distance(self.net, pred, gt, self.crop_border)[0])
