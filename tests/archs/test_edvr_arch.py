"""EDVR: BasicSR's state-dict layout loads strictly, variants, the DCN pack.

:func:`basicsr_edvr_layout` lists the keys and shapes of BasicSR's ``EDVR``
(``basicsr/archs/edvr_arch.py`` and ``DCNv2Pack`` of ``arch_util.py``),
written from reading that code, independently of our module: a layout our
module does not produce makes the strict load fail.
"""

import pytest
import torch

from basicattn.archs.edvr_arch import EDVR, EDVR_L, EDVR_X16_DKSAN
from basicattn.archs.edvr_blocks import DCNv2Pack


def _conv(prefix, cin, cout, k):
    return {f'{prefix}.weight': (cout, cin, k, k), f'{prefix}.bias': (cout,)}


def _resblock(prefix, c):
    return {**_conv(f'{prefix}.conv1', c, c, 3), **_conv(f'{prefix}.conv2', c, c, 3)}


def _dcn_pack(prefix, c, dg):
    # ModulatedDeformConvPack: weight (O, C, 3, 3), bias, conv_offset C -> dg * 3 * 9
    return {**_conv(prefix, c, c, 3), **_conv(f'{prefix}.conv_offset', c, dg * 3 * 9, 3)}


def basicsr_edvr_layout(
    c=64, t=5, dg=8, n_extract=5, n_recon=10, with_tsa=True, predeblur=False, hr_in=False
):
    """``{key: shape}`` of BasicSR's EDVR state dict (its ``params``)."""
    keys = {}
    if predeblur:
        p = 'predeblur'
        keys.update(_conv(f'{p}.conv_first', 3, c, 3))
        if hr_in:
            keys.update(_conv(f'{p}.stride_conv_hr1', c, c, 3))
            keys.update(_conv(f'{p}.stride_conv_hr2', c, c, 3))
        keys.update(_conv(f'{p}.stride_conv_l2', c, c, 3))
        keys.update(_conv(f'{p}.stride_conv_l3', c, c, 3))
        for name in ('resblock_l3', 'resblock_l2_1', 'resblock_l2_2'):
            keys.update(_resblock(f'{p}.{name}', c))
        for i in range(5):
            keys.update(_resblock(f'{p}.resblock_l1.{i}', c))
        keys.update(_conv('conv_1x1', c, c, 1))
    else:
        keys.update(_conv('conv_first', 3, c, 3))
    for i in range(n_extract):
        keys.update(_resblock(f'feature_extraction.{i}', c))
    for name in ('conv_l2_1', 'conv_l2_2', 'conv_l3_1', 'conv_l3_2'):
        keys.update(_conv(name, c, c, 3))
    a = 'pcd_align'
    for level in ('l3', 'l2', 'l1'):
        keys.update(_conv(f'{a}.offset_conv1.{level}', 2 * c, c, 3))
        if level == 'l3':
            keys.update(_conv(f'{a}.offset_conv2.{level}', c, c, 3))
        else:
            keys.update(_conv(f'{a}.offset_conv2.{level}', 2 * c, c, 3))
            keys.update(_conv(f'{a}.offset_conv3.{level}', c, c, 3))
            keys.update(_conv(f'{a}.feat_conv.{level}', 2 * c, c, 3))
        keys.update(_dcn_pack(f'{a}.dcn_pack.{level}', c, dg))
    keys.update(_conv(f'{a}.cas_offset_conv1', 2 * c, c, 3))
    keys.update(_conv(f'{a}.cas_offset_conv2', c, c, 3))
    keys.update(_dcn_pack(f'{a}.cas_dcnpack', c, dg))
    if with_tsa:
        f = 'fusion'
        keys.update(_conv(f'{f}.temporal_attn1', c, c, 3))
        keys.update(_conv(f'{f}.temporal_attn2', c, c, 3))
        keys.update(_conv(f'{f}.feat_fusion', t * c, c, 1))
        keys.update(_conv(f'{f}.spatial_attn1', t * c, c, 1))
        keys.update(_conv(f'{f}.spatial_attn2', 2 * c, c, 1))
        keys.update(_conv(f'{f}.spatial_attn3', c, c, 3))
        keys.update(_conv(f'{f}.spatial_attn4', c, c, 1))
        keys.update(_conv(f'{f}.spatial_attn5', c, c, 3))
        keys.update(_conv(f'{f}.spatial_attn_l1', c, c, 1))
        keys.update(_conv(f'{f}.spatial_attn_l2', 2 * c, c, 3))
        keys.update(_conv(f'{f}.spatial_attn_l3', c, c, 3))
        keys.update(_conv(f'{f}.spatial_attn_add1', c, c, 1))
        keys.update(_conv(f'{f}.spatial_attn_add2', c, c, 1))
    else:
        keys.update(_conv('fusion', t * c, c, 1))
    for i in range(n_recon):
        keys.update(_resblock(f'reconstruction.{i}', c))
    keys.update(_conv('upconv1', c, 4 * c, 3))
    keys.update(_conv('upconv2', c, 4 * 64, 3))
    keys.update(_conv('conv_hr', 64, 64, 3))
    keys.update(_conv('conv_last', 64, 3, 3))
    return keys


