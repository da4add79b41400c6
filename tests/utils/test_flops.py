"""Tests of basicattn.utils.flops and tools/get_flops.py.

The A2N paper numbers (Table 5 "MultiAdds" at 1280x720 output) are checked
from a trace of a 6x8 LR input, scaled by the pixel count: each conv's MACs
are (its output pixels) x (a per-layer constant) and A2N's output pixels
are fixed multiples of the LR pixels, so conv MACs are exactly
proportional to the LR pixel count (checked below at two sizes); only the
attention-dropout linears (6,720 MACs per image) do not scale. Tracing the
full 720p input gives the same numbers (docs/models/a2n.md) but takes
10-30 s on CPU.

x3 720p input: 426x240 (floor(1280 / 3), output 1278x720) gives the paper's
117.5G; 427x240 (output 1281x720) gives 117.8G, also within 1%.
"""

import importlib.util
import json
import os.path as osp

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from basicattn.archs.a2n_arch import A2N
from basicattn.utils.flops import count_flops, einsum_macs, format_count

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.parametrize(
    'scale,lr_hw,paper',
    [
        (2, (360, 640), 247.5e9),
        (3, (240, 426), 117.5e9),
        (3, (240, 427), 117.5e9),
        (4, (180, 320), 72.4e9),
    ],
)
def test_a2n_paper_multiadds(scale, lr_hw, paper):
    model = A2N(upscale=scale)
    result = count_flops(model, (3, 6, 8))
    assert result['unhandled'] == {}
    assert result['output_shape'] == [1, 3, 6 * scale, 8 * scale]
    assert set(result['macs_by_op']) == {'conv', 'linear'}
    per_lr_pixel = result['macs_by_op']['conv'] / (6 * 8)
    macs = per_lr_pixel * lr_hw[0] * lr_hw[1] + result['macs_by_op']['linear']
    assert abs(macs - paper) / paper < 0.01, format_count(macs)


@pytest.mark.parametrize(
    'equation,shapes,macs',
    [
        ('bij,bjk->bik', [(2, 3, 4), (2, 4, 5)], 2 * 3 * 4 * 5),
        ('ij,jk', [(3, 4), (4, 5)], 3 * 4 * 5),
        ('...ij,...jk->...ik', [(7, 3, 4), (4, 5)], 7 * 3 * 4 * 5),
        ('ij,jk,kl->il', [(10, 100), (100, 5), (5, 50)], 10 * 100 * 5 + 10 * 5 * 50),
        ('bchw->bhwc', [(1, 2, 3, 4)], 0),
    ],
)
def test_einsum_macs_exact(equation, shapes, macs):
    assert einsum_macs(equation, shapes) == macs


def test_a2n_macs_scale_with_pixels():
    model = A2N(upscale=4, num_block=2)
    a = count_flops(model, (3, 6, 10))
    b = count_flops(model, (3, 12, 20))
    assert b['macs_by_op']['conv'] == 4 * a['macs_by_op']['conv']
    assert a['macs_by_op']['linear'] == b['macs_by_op']['linear'] == 2 * 420
    assert a['params'] == sum(p.numel() for p in model.parameters())


