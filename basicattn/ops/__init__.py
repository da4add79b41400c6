"""Operators written in plain PyTorch (no compiled extensions).

* :func:`modulated_deform_conv2d`, :class:`ModulatedDeformConv2d`,
  :class:`ModulatedDeformConv2dPack`: DCNv2 with mmcv / torchvision layout.
* :func:`deform_kernel_conv2d`, :class:`DeformableKernelConv2d`: deformable
  kernels (Gao et al., ICLR 2020) with image-space deformable sampling.
* :mod:`.dcn_backends`: optional mmcv / torchvision backends for DCNv2.
* :func:`chunked_attention`, :func:`attention_coverage`: softmax attention
  over all positions, a chunk of queries at a time (:mod:`.attention`).
* :func:`disk`, :func:`binary_dilation`, :func:`binary_erosion`: binary
  morphology on the device (:mod:`.morphology`).
* :mod:`.nonlocal_attention`: MANA's Gaussian-weighted non-local attention.
"""

from .attention import attention_coverage, chunked_attention
from .columns_matmul import columns_matmul
from .dcn_backends import (
    DCN_BACKENDS,
    dcn_backend_status,
    get_default_dcn_backend,
    set_default_dcn_backend,
)
from .deform_conv_function import deform_conv_columns
from .deform_im2col import deform_im2col
from .deform_kernel import (
    TAP_GRIDS,
    DeformableKernelConv2d,
    deform_kernel_conv2d,
    sample_scope_kernel,
    scope_tap_positions,
)
from .modulated_deform_conv import (
    ModulatedDeformConv2d,
    ModulatedDeformConv2dPack,
    modulated_deform_conv2d,
)
from .morphology import binary_dilation, binary_erosion, disk

__all__ = [
    'modulated_deform_conv2d',
    'ModulatedDeformConv2d',
    'ModulatedDeformConv2dPack',
    'deform_kernel_conv2d',
    'DeformableKernelConv2d',
    'sample_scope_kernel',
    'scope_tap_positions',
    'TAP_GRIDS',
    'deform_im2col',
    'columns_matmul',
    'deform_conv_columns',
    'DCN_BACKENDS',
    'dcn_backend_status',
    'get_default_dcn_backend',
    'set_default_dcn_backend',
    'chunked_attention',
    'attention_coverage',
    'disk',
    'binary_dilation',
    'binary_erosion',
]