def synthetic_state_dict(layout, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(shape, generator=g) * 0.01 for k, shape in layout.items()}


TINY = dict(num_feat=16, num_frame=3, deformable_groups=2, num_extract_block=1)


@pytest.mark.parametrize(
    'ours, theirs',
    [
        ({}, {}),  # EDVR-M, the x4 defaults
        (dict(with_tsa=False), dict(with_tsa=False)),
        (
            dict(with_predeblur=True, hr_in=True, upscale=1, num_reconstruct_block=2),
            dict(predeblur=True, hr_in=True, n_recon=2),
        ),
        (dict(with_predeblur=True, num_reconstruct_block=2), dict(predeblur=True, n_recon=2)),
    ],
    ids=['EDVR-M', 'woTSA', 'deblur_hr_in', 'predeblur'],
)
def test_basicsr_layout_loads_strictly(ours, theirs):
    """Names and shapes equal BasicSR's; the loaded tensors are used as given."""
    layout = basicsr_edvr_layout(**theirs)
    net = EDVR(**ours)
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == layout
    state = synthetic_state_dict(layout)
    net.load_state_dict(state, strict=True)
    for key in ('pcd_align.dcn_pack.l2.conv_offset.weight', 'conv_last.bias'):
        assert torch.equal(net.state_dict()[key], state[key])


def test_edvr_l_layout_and_counts():
    layout = basicsr_edvr_layout(c=128, n_recon=40)
    assert {k: tuple(v.shape) for k, v in EDVR(**EDVR_L).state_dict().items()} == layout
    assert sum(torch.Size(s).numel() for s in layout.values()) == 20_633_827
    assert sum(torch.Size(s).numel() for s in basicsr_edvr_layout().values()) == 3_300_131


def test_x16_variant_adds_two_stages():
    """DKSAN's baseline: EDVR-L, 7 frames, four x2 stages; the rest is the x4 layout."""
    net = EDVR(**EDVR_X16_DKSAN)
    layout = basicsr_edvr_layout(c=128, t=7, n_recon=40)
    extra = {**_conv('upconv3', 64, 256, 3), **_conv('upconv4', 64, 256, 3)}
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == {**layout, **extra}
    assert sum(p.numel() for p in net.parameters()) == 20_994_787
    tiny = EDVR(**TINY, num_reconstruct_block=1, upscale=16).eval()
    with torch.no_grad():
        out = tiny(torch.rand(1, 3, 3, 4, 8))
    assert out.shape == (1, 3, 64, 128)


def test_output_is_bilinear_of_reference_when_last_conv_is_zero():
    """The skip is the bilinear upsampling of the *reference* frame (center_frame_idx)."""
    net = EDVR(**TINY, num_reconstruct_block=1, center_frame_idx=0).eval()
    torch.nn.init.zeros_(net.conv_last.weight)
    torch.nn.init.zeros_(net.conv_last.bias)
    x = torch.rand(1, 3, 3, 8, 8)
    with torch.no_grad():
        out = net(x)
    expected = torch.nn.functional.interpolate(x[:, 0], scale_factor=4, mode='bilinear')
    torch.testing.assert_close(out, expected)


