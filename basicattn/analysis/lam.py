"""Local Attribution Maps (LAM) and their Diffusion Index (DI), the maths.

Gu and Dong, "Interpreting Super-Resolution Networks with Local Attribution
Maps", CVPR 2021 (https://arxiv.org/abs/2011.11036). LAM asks which input
pixels an SR network uses for one window of its output. It integrates the
gradient of a *gradient detector* over that window along a path from a
blurred copy of the input to the input itself (path-integrated gradients),
and summarises how spread out the attribution is by the Diffusion Index.
The A2N paper (Chen et al., "Attention in Attention Network for Image
Super-Resolution", 2021, section 5.4, Table 7, Fig. 8) reports it.

The procedure, as the LAM authors define and publish it (the numbers of
their release are the defaults of :class:`BlurPath`):

* the network sees the LR input as RGB in [0, 1] and gives the SR output y;
* the objective is the gradient detector summed over a ``w x w`` window at
  ``(row, col)`` of y (:func:`gradient_detector`; its square root has
  derivative 0 at 0, where the release's NaN would wipe out whole regions);
* the path is progressive blurring (:class:`BlurPath`): ``sigma_k =
  linspace(sigma, 0, fold + 1)``; kernel ``k`` is an isotropic
  ``kernel_size x kernel_size`` Gaussian of standard deviation ``sigma_k +
  1e-5`` normalised to sum 1; step ``i = 0 .. fold - 1`` feeds the input
  filtered with kernel ``i + 1`` and its path derivative is the input
  filtered with ``(kernel_{i+1} - kernel_i) * fold``; filtering is a
  per-channel correlation with reflect-101 borders (OpenCV ``filter2D``'s
  default);
* the attribution is the mean over the steps of (gradient of the objective
  with respect to the step's input) x (its path derivative), NaN gradients
  set to 0 (:func:`path_attribution`);
* the map is the absolute value of the attribution summed over channels,
  divided by its maximum (:func:`attribution_map`); DI = (1 - Gini(map)) x
  100 (:func:`gini`, :func:`diffusion_index`).

The steps run in batches of ``batch_size`` path images: the objective of a
batch is the sum of its samples' objectives, whose gradient with respect to
each sample is that sample's own gradient (the archs have no batch
coupling in eval mode), so the result is that of the one-by-one loop up to
float summation order. One run costs ``fold`` forward and ``fold``
backward passes of the network.

Everything here works on any input shape ``(..., C, h, w)``: an image
``(3, h, w)`` or a clip ``(L, 3, h, w)`` whose every frame follows the same
path (:mod:`basicattn.analysis.lam_video`).
"""

from dataclasses import asdict, dataclass
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from basicattn.errors import DataError, UserError
from basicattn.utils.bounds import is_int

__all__ = [
    'DEFAULT_WINDOW_SIZE',
    'BlurPath',
    'attribution_map',
    'check_window',
    'diffusion_index',
    'filter_channels',
    'gaussian_kernel',
    'gini',
    'gradient_detector',
    'path_attribution',
]

#: The LAM authors' window side (SR pixels).
DEFAULT_WINDOW_SIZE = 16
#: Added to every standard deviation, so that sigma 0 is a (numerical) delta.
SIGMA_EPSILON = 1e-5
#: Added to the values before the Gini coefficient (the authors' constant).
GINI_EPSILON = 1e-7


def gaussian_kernel(size: int, sigma: float) -> torch.Tensor:
    """The isotropic Gaussian kernel of the LAM path, float64 ``(size, size)``, sum 1.

    Value at offset ``(dy, dx)`` from the centre: ``exp(-(dx^2 + dy^2) / (2
    (sigma + 1e-5)^2))``, then divided by the sum. ``size`` is odd (the
    offsets run from ``-(size // 2)`` to ``size // 2``).
    """
    half = size // 2
    offsets = torch.arange(-half, half + 1, dtype=torch.float64)
    squared = offsets[:, None] ** 2 + offsets[None, :] ** 2
    kernel = torch.exp(-squared / (2.0 * (float(sigma) + SIGMA_EPSILON) ** 2))
    return kernel / kernel.sum()


