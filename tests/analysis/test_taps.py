"""Attention taps of every arch and the recording API (basicattn/analysis/taps.py).

* Recording never changes outputs (bit-identical: the same kernels run on
  the same operands, a tap is the identity).
* Every declared ``TAPS`` pattern is present in the tiny arch and records.
* Query-pixel attention (MANA, DASAA) equals a brute-force reference.
* :func:`replace_taps` forces A2N's branch weights.
"""

import math
import os.path as osp
import sys

import pytest
import torch

from basicattn.analysis.taps import (
    declared_taps,
    match_taps,
    record_taps,
    replace_taps,
    tap_names,
)
from basicattn.errors import UserError
from basicattn.registry import ARCHS

sys.path.insert(0, osp.join(osp.dirname(__file__), '..', 'archs'))
from arch_cases import ARCH_CASES  # noqa: E402


def _net(name, **extra):
    torch.manual_seed(0)
    return ARCHS.build(dict(type=name, **{**ARCH_CASES[name]['kwargs'], **extra})).eval()


def _input(name):
    torch.manual_seed(1)
    return torch.rand(ARCH_CASES[name]['input'])


def test_every_registered_arch_declares_its_taps():
    ARCHS.import_from_location()
    missing = [
        n for n, cls in ARCHS.module_dict.items() if not isinstance(cls.__dict__.get('TAPS'), dict)
    ]
    assert not missing, f'declare TAPS (a dict, empty without attention) in: {missing}'


@pytest.mark.parametrize('grad', [False, True], ids=['no_grad', 'grad'])
@pytest.mark.parametrize('name', sorted(ARCH_CASES))
def test_recording_leaves_outputs_bit_identical(name, grad):
    net, x = _net(name), _input(name)
    with torch.set_grad_enabled(grad):
        plain = net(x)
        with record_taps(net, '*' if tap_names(net) else []) as rec:
            recorded = net(x)
        again = net(x)
    assert torch.equal(recorded, plain)  # same kernels, same operands: exact
    assert torch.equal(again, plain)
    assert all(not t._forward_hooks for t in net.modules())  # hooks removed
    if declared_taps(net):
        assert rec, 'nothing recorded'


@pytest.mark.parametrize('name', sorted(ARCH_CASES))
def test_every_declared_pattern_is_present_and_records(name):
    net, x = _net(name), _input(name)
    declared = declared_taps(net)
    for pattern, meaning in declared.items():
        assert meaning and '\n' not in meaning
        names = match_taps(net, pattern)
        with torch.no_grad(), record_taps(net, pattern) as rec:
            net(x)
        assert sorted(rec) == sorted(names), pattern
        for value in rec.values():
            assert not value.requires_grad and value.device.type == 'cpu'
            assert torch.isfinite(value).all()
    # nothing undeclared: every tap matches a declared pattern
    covered = set(match_taps(net, list(declared))) if declared else set()
    assert covered == set(tap_names(net))


def test_a2n_tap_values_are_the_paper_quantities():
    net, x = _net('A2N'), _input('A2N')
    with torch.no_grad(), record_taps(net) as rec:
        net(x)
    for i in range(2):
        pi_att, pi_na = rec[f'blocks.{i}.pi_att'], rec[f'blocks.{i}.pi_na']
        assert pi_att.shape == (1,)
        torch.testing.assert_close(pi_att + pi_na, torch.ones(1))  # softmax of two
        gate = rec[f'blocks.{i}.attention_map']
        assert gate.shape == (1, 8, 8, 8) and gate.min() > 0 and gate.max() < 1
        # the gate was overwritten in place after the tap (no_grad path): we kept a copy
        torch.testing.assert_close(
            rec[f'blocks.{i}.attention_output'], rec[f'blocks.{i}.attention_input'] * gate
        )
    assert rec['upsampler.0.pa.attention_map'].shape == (1, 8, 16, 16)


