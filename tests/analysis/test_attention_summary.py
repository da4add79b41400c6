"""Per-tap statistics over inputs (basicattn/analysis/attention_summary.py)."""

import math

import pytest
import torch

from basicattn.analysis.attention_summary import TapSummary


def test_scalar_and_map_statistics_over_inputs():
    summary = TapSummary(keep_maps=1)
    torch.manual_seed(0)
    maps = [torch.rand(1, 2, 3, 4), torch.rand(1, 2, 5, 4) * 3]  # inputs of different sizes
    for name, value, m in (('a', 0.25, maps[0]), ('b', 0.75, maps[1])):
        rec = {
            'blocks.0.pi_att': summary.reduce('blocks.0.pi_att', torch.tensor([value])),
            'x.map': summary.reduce('x.map', m),
        }
        summary.add(name, rec)
    stats = summary.statistics()
    pi = stats['blocks.0.pi_att']
    assert pi['values'] == {'a': 0.25, 'b': 0.75}
    assert (pi['mean'], pi['std'], pi['min'], pi['max']) == (0.5, 0.25, 0.25, 0.75)
    every = torch.cat([m.flatten() for m in maps]).double()
    entry = stats['x.map']
    assert entry['shape'] == [2, 3, 4]  # the first input's
    assert entry['mean'] == pytest.approx(float(every.mean()))
    assert entry['std'] == pytest.approx(float(every.std(unbiased=False)))  # pooled, all elements
    assert (entry['min'], entry['max']) == (float(every.min()), float(every.max()))
    assert entry['values']['b'] == pytest.approx(float(maps[1].double().mean()))
    # maps for the figures: the first input only, its channel mean
    assert len(summary.figure_maps) == 1
    torch.testing.assert_close(summary.figure_maps[0]['x.map'], maps[0].mean(dim=1)[0])
    assert summary.table1() is None


def test_table1_pairs_input_and_gate_of_a_block():
    summary = TapSummary()
    torch.manual_seed(1)
    feature = torch.randn(1, 3, 8, 8)
    from basicattn.analysis.highpass import highpass_response

    gate = highpass_response(feature, 'sobel')
    rec = {
        'blocks.2.attention_input': summary.reduce('blocks.2.attention_input', feature),
        'blocks.2.attention_map': summary.reduce('blocks.2.attention_map', gate),
    }
    summary.add('a', rec)
    table = summary.table1()
    assert list(table) == ['blocks.2']
    assert table['blocks.2']['sobel'] == pytest.approx(1.0)
    assert not math.isnan(table['blocks.2']['laplace'])