class _Ops(nn.Module):
    """Exercises the extra handles and one op nobody counts (cumprod)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1)  # 4*9*8 per pixel

    def forward(self, x):
        y = self.conv(x)  # 1, 8, 4, 4
        y = F.pixel_shuffle(y, 2)  # 1, 2, 8, 8
        y = F.interpolate(y, scale_factor=2, mode='nearest')  # 1,2,16,16
        y = F.interpolate(y, scale_factor=0.5, mode='bilinear')  # 1,2,8,8
        q = y.flatten(2).transpose(1, 2)  # 1, 64, 2
        a = torch.matmul(q, q.transpose(1, 2))  # 64*2*64
        a = torch.einsum('bij,bjk->bik', a, q)  # 64*64*2
        s = F.scaled_dot_product_attention(q, q, q)  # 64*64*(2+2)
        g = F.grid_sample(y, torch.zeros(1, 8, 8, 2), align_corners=False)
        return torch.cumprod(a, dim=1).sum() + s.sigmoid().sum() + g.mean()


def test_extra_handles_and_unhandled_report():
    result = count_flops(_Ops(), (4, 4, 4))
    by_op = result['macs_by_op']
    assert by_op['conv'] == 16 * 4 * 9 * 8
    assert by_op['matmul'] == 64 * 2 * 64
    assert by_op['einsum'] == 64 * 64 * 2
    assert by_op['scaled_dot_product_attention'] == 64 * 64 * 4
    assert result['macs'] == sum(by_op.values())
    other = result['other_ops']
    assert other['upsample_bilinear2d'] == 4 * 2 * 8 * 8
    assert other['grid_sampler'] == 4 * 2 * 8 * 8
    assert other['sigmoid'] == 64 * 2
    assert 'pixel_shuffle' not in result['unhandled']
    assert 'upsample_nearest2d' not in result['unhandled']
    assert result['unhandled'] == {'aten::cumprod': 1}


class _Video(nn.Module):
    def __init__(self, out_frames):
        super().__init__()
        self.out_frames = out_frames
        self.conv = nn.Conv2d(3, 3, 1, bias=False)

    def forward(self, x):  # N, T, C, H, W
        n, t, c, h, w = x.shape
        y = self.conv(x.reshape(n * t, c, h, w)).reshape(n, t, c, h, w)
        return y if self.out_frames > 1 else y[:, t // 2]


@pytest.mark.parametrize('out_frames,per_frame', [(5, 9 * 16), (1, 45 * 16)])
def test_video_per_frame(out_frames, per_frame):
    result = count_flops(_Video(out_frames), (5, 3, 4, 4))
    assert result['macs'] == 5 * 9 * 16
    assert result['frames'] == out_frames
    assert result['macs_per_frame'] == per_frame


def test_bad_input_shape():
    with pytest.raises(ValueError, match=r'\(C, H, W\) or \(T, C, H, W\)'):
        count_flops(A2N(upscale=2, num_block=1), (1, 3, 8, 8, 8))


@pytest.mark.parametrize(
    'arch, shape, expected',
    [
        ('EDSR', (5, 3, 8, 8), 'EDSR is an image arch: give C H W (channels, height, width)'),
        (
            'DASAA',
            (3, 8, 8),
            'DASAA is a video arch: give T C H W (frames, channels, height, width)',
        ),
        ('DASAA', (5, 3, 8, 8), 'DASAA takes windows of num_frames=3 frames: give T = 3'),
        ('EDSR', (3, -8, 8), 'every size must be at least 1'),
        ('EDSR', (3, 8, 0), 'every size must be at least 1'),
        ('EDSR', (4, 8, 8), 'EDSR takes num_in_ch=3 channels: give C = 3'),
        ('EDSR', (3, 100000, 100000), 'at most 4096 pixels a side and 64 frames'),
        ('EDSR', (3, 8, 8), ''),
        ('DASAA', (3, 3, 8, 8), ''),
        ('Bicubic', (1, 8, 8), ''),
    ],
)
def test_input_shape_problem(arch, shape, expected):
    from basicattn.registry import ARCHS
    from basicattn.utils.flops import input_shape_problem

    kwargs = {'EDSR': dict(num_feat=8, num_block=1), 'DASAA': dict(num_feat=16, num_frames=3)}
    model = ARCHS.build(dict(type=arch, **kwargs.get(arch, {})))
    problem = input_shape_problem(model, shape, num_in_ch=3 if arch == 'EDSR' else None)
    assert problem.startswith(expected) and bool(problem) == bool(expected)


def _tool():
    spec = importlib.util.spec_from_file_location(
        'get_flops_tool', osp.join(REPO_ROOT, 'tools', 'get_flops.py')
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_get_flops_tool(tmp_path, capsys):
    tool = _tool()
    assert (
        tool.main(
            [
                '--arch',
                'A2N',
                '--arch-args',
                '{"upscale": 2, "num_block": 1}',
                '--input-shape',
                '3',
                '8',
                '8',
                '--json',
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result['arch'] == {'type': 'A2N', 'upscale': 2, 'num_block': 1}
    assert result['unhandled'] == {}
    assert result['macs'] == result['macs_by_op']['conv'] + 420

    # -opt reads the file like train/test do: its `scale` reaches the network
    opt = osp.join(REPO_ROOT, 'options', 'train', 'a2n_x2.yml')
    assert tool.main(['-opt', opt, '--input-shape', '3', '6', '6']) == 0
    text = capsys.readouterr().out
    assert 'multiply-adds (MACs)' in text and 'A2N(' in text and 'upscale=2' in text
    assert '(1, 3, 6, 6) -> (1, 3, 12, 12)' in text
    assert 'not counted          : none' in text

    assert tool.main(['--arch', 'NoSuchArch', '--input-shape', '3', '8', '8']) == 2
    err = capsys.readouterr().err
    assert "unknown arch 'NoSuchArch'" in err and 'A2N' in err

    # a wrong rank, a negative or a huge size: one line, before any tracing
    assert tool.main(['--arch', 'EDSR', '--input-shape', '5', '3', '8', '8']) == 2
    assert capsys.readouterr().err == (
        'error: --input-shape 5 3 8 8: EDSR is an image arch: give C H W (channels, height, '
        'width)\n'
    )


@pytest.mark.parametrize(
    'name,kwargs,shape',
    [
        (
            'DKSAN',
            dict(
                num_feat=16,
                num_frames=3,
                upscale=4,
                num_extract_blocks=1,
                num_rcab=(1, 1),
                dksa_layers=(1, 1),
                reduction=4,
                deform_groups=2,
            ),
            (3, 3, 8, 8),
        ),
        (
            'MANA',
            dict(
                num_feat=8,
                num_frames=3,
                num_encoder_blocks=1,
                num_decoder_blocks=1,
                embed_dim=4,
                num_groups=4,
                num_slots=8,
                hr_feat=8,
            ),
            (3, 3, 8, 8),
        ),
        (
            'DASAA',
            dict(
                num_feat=8,
                num_rdb=1,
                rdb_layers=2,
                growth=4,
                reduction=2,
                pab_hidden=4,
                attn_chunk=16,
            ),
            (5, 3, 8, 8),
        ),
    ],
)
def test_every_op_of_the_video_archs_is_counted(name, kwargs, shape):
    """Deformable sampling, tiled attention, ConvLSTM: nothing left uncounted."""
    from basicattn.registry import ARCHS

    result = count_flops(ARCHS.build(dict(type=name, **kwargs)), shape)
    assert result['macs'] > 0 and result['frames'] == 1
    assert not result['unhandled'], result['unhandled']