def test_reduce_and_patterns():
    net, x = _net('A2N'), _input('A2N')
    with (
        torch.no_grad(),
        record_taps(net, ['blocks.{i}.attention_map'], reduce=lambda n, t: t.mean(dim=1)) as rec,
    ):
        net(x)
    assert sorted(rec) == ['blocks.0.attention_map', 'blocks.1.attention_map']
    assert rec['blocks.0.attention_map'].shape == (1, 8, 8)
    assert match_taps(net, 'blocks.1.pi_*') == ['blocks.1.pi_att', 'blocks.1.pi_na']
    with pytest.raises(UserError, match="'blocks.9.pi_att' matches no tap of A2N"):
        match_taps(net, 'blocks.9.pi_att')


def test_replace_taps_forces_a2n_branch_weights():
    net, x = _net('A2N'), _input('A2N')
    with torch.no_grad():
        plain = net(x)
        same = {f'blocks.{i}.pi_att': lambda t: t.clone() for i in range(2)}
        with replace_taps(net, same):
            assert torch.equal(net(x), plain)
        # both weights 0: each block adds conv_out(lrelu(0)) = 0 (no bias): blocks are identities
        zero = {f'blocks.{i}.{w}': torch.zeros_like for i in range(2) for w in ('pi_att', 'pi_na')}
        with replace_taps(net, zero):
            forced = net(x)
        blocks, net.blocks = net.blocks, torch.nn.Identity()
        without_blocks = net(x)
        net.blocks = blocks
        torch.testing.assert_close(forced, without_blocks, rtol=1e-6, atol=1e-6)  # in-place vs not
        assert torch.equal(net(x), plain)  # replacement removed
    with pytest.raises(UserError, match='no tap named blocks.7.pi_att'):
        with replace_taps(net, {'blocks.7.pi_att': torch.zeros_like}):
            pass


