"""A2N's ablation structures (paper Tables 3, 4, 6, 8): parameter counts of the
shipped option files against the paper, and what each variant computes."""

import fnmatch
import glob
import os.path as osp

import pytest
import torch

from basicattn.analysis.taps import declared_taps, record_taps, tap_names
from basicattn.archs.a2n_arch import A2N

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ABLATION_DIR = osp.join(REPO_ROOT, 'options', 'train', 'a2n_ablations')

#: option file -> (the paper's count in K at x4, or None where it prints none;
#: our exact count). Chen et al. 2021 (arXiv:2104.09497), Tables 3, 4, 6, 8.
COUNTS = {
    'table3_case1': (787, 787_331),
    'table3_case2': (1035, 1_034_835),
    'table3_case3': (1040, 1_040_739),
    'table3_case4': (791, 790_835),
    'table3_case5': (794, 794_051),
    'table3_case6': (1042, 1_041_555),
    'table3_case7': (1047, 1_047_459),
    'table3_case8': (798, 797_555),
    'table4_non_attn_only': (208, 323_299),
    'table4_attn_only': (810, 810_339),
    'table4_addition': (1040, 1_040_739),
    'table4_concatenation': (1092, 1_091_939),
    'table4_adaptive_weights': (1040, 1_040_771),
    'table4_s': (678, 678_395),
    'table4_m': (843, 842_659),
    'table4_a2n': (1047, 1_047_459),
    'table6_no_op': (817, 817_059),
    'table8_s_base': (None, 810_339),
    'table8_s_a2n': (None, 1_047_459),
    'table8_m_base': (None, 4_004_251),
    'table8_m_a2n': (None, 5_217_691),
    'table8_l_base': (None, 7_938_459),
    'table8_l_a2n': (None, 10_365_339),
}

#: Rows no structure we could derive matches to 1K (docs/models/a2n.md,
#: "Ablation structures", explains the reading taken): name -> ours - paper.
MISMATCH = {'table4_non_attn_only': 115_299}


def _build(name):
    from basicattn.archs.build import build_network
    from basicattn.config import read_options

    opt = read_options(osp.join(ABLATION_DIR, f'{name}.yml'), [], purpose='train')
    assert opt['scale'] == 4
    return build_network(opt['network_g'], f'{name}.yml: network_g')


def test_one_file_per_row():
    names = {osp.splitext(osp.basename(p))[0] for p in glob.glob(osp.join(ABLATION_DIR, '*.yml'))}
    assert names == set(COUNTS)


@pytest.mark.parametrize('name', sorted(COUNTS))
def test_parameter_count_against_the_paper(name):
    paper_k, ours = COUNTS[name]
    assert sum(p.numel() for p in _build(name).parameters()) == ours
    if paper_k is None:  # Table 8 prints no counts; its S rows are Table 4's
        return
    if name in MISMATCH:
        assert ours - 1000 * paper_k == MISMATCH[name]
    else:  # the paper rounds to 1K
        assert abs(ours - 1000 * paper_k) < 1000, (name, ours, paper_k)


def test_table8_s_rows_are_table4_rows():
    assert COUNTS['table8_s_base'][1] == COUNTS['table4_attn_only'][1]
    assert COUNTS['table8_s_a2n'][1] == COUNTS['table4_a2n'][1]


def test_doc_page_lists_every_row():
    with open(osp.join(REPO_ROOT, 'docs', 'models', 'a2n.md'), encoding='utf-8') as f:
        page = f.read()
    for name, (_, ours) in COUNTS.items():
        assert f'`{name}.yml`' in page, name
        assert f'{ours:,}' in page, (name, ours)


# --- what the variants compute (tiny widths) -------------------------------------------------

VARIANTS = {
    'a2n': dict(),
    'channel': dict(attention='channel', channel_reduction=4),
    'spatial': dict(attention='spatial'),
    'channel_plus_spatial': dict(attention='channel', non_attention='spatial', channel_reduction=4),
    'add': dict(fusion='add'),
    'concat': dict(fusion='concat'),
    'adaptive': dict(fusion='adaptive'),
    'no_op': dict(non_attention='identity'),
    'attn_only': dict(non_attention='none', fusion='none'),
    'non_attn_only': dict(attention='none', fusion='none'),
}


def tiny(**kwargs):
    torch.manual_seed(0)
    cfg = dict(num_feat=8, unf=6, num_block=2, upscale=2)
    cfg.update(kwargs)
    return A2N(**cfg).eval()


@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_forward_backward_and_inference_path(variant):
    model = tiny(**VARIANTS[variant])
    x = torch.rand(2, 3, 6, 7)
    out = model(x)
    assert out.shape == (2, 3, 12, 14)
    out.mean().backward()
    assert all(p.grad is not None for p in model.parameters()), variant
    with torch.no_grad():
        fast = model(x)
    # the no-grad path runs the same kernels in place: equal up to float rounding
    torch.testing.assert_close(fast, out.detach(), rtol=0, atol=1e-6)


