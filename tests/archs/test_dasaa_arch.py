"""DASAA: sizes, the PAB/CAB/SAAM equations, chunked 2-D attention, the
morphological mask, the ConvLSTM state / sequence mode and Table IV's
ablations. (The generic build/forward/backward test is test_all_archs.py;
the attention and morphology helpers are tested in tests/ops/.)"""

import pytest
import torch
import torch.nn.functional as F

from basicattn.archs.dasaa_arch import DASAA, DASAA_VARIANTS
from basicattn.archs.dasaa_blocks import (
    ChannelAttentionBlock,
    ConvLSTMCell,
    MorphologicalMask,
    PositionAttention,
    SelfAttentionAlignment,
)
from basicattn.registry import ARCHS

TINY = dict(num_feat=8, num_rdb=2, rdb_layers=2, growth=4, reduction=2, pab_hidden=4)
PAPER_COUNT = 1_752_991


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def tiny(seed=0, **kwargs):
    torch.manual_seed(seed)
    return DASAA(**dict(TINY, **kwargs))


def clip(n=1, h=6, w=7, seed=1, t=5):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, t, 3, h, w, generator=gen)


# ----------------------------------------------------------------- sizes --
def test_default_parameter_count():
    net = ARCHS.build(dict(type='DASAA'))
    assert n_params(net) == PAPER_COUNT  # paper Table III: 1.8M
    # the authors' 1,841,419 less their unused DAM conv-ReLU-conv (73,856),
    # less their per-channel PAB (16,576 vs our 1,236), plus RDB biases (768)
    assert 1_841_419 - 73_856 - (16_576 - 1_236) + 768 == PAPER_COUNT