def filter_channels(image: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Correlate every channel of ``image`` with each kernel, reflect-101 borders.

    The per-channel correlation of OpenCV's ``filter2D`` with its default
    border (``BORDER_REFLECT_101``: ``gfedcb|abcdefgh|gfedcba``), which is
    ``F.pad(mode='reflect')``.

    Args:
        image (Tensor): ``(..., h, w)``; every leading index is filtered alone.
        kernels (Tensor): ``(K, k, k)`` with ``k`` odd and ``k // 2 < min(h, w)``.

    Returns:
        Tensor: ``(K, ..., h, w)`` in the dtype of ``kernels``.
    """
    lead, (h, w) = image.shape[:-2], image.shape[-2:]
    half = kernels.shape[-1] // 2
    planes = image.reshape(-1, 1, h, w).to(kernels.dtype)
    padded = F.pad(planes, (half, half, half, half), mode='reflect')
    out = F.conv2d(padded, kernels[:, None])  # (M, K, h, w): conv2d correlates
    return out.transpose(0, 1).reshape(kernels.shape[0], *lead, h, w)


@dataclass(frozen=True)
class BlurPath:
    """The progressive-blurring path of LAM (defaults: the LAM authors').

    Attributes:
        sigma (float): Standard deviation of the most blurred end (>= 0).
        fold (int): Number of steps (>= 1).
        kernel_size (int): Side of the Gaussian kernels (odd, >= 1).
    """

    sigma: float = 1.2
    fold: int = 50
    kernel_size: int = 9

    def check(self) -> 'BlurPath':
        """Return self; :class:`UserError` naming the flag for a bad value."""
        if not is_int(self.fold) or self.fold < 1:
            raise UserError(f'--fold must be a positive int (path steps), got {self.fold!r}')
        if not is_int(self.kernel_size) or self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise UserError(
                f'--kernel-size must be an odd positive int (the Gaussian is centred on a '
                f'pixel), got {self.kernel_size!r}'
            )
        if isinstance(self.sigma, bool) or not isinstance(self.sigma, (int, float)):
            raise UserError(f'--sigma must be a number, got {self.sigma!r}')
        if not np.isfinite(self.sigma) or self.sigma < 0:
            raise UserError(f'--sigma must be a finite number >= 0, got {self.sigma!r}')
        return self

    def as_dict(self) -> dict:
        """``{'sigma', 'fold', 'kernel_size'}``."""
        return asdict(self)

    def kernels(self) -> torch.Tensor:
        """The ``fold + 1`` kernels, float64 ``(fold + 1, k, k)``, most blurred first."""
        sigmas = np.linspace(self.sigma, 0.0, self.fold + 1)
        return torch.stack([gaussian_kernel(self.kernel_size, s) for s in sigmas])

    def check_size(self, shape: Sequence[int], what: str = 'the input') -> None:
        """:class:`DataError` when a ``(..., h, w)`` input is too small for reflect-101."""
        h, w = shape[-2:]
        half = self.kernel_size // 2
        if min(h, w) <= half:
            raise DataError(
                f'{what} is {w}x{h} (WxH) pixels; the {self.kernel_size}x{self.kernel_size} '
                f'path kernel needs at least {half + 1}x{half + 1} (reflect-101 borders): '
                'give a larger image or a smaller --kernel-size'
            )

    def steps(
        self, image: torch.Tensor, indices: Sequence[int], kernels: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Path inputs and path derivatives of the steps ``indices``, float64.

        Args:
            image (Tensor): ``(..., C, h, w)``, the end of the path.
            indices (Sequence[int]): Steps in ``[0, fold)``.
            kernels (Tensor, optional): :meth:`kernels` (computed when None).

        Returns:
            tuple[Tensor, Tensor]: Both ``(len(indices), ..., C, h, w)``.
        """
        kernels = self.kernels() if kernels is None else kernels
        kernels = kernels.to(image.device)
        idx = torch.as_tensor(list(indices), dtype=torch.long, device=image.device)
        step_kernels = kernels[idx + 1]
        derivative_kernels = (kernels[idx + 1] - kernels[idx]) * self.fold
        both = filter_channels(image, torch.cat([step_kernels, derivative_kernels]))
        return both[: len(idx)], both[len(idx) :]


def check_window(row: int, col: int, size: int, out_shape: Sequence[int]) -> None:
    """:class:`UserError` unless the ``size`` window at ``(row, col)`` fits the detector.

    The gradient detector of an ``H x W`` output is ``(H - 1) x (W - 1)``
    (differences to the next row and column), so the window needs
    ``row + size <= H - 1`` and ``col + size <= W - 1``.
    """
    for name, value in (('ROW', row), ('COL', col), ('--window-size', size)):
        if not is_int(value):
            raise UserError(f'--window: {name} must be an int, got {value!r}')
    if size < 1:
        raise UserError(f'--window-size must be a positive int, got {size!r}')
    height, width = out_shape[-2:]
    last_row, last_col = height - 1 - size, width - 1 - size
    if not (0 <= row <= last_row and 0 <= col <= last_col):
        if last_row < 0 or last_col < 0:
            need = (
                f'the output is too small for a {size}x{size} window: pass a smaller --window-size'
            )
        else:
            need = f'ROW must be in [0, {last_row}] and COL in [0, {last_col}]'
        raise UserError(
            f'--window {row} {col}: the {size}x{size} window leaves the {width}x{height} (WxH) '
            f'SR output (its gradient detector is {width - 1}x{height - 1}); {need}'
        )


def gradient_detector(y: torch.Tensor, row: int, col: int, size: int) -> torch.Tensor:
    """The LAM objective of each sample: the gradient magnitude summed over the window.

    With ``dh = (y[..., :-1, :] - y[..., 1:, :])**2`` and ``dw = (y[..., :,
    :-1] - y[..., :, 1:])**2``, ``g = sqrt(dh[..., :, :-1] + dw[..., :-1,
    :])``, summed over the channels and ``g[..., row:row+size, col:col+size]``.

    One difference from the LAM release: where ``g`` is exactly 0 (equal
    neighbours, e.g. a saturated patch), the derivative of the square root is
    taken as 0 instead of ``inf``. The release's ``inf`` times the zero
    differences gives NaN, which the backward pass spreads to every input
    pixel that reaches that output pixel before NaNs are set to 0, erasing
    their attribution (all of it for the bicubic baseline, whose resize mixes
    whole rows and columns, or for an arch with global pooling). Wherever the
    release gives no NaN the two are the same.

    Args:
        y (Tensor): ``(N, C, H, W)`` SR outputs.

    Returns:
        Tensor: ``(N,)``.
    """
    dh = (y[..., :-1, :] - y[..., 1:, :]) ** 2
    dw = (y[..., :, :-1] - y[..., :, 1:]) ** 2
    squared = (dh[..., :, :-1] + dw[..., :-1, :])[..., row : row + size, col : col + size]
    # sqrt with derivative 0 at 0 (a subgradient of the magnitude); torch.sqrt's inf
    # there times the zero differences is NaN, which backward spreads over the input
    positive = squared > 0
    g = torch.where(positive, torch.sqrt(torch.where(positive, squared, 1.0)), 0.0)
    return g.flatten(1).sum(1)


def path_attribution(
    forward: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    objective: Callable[[torch.Tensor], torch.Tensor],
    path: BlurPath,
    batch_size: int = 10,
    progress: Optional[Callable[[int], None]] = None,
) -> torch.Tensor:
    """The path-integrated gradient of ``objective(forward(.))`` along ``path``.

    Args:
        forward (callable): ``(B, ..., C, h, w)`` path inputs (float32) ->
            ``(B, C, H, W)`` outputs; no coupling between samples.
        image (Tensor): ``(..., C, h, w)``, the input (end of the path).
        objective (callable): ``(B, C, H, W)`` -> ``(B,)`` (e.g.
            :func:`gradient_detector`).
        path (BlurPath): The path (checked here).
        batch_size (int): Path steps per forward/backward pass.
        progress (callable, optional): Called with the number of steps done
            after each batch.

    Returns:
        Tensor: float64, the shape of ``image``: the mean over the steps of
        gradient x path derivative (NaN gradients count as 0).
    """
    path.check()
    if not is_int(batch_size) or batch_size < 1:
        raise UserError(f'--batch-size must be a positive int, got {batch_size!r}')
    path.check_size(image.shape)
    kernels = path.kernels()
    total = torch.zeros(image.shape, dtype=torch.float64, device=image.device)
    for start in range(0, path.fold, batch_size):
        indices = range(start, min(start + batch_size, path.fold))
        inputs, derivatives = path.steps(image, indices, kernels)
        inputs = inputs.to(torch.float32).requires_grad_(True)
        with torch.enable_grad():
            score = objective(forward(inputs)).sum()
            (grad,) = torch.autograd.grad(score, inputs)
        grad = torch.nan_to_num(grad.to(torch.float64), nan=0.0)
        total += (grad * derivatives).sum(0)
        if progress is not None:
            progress(len(indices))
    return total / path.fold


def attribution_map(attribution: torch.Tensor) -> np.ndarray:
    """``|attribution summed over channels|``, float64 ``(..., h, w)``, not normalised.

    Args:
        attribution (Tensor): ``(..., C, h, w)``.
    """
    return attribution.sum(dim=-3).abs().cpu().numpy().astype(np.float64)


def gini(values: np.ndarray) -> float:
    """The Gini coefficient of the flattened ``values``, as the LAM authors compute it.

    Shifted by its minimum when that is negative, plus ``1e-7``, sorted
    ascending ``a_1 <= ... <= a_n``: ``sum((2i - n - 1) a_i) / (n sum(a_i))``.
    0 for equal values, ``(n - 1) / n`` (almost) for one non-zero value.
    """
    a = np.asarray(values, dtype=np.float64).flatten()
    if a.size == 0:
        raise ValueError('gini: no values')
    if a.min() < 0:
        a = a - a.min()
    a = np.sort(a + GINI_EPSILON)
    n = a.size
    index = np.arange(1, n + 1, dtype=np.float64)
    return float(np.sum((2.0 * index - n - 1.0) * a) / (n * np.sum(a)))


def diffusion_index(lam_map: np.ndarray) -> Tuple[float, float]:
    """``(DI, Gini)`` of a map: the map divided by its maximum, DI = (1 - Gini) x 100.

    Raises:
        DataError: An all-zero map (the window's detector has no gradient on
            the whole path: a flat window), which has no DI.
    """
    top = float(np.max(lam_map))
    if not top > 0:
        raise DataError(
            'the attribution is zero everywhere (the window is flat in every path step, '
            'so its gradient detector has no gradient): choose a window with edges or texture'
        )
    value = gini(lam_map / top)
    return (1.0 - value) * 100.0, value
