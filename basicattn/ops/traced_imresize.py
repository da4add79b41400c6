"""MATLAB-exact bicubic upsampling whose weights are computed from the input's shape.

:func:`basicattn.utils.matlab_imresize.imresize` builds its weight matrices in
numpy from Python ints, so an ONNX trace stores them as constants of the
export size. :func:`traced_bicubic_upsample` computes the same matrices with
tensor ops from ``x.shape`` (``Range``, ``Floor``, ``Equal`` ... in ONNX), so
an exported graph resizes inputs of any size. ONNX's own ``Resize`` (cubic,
``cubic_coeff_a=-0.5``, ``half_pixel``) is not used: it clamps at the border
where MATLAB mirrors the image, which changes the two outer output rows and
columns of each side by up to about 0.02 (measured on random 16x16 images).

Only upsampling (``scale >= 1``), where MATLAB uses the plain cubic kernel
(no antialiasing stretch).
"""

import torch

from basicattn.utils.matlab_imresize import cubic_of_distance

__all__ = ['traced_bicubic_upsample']

_TAPS = 6  # ceil(kernel width 4) + 2, as MATLAB


def _axis_weights(length: torch.Tensor, scale: float) -> torch.Tensor:
    """``(ceil(length * scale), length)`` float64 weights of one axis.

    ``length`` is a 0-dim int64 tensor (traced from the input's shape).
    """
    f64 = dict(dtype=torch.float64, device=length.device)
    n = length.to(torch.float64)
    out_len = torch.ceil(n * scale - 1e-9)
    x = torch.arange(1, out_len + 1, **f64)  # 1-based output coordinates
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    idx = torch.floor(u - 2.0)[:, None] + torch.arange(_TAPS, **f64)[None, :]
    w = cubic_of_distance((u[:, None] - idx).abs())
    w = w / w.sum(dim=1, keepdim=True)
    # symmetric padding: 0..n-1, n-1..0 repeated (the edge pixel repeated)
    j = torch.remainder(idx - 1, 2 * n)
    src = torch.where(j < n, j, 2 * n - 1 - j)
    columns = torch.arange(n, **f64)
    return (w[..., None] * (src[..., None] == columns)).sum(dim=1)


def traced_bicubic_upsample(x: torch.Tensor, scale: float) -> torch.Tensor:
    """MATLAB ``imresize(x, scale, 'bicubic')`` for ``scale >= 1``, traceable.

    Args:
        x (torch.Tensor): Float ``(N, C, h, w)``.
        scale (float): Upsampling factor (>= 1).

    Returns:
        torch.Tensor: ``(N, C, ceil(h * scale), ceil(w * scale))`` in ``x``'s dtype.
    """
    if scale < 1:
        raise ValueError(f'traced_bicubic_upsample: scale must be >= 1, got {scale!r}')
    shape = torch._shape_as_tensor(x)
    rows = _axis_weights(shape[-2], float(scale)).to(x.dtype)
    cols = _axis_weights(shape[-1], float(scale)).to(x.dtype)
    return torch.matmul(torch.matmul(rows, x), cols.t())
