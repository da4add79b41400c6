"""Dynamic height and width of the video archs' ONNX graphs (issue 28).

Every registered arch declares ``ONNX_DYNAMIC_HW`` (``test_onnx_export.py``
exports each tiny case with it). Here: the variants whose export paths
differ (SAAM along rows, dense SAAM, the bicubic skip; MANA's tiles with
windows clipped at the frame border, its dense attention), and what
``export_onnx`` does with an arch that says False or says nothing.
"""

import pytest
import torch
from onnx_cases import EXTRA, tiny

from basicattn.archs.edsr_arch import EDSR
from basicattn.deploy.onnx_export import TOLERANCE, export_onnx
from basicattn.errors import UserError

pytest.importorskip('onnx', reason=EXTRA)
pytest.importorskip('onnxruntime', reason=EXTRA)


@pytest.mark.parametrize(
    'name, changes',
    [
        ('DASAA', dict(saam_mode='row')),
        ('DASAA', dict(attn_chunk=None, global_skip='bicubic')),
        ('MANA', dict(attention_tile=3, sigma=0.5)),  # several tiles, windows of radius 4
        ('MANA', dict(attention_mode='dense')),
    ],
    ids=['DASAA-row', 'DASAA-dense-bicubic', 'MANA-tiles', 'MANA-dense'],
)
def test_video_variants_export_dynamic_sizes(name, changes, tmp_path):
    net, size = tiny(name, **changes)
    result = export_onnx(net, str(tmp_path / 'v.onnx'), size=size, dynamic=True, simplify=False)
    h, w = size
    assert result.shapes[1][0] == 2 and result.shapes[1][-2:] == (h + 8, w + 16)
    assert max(result.max_abs_diffs) < TOLERANCE


class _FixedEDSR(EDSR):
    """An EDSR whose class says its graph has a fixed size (test only, not registered)."""

    ONNX_DYNAMIC_HW = False
    ONNX_DYNAMIC_HW_REASON = 'its test says so'


class _Undeclared(torch.nn.Module):
    """An arch of one's own that says nothing, and whose forward fixes the size."""

    def forward(self, x):
        size = (2 * int(x.shape[-2]), 2 * int(x.shape[-1]))  # int(): constants in a trace
        return torch.nn.functional.interpolate(x, size=size, mode='nearest')


def test_an_arch_that_says_false_is_refused_before_tracing(tmp_path):
    torch.manual_seed(0)
    net = _FixedEDSR(num_feat=8, num_block=1, upscale=2)
    path = tmp_path / 'f.onnx'
    with pytest.raises(UserError) as info:
        export_onnx(net, str(path), size=(8, 8), dynamic=True, name='FixedEDSR')
    assert str(info.value) == (
        'FixedEDSR does not export with --dynamic (its test says so); export a fixed size '
        'without --dynamic'
    )
    assert not path.exists()
    export_onnx(net, str(path), size=(8, 8), simplify=False)  # a fixed size works


def test_an_undeclared_arch_is_tried_and_checked(tmp_path):
    path = tmp_path / 'u.onnx'
    with pytest.raises(UserError, match='Undeclared does not export with --dynamic'):
        export_onnx(_Undeclared(), str(path), size=(8, 8), dynamic=True, name='Undeclared')
    assert not path.exists()