def _mana_reference(net, x, points):
    """Brute force: loop over query pixels, frames and key pixels."""
    att = net.attention
    b, t = x.shape[:2]
    feats = net.encode(x.flatten(0, 1)).unflatten(0, (b, t))
    normed = att.norm(feats.flatten(0, 1))
    q = att.to_q(normed.unflatten(0, (b, t))[:, t // 2])[0]  # (E, H, W)
    k = att.to_k(normed).unflatten(0, (b, t))[0]  # (T, E, H, W)
    h, w = q.shape[-2:]
    sigma = float(att.sigma)
    out = torch.zeros(len(points), t, h, w)
    for n, (py, px) in enumerate(points):
        for f in range(t):
            logits = torch.einsum('e,eyx->yx', q[:, py, px], k[f])
            soft = torch.softmax(logits.flatten(), 0).view(h, w)
            for y in range(h):
                for xx in range(w):
                    d2 = (y - py) ** 2 + (xx - px) ** 2
                    out[n, f, y, xx] = soft[y, xx] * math.exp(-d2 / (2 * sigma**2))
    return out


def test_mana_query_attention_equals_brute_force():
    net, x = _net('MANA', sigma=2.0), _input('MANA')
    points = [(0, 0), (3, 5), (7, 2)]
    with torch.no_grad():
        with record_taps(net, 'attention.query_attention', queries=points) as rec:
            net(x)
        expected = _mana_reference(net, x, points)
    got = rec['attention.query_attention']
    assert got.shape == (1, 3, 3, 8, 8)
    # matmul vs einsum order of summation: float rounding only
    torch.testing.assert_close(got[0], expected, rtol=1e-5, atol=1e-7)
    assert net.attention.query_attention.queries is None  # restored


def _saam_query_and_key(net, x):
    """SAAM's query (from PAB) and key (from CAB) maps of the first item, (C, H, W) each."""
    feat = net.rdbs(net.conv_second(net.conv_first(x.flatten(1, 2))))
    f_p, f_c = net.dam.pab(feat), net.dam.cab(feat)
    return net.dam.saam.to_q(f_p)[0], net.dam.saam.to_k(f_c)[0]


def test_dasaa_query_attention_and_mask():
    net, x = _net('DASAA'), _input('DASAA')
    points = [(1, 6), (4, 4)]
    with torch.no_grad():
        with record_taps(net, 'dam.*', queries=points) as rec:
            net(x)
        p, q = _saam_query_and_key(net, x)
    got = rec['dam.saam.query_attention']
    assert got.shape == (1, 2, 8, 8)
    for n, (py, px) in enumerate(points):
        logits = torch.einsum('c,cyx->yx', p[:, py, px], q)
        ref = torch.softmax(logits.flatten(), 0).view(8, 8)
        torch.testing.assert_close(got[0, n], ref, rtol=1e-5, atol=1e-7)  # summation order
    torch.testing.assert_close(got.sum(dim=(2, 3)), torch.ones(1, 2))
    assert set(rec['dam.saam.valid_mask'].unique().tolist()) <= {0.0, 1.0}
    assert rec['dam.cab.channel_weights'].shape == (1, 8, 1, 1)
    assert rec['dam.pab.position_map'].shape == (1, 1, 8, 8)


def test_dasaa_row_mode_query_attention_stays_in_the_row():
    """``saam_mode='row'``: the tap keeps its (N, K, H, W) shape; a query pixel's
    weights are the softmax over its own row and 0 elsewhere."""
    net, x = _net('DASAA', saam_mode='row'), _input('DASAA')
    points = [(1, 6), (4, 4)]
    with torch.no_grad():
        with record_taps(net, 'dam.saam.*', queries=points) as rec:
            net(x)
        p, q = _saam_query_and_key(net, x)
    got = rec['dam.saam.query_attention']
    assert got.shape == (1, 2, 8, 8)
    for n, (py, px) in enumerate(points):
        ref = torch.zeros(8, 8)
        ref[py] = torch.softmax(torch.einsum('c,cx->x', p[:, py, px], q[:, py]), 0)
        torch.testing.assert_close(got[0, n], ref, rtol=1e-5, atol=1e-7)  # summation order
    assert set(rec['dam.saam.valid_mask'].unique().tolist()) <= {0.0, 1.0}


def test_query_outside_the_grid_is_refused():
    net, x = _net('DASAA'), _input('DASAA')
    with pytest.raises(ValueError, match=r'query pixel \(y=8, x=0\) is outside the 8x8 grid'):
        with torch.no_grad(), record_taps(net, 'dam.saam.query_attention', queries=[(8, 0)]):
            net(x)


def test_dksan_offset_magnitude():
    net, x = _net('DKSAN'), _input('DKSAN')
    with torch.no_grad():
        net.align.conv_offset.bias.fill_(0.5)  # every offset (dy, dx) = (0.5, 0.5)
        with record_taps(net) as rec:
            net(x)
    mag = rec['align.offset_magnitude']
    assert mag.shape == (1, 2, 8, 8)
    torch.testing.assert_close(mag, torch.full_like(mag, math.sqrt(0.5)))
    assert rec['levels.1.dksa.spatial_map'].shape == (1, 8, 16, 16)


def _archs_with_taps():
    ARCHS.import_from_location()
    return sorted(n for n, cls in ARCHS.module_dict.items() if getattr(cls, 'TAPS', None))


@pytest.mark.parametrize('name', _archs_with_taps())
def test_doc_page_and_docstring_list_every_tap(name):
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cls = ARCHS.get(name)
    page_name = cls.__module__.rsplit('.', 1)[-1].removesuffix('_arch')  # the arch's doc page
    with open(osp.join(root, 'docs', 'models', f'{page_name}.md'), encoding='utf-8') as f:
        page = f.read()
    module_doc = sys.modules[cls.__module__].__doc__
    for pattern in cls.TAPS:
        assert f'`{pattern}`' in page, f'docs/models/{page_name}.md lacks {pattern}'
        assert f'``{pattern}``' in module_doc, f'{cls.__module__} docstring lacks {pattern}'