def test_frames_are_aligned_to_the_reference_in_one_batch_as_one_by_one():
    """Batching the T alignments equals aligning frame by frame (BasicSR's loop).

    Different batch shapes may run different conv kernels: tolerance, not equality.
    """
    torch.manual_seed(0)
    net = EDVR(**TINY, num_reconstruct_block=1).eval()
    for p in net.pcd_align.parameters():  # non-zero offsets so the DCNs deform
        torch.nn.init.normal_(p, std=0.05)
    x = torch.rand(2, 3, 3, 8, 8)
    with torch.no_grad():
        feats = net.extract(x.flatten(0, 1))
        l2 = torch.nn.functional.leaky_relu(net.conv_l2_1(feats), 0.1)
        l2 = torch.nn.functional.leaky_relu(net.conv_l2_2(l2), 0.1)
        l3 = torch.nn.functional.leaky_relu(net.conv_l3_1(l2), 0.1)
        l3 = torch.nn.functional.leaky_relu(net.conv_l3_2(l3), 0.1)
        pyr = [v.view(2, 3, *v.shape[1:]) for v in (feats, l2, l3)]
        ref = [v[:, 1] for v in pyr]
        one_by_one = torch.stack([net.pcd_align([v[:, i] for v in pyr], ref) for i in range(3)], 1)
        nbr = [v.transpose(0, 1).reshape(6, *v.shape[2:]) for v in pyr]
        batched = net.pcd_align(nbr, [v.repeat(3, 1, 1, 1) for v in ref])
    torch.testing.assert_close(
        batched.view(3, 2, *batched.shape[1:]).transpose(0, 1), one_by_one, atol=1e-5, rtol=1e-4
    )


def test_dcn_pack_predicts_from_the_second_input():
    """offset/mask come from ``feat``; zero conv_offset: a plain conv with mask 0.5."""
    torch.manual_seed(0)
    pack = DCNv2Pack(8, 8, deform_groups=2)
    x, feat = torch.rand(1, 8, 6, 6), torch.rand(1, 8, 6, 6)
    plain = (
        torch.nn.functional.conv2d(x, pack.weight * 0.5, None, padding=1) + pack.bias[:, None, None]
    )
    torch.testing.assert_close(pack(x, feat), plain.view(1, 8, 6, 6), atol=1e-5, rtol=1e-5)
    torch.nn.init.normal_(pack.conv_offset.weight, std=0.1)
    assert not torch.allclose(pack(x, feat), pack(x, feat.flip(-1)))


def test_large_offsets_warn_in_training(monkeypatch):
    """BasicSR's "offset mean > 50" warning, printed by mmengine's logger.

    The logger is replaced by a list: mmengine's handler keeps the stdout of
    whichever test created the logger first, so capturing stdout would
    depend on the order the tests run in.
    """
    import basicattn.archs.edvr_blocks as blocks

    said = []
    monkeypatch.setattr(blocks, 'print_log', lambda msg, *a, **k: said.append(str(msg)))
    pack = DCNv2Pack(8, 8, deform_groups=2)
    torch.nn.init.constant_(pack.conv_offset.bias, 60.0)
    x = torch.rand(1, 8, 4, 4)
    pack.train()(x, x)
    assert len(said) == 1 and 'mean |offset| of a DCN is 60.0 > 50' in said[0]
    pack.eval()(x, x)
    torch.nn.init.constant_(pack.conv_offset.bias, 40.0)
    pack.train()(x, x)
    assert len(said) == 1  # neither in eval mode nor below 50


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(center_frame_idx=5), 'center_frame_idx'),
        (dict(num_feat=12), 'deformable_groups'),
        (dict(hr_in=True, upscale=1), 'with_predeblur'),
        (dict(upscale=1), 'upscale must be 1 with hr_in'),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EDVR(**kwargs)


def test_bad_input_size_names_it():
    net = EDVR(**TINY, num_reconstruct_block=1)
    with pytest.raises(ValueError, match='multiples of 4, got 6x8'):
        net(torch.rand(1, 3, 3, 6, 8))
    with pytest.raises(ValueError, match='built for 3 frames, got 5'):
        net(torch.rand(1, 5, 3, 8, 8))