@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_taps_present_exactly_where_the_quantity_exists(variant):
    kwargs = VARIANTS[variant]
    model = tiny(**kwargs)
    names = set(tap_names(model))
    weighted = kwargs.get('fusion', 'dynamic') in ('dynamic', 'adaptive')
    has_attention = kwargs.get('attention', 'channel_spatial') != 'none'
    for i in range(2):
        assert (f'blocks.{i}.pi_att' in names) == weighted
        assert (f'blocks.{i}.pi_na' in names) == weighted
        for tap in ('attention_map', 'attention_input', 'attention_output'):
            assert (f'blocks.{i}.{tap}' in names) == has_attention
    # every tap is one the class declares
    patterns = [p.replace('{i}', '*').replace('{j}', '*') for p in declared_taps(model)]
    assert all(any(fnmatch.fnmatchcase(n, p) for p in patterns) for n in names)


@pytest.mark.parametrize('attention,shape', [('channel', (1, 8, 1, 1)), ('spatial', (1, 1, 6, 7))])
def test_gate_shapes(attention, shape):
    model = tiny(attention=attention, channel_reduction=4)
    with torch.no_grad(), record_taps(model, 'blocks.*.attention_map') as rec:
        model(torch.rand(1, 3, 6, 7))
    gate = rec['blocks.1.attention_map']
    assert gate.shape == shape
    assert ((gate > 0) & (gate < 1)).all()


def test_adaptive_weights_are_input_independent_and_learned():
    model = tiny(fusion='adaptive')
    with torch.no_grad(), record_taps(model, 'blocks.*.pi_*') as rec:
        model(torch.rand(2, 3, 6, 7))
    torch.testing.assert_close(rec['blocks.0.pi_att'], torch.full((2,), 0.5))
    torch.testing.assert_close(rec['blocks.0.pi_na'], torch.full((2,), 0.5))
    model.train()
    model(torch.rand(1, 3, 6, 7)).mean().backward()
    assert model.blocks[0].fusion_weights.grad.abs().sum() > 0


def test_adaptive_with_unit_weights_is_addition():
    added, adaptive = tiny(fusion='add'), tiny(fusion='adaptive')
    missing = adaptive.load_state_dict(added.state_dict(), strict=False).missing_keys
    assert missing == [f'blocks.{i}.fusion_weights' for i in range(2)]
    with torch.no_grad():
        for block in adaptive.blocks:
            block.fusion_weights.fill_(1.0)
        x = torch.rand(1, 3, 6, 7)
        # att * 1 + non_att * 1 vs att + non_att: same values, different op order
        torch.testing.assert_close(adaptive(x), added(x), rtol=0, atol=1e-6)


def test_concatenation_with_identity_halves_is_addition():
    added, concat = tiny(fusion='add'), tiny(fusion='concat')
    concat.load_state_dict(added.state_dict(), strict=False)
    with torch.no_grad():
        eye = torch.eye(8)[:, :, None, None]
        for block in concat.blocks:
            block.fuse.weight.copy_(torch.cat([eye, eye], dim=1))
        x = torch.rand(1, 3, 6, 7)
        # a 1x1 conv with [I | I] sums the halves; rounding differs from a plain add
        torch.testing.assert_close(concat(x), added(x), rtol=0, atol=1e-5)


def test_no_op_branch_passes_the_feature_through():
    model = tiny(non_attention='identity')
    assert sum(p.numel() for p in model.blocks[0].non_attention.parameters()) == 0
    # with pi_att forced to 0 the block is conv_out(lrelu(lrelu(conv_in(x)))) + x
    block, x = model.blocks[0], torch.rand(1, 8, 5, 5)
    with torch.no_grad():
        handle = block.pi_att.register_forward_hook(lambda m, i, o: torch.zeros_like(o))
        handle2 = block.pi_na.register_forward_hook(lambda m, i, o: torch.ones_like(o))
        got = block(x)
        handle.remove()
        handle2.remove()
        feat = torch.nn.functional.leaky_relu(block.conv_in(x), 0.2)
        want = block.conv_out(torch.nn.functional.leaky_relu(feat, 0.2)) + x
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    'kwargs,match',
    [
        (dict(fusion='sum'), 'fusion must be one of'),
        (dict(attention='cbam'), 'attention must be one of'),
        (dict(non_attention='none'), "set fusion='none'"),
        (dict(attention='none'), "set fusion='none'"),
        (dict(fusion='none'), "fusion='none' needs"),
        (dict(attention='none', non_attention='none', fusion='none'), 'cannot both'),
        (dict(attention='channel', channel_reduction=16), 'channel_reduction=16'),
    ],
)
def test_bad_combinations(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny(**kwargs)
