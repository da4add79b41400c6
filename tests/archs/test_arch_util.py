"""The building blocks shared by several archs (basicattn/archs/arch_util.py)."""

import pytest
import torch
import torch.nn.functional as F

from basicattn.archs import arch_util, dan_arch, dasaa_blocks, dksan_blocks, edsr_arch
from basicattn.archs.arch_util import (
    MeanShiftMixin,
    RCANChannelAttention,
    add_bicubic_skip,
    check_global_skip,
    conv3x3,
    lrelu,
)
from basicattn.utils.matlab_imresize import imresize


def test_old_import_paths_are_the_shared_ones():
    assert dksan_blocks.conv3x3 is conv3x3 and edsr_arch.conv3x3 is conv3x3
    assert dksan_blocks.lrelu is lrelu
    assert dksan_blocks.RCANChannelAttention is RCANChannelAttention
    assert issubclass(dan_arch.LEAChannelAttention, RCANChannelAttention)
    # DASAA's CAB is the CBAM variant (avg + max pooling), not RCAN's
    assert not issubclass(dasaa_blocks.ChannelAttentionBlock, RCANChannelAttention)


def test_conv3x3_and_lrelu():
    conv = conv3x3(2, 5)
    assert conv.kernel_size == (3, 3) and conv.padding == (1, 1) and conv.bias is not None
    x = torch.tensor([-2.0, 0.0, 3.0])
    torch.testing.assert_close(lrelu(x), torch.tensor([-0.2, 0.0, 3.0]))
    torch.testing.assert_close(lrelu(x, 0.2), torch.tensor([-0.4, 0.0, 3.0]))
    y = x.clone()
    assert lrelu(y, 0.2, inplace=True) is y


def test_channel_attention_keys_and_equation():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 5, 4)
    rcan = RCANChannelAttention(8, 2)
    assert sorted(rcan.state_dict()) == ['down.bias', 'down.weight', 'up.bias', 'up.weight']
    z = x.mean(dim=(2, 3), keepdim=True)
    torch.testing.assert_close(rcan(x), x * torch.sigmoid(rcan.up(F.relu(rcan.down(z)))))
    lea_c = dan_arch.LEAChannelAttention(8, 2)  # DAN's checkpoint names
    assert sorted(lea_c.state_dict()) == [
        'expand.bias',
        'expand.weight',
        'reduce.bias',
        'reduce.weight',
    ]
    lea_c.load_state_dict(
        {
            k.replace('down', 'reduce').replace('up', 'expand'): v
            for k, v in rcan.state_dict().items()
        }
    )
    torch.testing.assert_close(lea_c(x), rcan(x))
    with pytest.raises(ValueError, match='DAN: reduction=16 leaves no channel'):
        dan_arch.LEAChannelAttention(8, 16)


class _Shift(MeanShiftMixin, torch.nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.init_mean_shift(**kwargs)


def test_mean_shift_round_trip_and_no_state():
    shift = _Shift(rgb_mean=(0.1, 0.2, 0.3), img_range=255.0, num_in_ch=3, num_out_ch=3)
    assert shift.state_dict() == {}
    x = torch.rand(1, 3, 4, 4)
    expect = (x - torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1)) * 255.0
    torch.testing.assert_close(shift.shift_in(x), expect)
    torch.testing.assert_close(shift.shift_out(shift.shift_in(x)), x)
    gray = _Shift(rgb_mean=(0.1, 0.2, 0.3), img_range=2.0, num_in_ch=3, num_out_ch=1)
    assert not gray.add_mean_back
    torch.testing.assert_close(
        gray.shift_out(torch.ones(1, 1, 2, 2)), torch.full((1, 1, 2, 2), 0.5)
    )
    with pytest.raises(ValueError, match='^DAN: rgb_mean has 1 values but num_in_ch=3'):
        _Shift(rgb_mean=(0.5,), img_range=1.0, num_in_ch=3, num_out_ch=3, owner='DAN')


def test_global_skip_check_and_add():
    assert check_global_skip('none', 3, 1) == 'none'
    with pytest.raises(ValueError, match=r"^global_skip='x' is not supported"):
        check_global_skip('x', 3, 3)
    with pytest.raises(ValueError, match=r"^DASAA: global_skip='bicubic' needs num_in_ch =="):
        check_global_skip('bicubic', 3, 1, 'DASAA')
    lr, out = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 8, 8)
    assert add_bicubic_skip(out, lr, 2, 'none') is out
    torch.testing.assert_close(add_bicubic_skip(out, lr, 2, 'bicubic'), out + imresize(lr, scale=2))


def test_module_lists_its_blocks():
    assert set(arch_util.__all__) >= {'conv3x3', 'lrelu', 'RCANChannelAttention', 'MeanShiftMixin'}


@pytest.mark.parametrize(
    'arch, kwargs, shape',
    [
        ('EDSR', dict(num_feat=8, num_block=1, upscale=2), (1, 3, 12, 12)),
        ('DAN', dict(num_feat=8, num_block=2, num_res=1, reduction=4, distance=1, upscale=2),
         (1, 3, 12, 12)),
        ('DASAA', dict(num_feat=8, num_rdb=1, rdb_layers=2, growth=4, reduction=2, pab_hidden=4,
                       attn_chunk=16), (1, 5, 3, 12, 12)),
    ],
)  # fmt: skip
def test_bicubic_skip_starts_as_bicubic(arch, kwargs, shape):
    """With global_skip='bicubic' the untrained network outputs bicubic (no mean on top)."""
    from basicattn.registry import ARCHS
    from basicattn.utils.matlab_imresize import imresize

    torch.manual_seed(0)
    net = ARCHS.build(dict(type=arch, global_skip='bicubic', **kwargs)).eval()
    x = torch.rand(*shape)
    centre = x[:, shape[1] // 2] if len(shape) == 5 else x
    with torch.no_grad():
        out = net(x)
    scale = out.shape[-1] // shape[-1]
    torch.testing.assert_close(out, imresize(centre, scale=scale), rtol=0, atol=1e-6)
    # and it learns: the zeroed conv gets a gradient
    net.train()
    net(x).sub(1).abs().mean().backward()
    assert net.conv_last.weight.grad.abs().sum() > 0
