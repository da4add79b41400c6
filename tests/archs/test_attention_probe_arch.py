"""AttentionProbe-specific checks: Table 2's sizes, the block choice, the taps.

The generic build/forward/backward test is in test_all_archs.py (arch_cases.py).
"""

import pytest
import torch

from basicattn.archs.attention_probe_arch import AttentionProbe, resolve_attention_blocks
from basicattn.archs.build import build_network
from basicattn.config.options import OptionError, validate_options

#: Table 2 of the paper: the blocks with attention and the published size (M).
TABLE_2 = [
    ('all', 9.2),
    ('none', 4.4),
    ([1, 2, 3, 4, 5], 6.8),
    ([6, 7, 8, 9, 10], 6.8),
    ([2, 4, 6, 8, 10], 6.8),
]

#: Exact counts at x4: 4,388,415 without attention, 479,829 per attention generator.
EXACT = {'all': 9_186_705, 'none': 4_388_415}
HALF = 6_787_560


def count(net):
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize('blocks,paper_m', TABLE_2)
def test_table_2_sizes_to_the_papers_rounding(blocks, paper_m):
    net = AttentionProbe(attention_blocks=blocks)
    n = count(net)
    assert n == EXACT.get(blocks if isinstance(blocks, str) else '', HALF)
    assert round(n / 1e6, 1) == paper_m  # the paper prints 0.1 M


def test_one_generator_weighs_what_the_paper_difference_says():
    """(9.2 M - 4.4 M) / 10 blocks: one 3x3 conv (no bias) + one 1x1 conv (bias) of 219."""
    per_block = (EXACT['all'] - EXACT['none']) // 10
    assert per_block == 219 * 219 * 9 + 219 * 219 + 219 == 479_829


@pytest.mark.parametrize(
    'value,expected',
    [
        ('all', (1, 2, 3, 4)),
        ('none', ()),
        ([4, 1], (1, 4)),
        ((2,), (2,)),
    ],
)
def test_attention_blocks_are_one_based(value, expected):
    assert resolve_attention_blocks(value, 4) == expected
    net = AttentionProbe(num_feat=4, unf=4, num_block=4, upscale=2, attention_blocks=value)
    with_attention = [i + 1 for i, block in enumerate(net.blocks) if block.has_attention]
    assert tuple(with_attention) == expected
    # a plain block has no generator and no tap: it is a basic residual block
    for i, block in enumerate(net.blocks):
        assert hasattr(block, 'generator') == (i + 1 in expected)
        assert hasattr(block, 'attention_map') == (i + 1 in expected)


@pytest.mark.parametrize(
    'value,message',
    [
        ([0], '0 is not a block number; the blocks are numbered 1..10 (1-based'),
        ([11], '11 is not a block number'),
        ([3, 3], 'names block 3 twice'),
        ([], "write 'none'"),
        (['1'], "'1' is not a block number"),
        ([True], 'True is not a block number'),
        ('some', "expects Literal['all', 'none'] or List[int], got str 'some'"),
    ],
)
def test_bad_block_lists_are_one_line_option_errors(value, message):
    with pytest.raises(OptionError) as err:
        build_network({'type': 'AttentionProbe', 'attention_blocks': value})
    text = str(err.value)
    assert '\n' not in text and text.startswith('network_g: ') and message in text, text


def test_the_option_validator_checks_the_type_before_building(tmp_path):
    opt = {
        'name': 'probe',
        'scale': 4,
        'datasets': {},
        'network_g': {'type': 'AttentionProbe', 'attention_blocks': 5},
    }
    with pytest.raises(OptionError) as err:
        validate_options(opt, source='probe.yml', purpose='test')
    assert "network_g.attention_blocks: AttentionProbe expects Literal['all', 'none'] or " in str(
        err.value
    )


def test_plain_blocks_compute_x_plus_conv_and_gates_multiply():
    torch.manual_seed(0)
    net = AttentionProbe(num_feat=4, unf=4, num_block=2, upscale=2, attention_blocks=[2]).eval()
    x = torch.randn(1, 4, 5, 5)
    plain, gated = net.blocks
    with torch.no_grad():
        body = plain.body(torch.nn.functional.leaky_relu(x, 0.2))
        torch.testing.assert_close(plain(x), x + body)
        gate = gated.generator(x)
        body = gated.body(torch.nn.functional.leaky_relu(x, 0.2))
        torch.testing.assert_close(gated(x), x + body * gate)


def test_the_attention_map_tap_sees_every_pixel_and_channel():
    torch.manual_seed(0)
    net = AttentionProbe(num_feat=6, unf=4, num_block=3, upscale=4, attention_blocks=[1, 3])
    assert set(AttentionProbe.TAPS) == {'blocks.{i}.attention_map'}
    seen = {}
    for name, module in net.named_modules():
        if name.endswith('attention_map'):
            module.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o))
    out = net(torch.rand(2, 3, 5, 7))
    assert out.shape == (2, 3, 20, 28)
    assert sorted(seen) == ['blocks.0.attention_map', 'blocks.2.attention_map']
    for gate in seen.values():
        assert gate.shape == (2, 6, 5, 7)  # channel- and spatial-wise: one per pixel and channel
        assert bool(((gate > 0) & (gate < 1)).all())


def test_scales_and_the_bilinear_skip():
    net = AttentionProbe(num_feat=4, unf=4, num_block=1, upscale=3)
    torch.nn.init.zeros_(net.conv_last.weight)
    torch.nn.init.zeros_(net.conv_last.bias)
    x = torch.rand(1, 3, 4, 5)
    expected = torch.nn.functional.interpolate(x, scale_factor=3, mode='bilinear')
    torch.testing.assert_close(net(x), expected)
    with pytest.raises(ValueError, match='upscale must be 2, 3 or 4'):
        AttentionProbe(upscale=8)