def test_parameter_count_by_hand():
    c, g, hid, r = 8, 4, 4, 2
    conv = lambda cin, cout, k: cin * cout * k * k + cout  # noqa: E731
    rdb = conv(c, g, 3) + conv(c + g, g, 3) + conv(c + 2 * g, c, 1)
    pab = conv(1, hid, 3) + conv(hid, 1, 3) + conv(2, 1, 3)
    cab = 2 * (conv(c, c // r, 1) + conv(c // r, c, 1))
    saam = 3 * conv(c, c, 1) + conv(2 * c + 1, c, 1)
    expected = (
        conv(15, c, 3)
        + conv(c, c, 3)
        + 2 * rdb
        + pab
        + cab
        + saam
        + conv(c, 16 * c, 3)
        + conv(2 * c, 4 * c, 3)
        + conv(c, 3, 3)
    )
    assert n_params(tiny()) == expected
    assert n_params(tiny(use_rdb=False)) == expected - 2 * rdb
    assert n_params(tiny(use_mask=False)) == expected - c
    assert n_params(tiny(use_lstm=False)) == expected - conv(2 * c, 4 * c, 3)
    assert n_params(tiny(branches='cab')) == expected - pab
    assert n_params(tiny(branches='pab')) == expected - cab
    assert n_params(tiny(branches='swapped')) == expected


def test_registered_shapes_and_errors():
    assert ARCHS.get('DASAA') is DASAA
    net = tiny().eval()
    with torch.no_grad():
        assert net(clip(2, 5, 9)).shape == (2, 3, 20, 36)
        assert tiny(upscale=2)(clip()).shape == (1, 3, 12, 14)
        assert tiny(num_frames=3)(clip(t=3)).shape == (1, 3, 24, 28)
    with pytest.raises(ValueError, match=r'5-D \(N, T, C, H, W\)'):
        net(torch.rand(1, 15, 6, 6))
    with pytest.raises(ValueError, match='T=5 frames'):
        net(clip(t=3))
    for bad, match in [
        (dict(branches='none'), "branches='none'"),
        (dict(global_skip='x'), "global_skip='x'"),
        (dict(attn_chunk=0), 'attn_chunk'),
        (dict(pab_kernel=4), 'pab_kernel must be odd'),
        (dict(reduction=16), 'reduction=16 leaves no channel'),
        (dict(num_rdb=0), 'num_rdb must be a positive int'),
        (dict(mask_open_size=2), 'open_size'),
    ]:
        with pytest.raises(ValueError, match=match):
            tiny(**bad)


def test_runs_on_meta_device():
    """No host round trip anywhere (the mask included): the whole forward
    runs on the shape-only 'meta' device."""
    net = tiny(attn_chunk=7).to('meta')
    out = net(torch.empty(2, 5, 3, 6, 6, device='meta'))
    assert out.device.type == 'meta' and out.shape == (2, 3, 24, 24)


# ----------------------------------------------------------- PAB and CAB --
def test_pab_equation_with_shared_residual_block():
    torch.manual_seed(0)
    pab = PositionAttention(hidden=4, kernel_size=3)
    x = torch.randn(2, 8, 5, 6)
    rb = pab.res_block

    def res(m):
        return m + rb.conv2(F.relu(rb.conv1(m)))

    x_a = res(x.mean(1, keepdim=True))  # same weights ...
    x_m = res(x.amax(1, keepdim=True))  # ... for both maps
    att = torch.sigmoid(pab.fuse(torch.cat([x_a, x_m], 1)))
    assert pab.attention_map(x).shape == (2, 1, 5, 6)
    torch.testing.assert_close(pab(x), x * att)  # eq. 6


def test_cab_equation():
    torch.manual_seed(0)
    cab = ChannelAttentionBlock(8, 2)
    x = torch.randn(2, 8, 5, 6)
    f_a = cab.mlp_avg(F.adaptive_avg_pool2d(x, 1))
    f_m = cab.mlp_max(F.adaptive_max_pool2d(x, 1))
    assert cab.mlp_avg[0].out_channels == 4
    torch.testing.assert_close(cab(x), torch.sigmoid(f_a + f_m) * x)  # eq. 7


def test_model_chunked_equals_unchunked():
    x = clip(2, 6, 7)
    dense = tiny(attn_chunk=None)
    for chunk in (5, 13):
        net = tiny(attn_chunk=chunk)
        torch.testing.assert_close(net(x), dense(x), rtol=0, atol=1e-5)


# ------------------------------------------------------------------ SAAM --
def _saam_reference(saam, f_p, f_c):
    """Dense 2-D reference with explicit HW x HW matrices M_pc and M_cp."""

    def tok(t):
        return t.flatten(2).transpose(1, 2)  # (B, HW, C)

    b, c, h, w = f_p.shape
    m_pc = torch.softmax(tok(saam.to_q(f_p)) @ tok(saam.to_k(f_c)).mT, -1)
    m_cp = torch.softmax(tok(saam.to_q(f_c)) @ tok(saam.to_k(f_p)).mT, -1)
    ref = (m_pc @ tok(saam.to_v(f_c))).transpose(1, 2).reshape(b, c, h, w)
    mask = saam.mask(m_cp.sum(1).reshape(b, 1, h, w).detach())
    return saam.fuse(torch.cat([f_p, ref, mask], 1)), m_pc, m_cp


def test_saam_equals_dense_reference_and_is_2d():
    torch.manual_seed(0)
    saam = SelfAttentionAlignment(8, chunk_size=6)
    f_p, f_c = torch.randn(2, 8, 5, 6), torch.randn(2, 8, 5, 6)
    ref, m_pc, _ = _saam_reference(saam, f_p, f_c)
    torch.testing.assert_close(saam(f_p, f_c), ref, rtol=0, atol=1e-5)
    # full 2-D: the first query attends to keys in every row of F_c
    assert m_pc.shape == (2, 30, 30)
    rows_attended = m_pc[0, 0].reshape(5, 6).sum(1)
    assert (rows_attended > 0).all()


def test_saam_mask_has_no_gradient_and_lower_part_none():
    torch.manual_seed(0)
    saam = SelfAttentionAlignment(8, chunk_size=4)
    f_p = torch.randn(1, 8, 5, 6, requires_grad=True)
    f_c = torch.randn(1, 8, 5, 6, requires_grad=True)
    mask = saam.validity_mask(f_p, f_c)
    assert not mask.requires_grad and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    saam(f_p, f_c).sum().backward()
    assert saam.fuse.weight.grad[:, -1].abs().sum() > 0  # mask channel trains
    no_mask = SelfAttentionAlignment(8, use_mask=False)
    assert no_mask.mask is None and no_mask.fuse.in_channels == 16


def test_mask_follows_coverage_threshold():
    saam = SelfAttentionAlignment(4, mask_open_size=0, mask_close_radius=0)
    f = torch.randn(1, 4, 3, 4)
    h, w = f.shape[-2:]
    with torch.no_grad():
        _, _, m_cp = _saam_reference(saam, f, f.flip(-1))
    cov = m_cp.sum(1).reshape(1, 1, h, w)
    torch.testing.assert_close(saam.validity_mask(f, f.flip(-1)), (cov > 0.1).float())


# ------------------------------------------------------- morphological mask --
def test_morphological_mask_cleans_invalid_region():
    morph = MorphologicalMask(threshold=0.1)
    cov = torch.ones(1, 1, 20, 20)
    cov[..., 3, 3] = 0.0  # an isolated invalid speck
    cov[..., 8:16, 8:16] = 0.0  # an invalid region ...
    cov[..., 11, 11] = 1.0  # ... with a one-pixel hole
    mask = morph(cov)
    assert mask[0, 0, 3, 3] == 1  # speck removed by the opening
    assert mask[0, 0, 11, 11] == 0  # hole filled by the closing
    assert (mask[0, 0, 8:16, 8:16] == 0).all()
    assert mask.sum() == 400 - 64  # nothing else changed
    raw = MorphologicalMask(0.1, open_size=0, close_radius=0)(cov)
    assert raw[0, 0, 3, 3] == 0 and raw[0, 0, 11, 11] == 1


# -------------------------------------------------- ConvLSTM and sequences --
def test_convlstm_equations_and_state_checks():
    torch.manual_seed(0)
    cell = ConvLSTMCell(3, 4)
    x = torch.randn(2, 3, 5, 6)
    h0, c0 = torch.randn(2, 4, 5, 6), torch.randn(2, 4, 5, 6)
    i, f, g, o = cell.gates(torch.cat([x, h0], 1)).chunk(4, 1)
    c1 = torch.sigmoid(f) * c0 + torch.sigmoid(i) * torch.tanh(g)
    h1 = torch.sigmoid(o) * torch.tanh(c1)
    out, (h, c) = cell(x, (h0, c0))
    torch.testing.assert_close(c, c1)
    torch.testing.assert_close(h, h1)
    assert out is h
    zeros = torch.zeros(2, 4, 5, 6)
    torch.testing.assert_close(cell(x)[0], cell(x, (zeros, zeros))[0])
    with pytest.raises(ValueError, match=r'state h has shape \(1, 4, 5, 6\)'):
        cell(x, (zeros[:1], zeros[:1]))
    with pytest.raises(ValueError, match='tuple'):
        cell(x, zeros)


def test_sequence_mode_carries_state():
    net = tiny()
    windows = torch.rand(1, 3, 5, 3, 6, 7, generator=torch.Generator().manual_seed(2))
    out0, state = net(windows[:, 0], return_state=True)
    torch.testing.assert_close(out0, net(windows[:, 0]))  # zero-state default
    assert [s.shape for s in state] == [(1, 8, 24, 28)] * 2
    out1, state1 = net(windows[:, 1], state, return_state=True)
    assert not torch.allclose(out1, net(windows[:, 1]))  # state matters
    seq, final = net.forward_sequence(windows, return_state=True)
    assert seq.shape == (1, 3, 3, 24, 28)
    torch.testing.assert_close(seq[:, 0], out0)
    torch.testing.assert_close(seq[:, 1], out1)
    torch.testing.assert_close(seq[:, 2], net(windows[:, 2], state1))
    torch.testing.assert_close(final[1], net(windows[:, 2], state1, return_state=True)[1][1])
    # the state keeps the graph: frame 2's loss reaches frame 0's input
    w = windows.clone().requires_grad_()
    net.forward_sequence(w)[:, 2].sum().backward()
    assert w.grad[:, 0].abs().sum() > 0
    with pytest.raises(ValueError, match=r'\(N, L, T, C, H, W\)'):
        net.forward_sequence(windows[:, 0])
    with pytest.raises(ValueError, match='another batch or frame size'):
        net(clip(h=5), state)


# ----------------------------------------------------- Table IV ablations --
def _saam_inputs(net, x):
    seen = []
    hook = net.dam.saam.register_forward_pre_hook(lambda mod, args: seen.append(args))
    out = net(x)
    hook.remove()
    return out, seen[0]


def test_variants_table_iv():
    models = {f'model{i}' for i in range(1, 7)}
    assert set(DASAA_VARIANTS) == {'DASAA'} | models
    for kwargs in DASAA_VARIANTS.values():
        out = tiny(**kwargs)(clip())
        assert out.shape == (1, 3, 24, 28) and torch.isfinite(out).all()


def test_ablation_without_rdb():
    full, net = tiny(), tiny(use_rdb=False)
    assert isinstance(net.rdbs, torch.nn.Identity)
    net.load_state_dict(full.state_dict(), strict=False)
    assert not torch.allclose(net(clip()), full(clip()))


def test_ablation_without_mask(monkeypatch):
    full, net = tiny(), tiny(use_mask=False)
    assert net.dam.saam.mask is None
    state = full.state_dict()
    state['dam.saam.fuse.weight'] = state['dam.saam.fuse.weight'][:, :-1]
    net.load_state_dict(state)
    with torch.no_grad():
        full.dam.saam.fuse.weight[:, -1] = 0  # mask channel switched off
    monkeypatch.setattr(
        SelfAttentionAlignment, 'validity_mask', lambda *a: pytest.fail('lower part computed')
    )
    out = net(clip())  # never computes the lower part
    monkeypatch.undo()
    torch.testing.assert_close(out, full(clip()))


def test_ablation_without_lstm():
    full, net = tiny(), tiny(use_lstm=False)
    assert net.lstm is None
    net.load_state_dict(full.state_dict(), strict=False)
    out, state = net(clip(), return_state=True)
    assert state is None
    assert not torch.allclose(out, full(clip()))
    with pytest.raises(ValueError, match='no LSTM'):
        net(clip(), full(clip(), return_state=True)[1])


@pytest.mark.parametrize('branches', ['pab', 'cab', 'swapped'])
def test_ablation_branches(branches):
    full, net = tiny(), tiny(branches=branches)
    net.load_state_dict(full.state_dict(), strict=False)
    x = clip()
    out_full, (f_p, f_c) = _saam_inputs(full, x)
    out, (a, b) = _saam_inputs(net, x)
    if branches == 'pab':  # model 5: CAB removed, PAB cloned
        assert net.dam.cab is None and a is b
        torch.testing.assert_close(a, f_p)
    elif branches == 'cab':  # model 4: PAB removed, CAB cloned
        assert net.dam.pab is None and a is b
        torch.testing.assert_close(a, f_c)
    else:  # model 6: positions exchanged
        torch.testing.assert_close(a, f_c)
        torch.testing.assert_close(b, f_p)
    assert not torch.allclose(out, out_full)


def test_global_skip_adds_bicubic_centre_frame():
    from basicattn.utils.matlab_imresize import imresize

    x = clip()
    plain, skip = tiny(), tiny(global_skip='bicubic')
    # untrained, the skip model is exactly bicubic (its last conv starts at 0)
    torch.testing.assert_close(skip(x), imresize(x[:, 2], scale=4), rtol=0, atol=0)
    skip.load_state_dict(plain.state_dict())
    torch.testing.assert_close(skip(x) - plain(x), imresize(x[:, 2], scale=4), rtol=0, atol=1e-5)


# ---------------------------------------------------------------- row mode --
def _saam_row_brute_force(saam, f_p, f_c):
    """SAAM along rows by brute force: each row of each image on its own."""
    b, c, h, w = f_p.shape
    q, k, v = saam.to_q(f_p), saam.to_k(f_c), saam.to_v(f_c)
    q2, k2 = saam.to_q(f_c), saam.to_k(f_p)  # the lower part, swapped
    ref = torch.zeros(b, c, h, w)
    cov = torch.zeros(b, 1, h, w)
    for n in range(b):
        for y in range(h):
            att = torch.softmax(q[n, :, y].T @ k[n, :, y], -1)  # (W, W), softmax over keys
            ref[n, :, y] = (att @ v[n, :, y].T).T
            cov[n, 0, y] = torch.softmax(q2[n, :, y].T @ k2[n, :, y], -1).sum(0)
    mask = saam.mask(cov.detach())
    return saam.fuse(torch.cat([f_p, ref, mask], 1)), cov


@pytest.mark.parametrize('chunk', [None, 2])
def test_saam_row_mode_equals_brute_force_per_row(chunk):
    torch.manual_seed(0)
    saam = SelfAttentionAlignment(8, chunk_size=chunk, mode='row', mask_threshold=1.0)
    f_p, f_c = torch.randn(2, 8, 4, 6), torch.randn(2, 8, 4, 6)
    expected, cov = _saam_row_brute_force(saam, f_p, f_c)
    # chunked softmax vs one softmax per row: float rounding only
    torch.testing.assert_close(saam(f_p, f_c), expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(saam.validity_mask(f_p, f_c), saam.mask(cov))
    # each row's coverage sums to W (every query row of the softmax sums to 1)
    torch.testing.assert_close(cov.sum(-1), torch.full((2, 1, 4), 6.0))


def test_saam_frame_mode_is_unchanged_and_the_default():
    torch.manual_seed(0)
    frame = SelfAttentionAlignment(8, chunk_size=6)
    assert frame.mode == 'frame'
    torch.manual_seed(0)
    explicit = SelfAttentionAlignment(8, chunk_size=6, mode='frame')
    f_p, f_c = torch.randn(1, 8, 5, 6), torch.randn(1, 8, 5, 6)
    ref, _, _ = _saam_reference(frame, f_p, f_c)
    assert torch.equal(frame(f_p, f_c), explicit(f_p, f_c))  # same module, same path
    torch.testing.assert_close(frame(f_p, f_c), ref, rtol=0, atol=1e-5)
    row = SelfAttentionAlignment(8, chunk_size=6, mode='row')
    row.load_state_dict(frame.state_dict())  # same weights, other extent
    assert not torch.allclose(row(f_p, f_c), frame(f_p, f_c), atol=1e-3)


def test_dasaa_saam_mode_argument():
    net = tiny(saam_mode='row')
    assert net.dam.saam.mode == 'row'
    x = torch.rand(1, 5, 3, 6, 7)
    assert net(x).shape == (1, 3, 24, 28)
    assert sum(p.numel() for p in net.parameters()) == sum(
        p.numel() for p in tiny().parameters()
    )  # an extent, not weights
    with pytest.raises(ValueError, match='saam_mode'):
        tiny(saam_mode='column')
    with pytest.raises(ValueError, match='mode must be one of'):
        SelfAttentionAlignment(8, mode='col')
