"""TemporalConsistency: hand-computed values, order independence, errors."""

import numpy as np
import pytest
import torch

from basicattn.metrics.temporal_metric import TemporalConsistency


def _sample(clip, frame, pred, gt):
    return dict(
        clip=clip,
        frame_idx=frame,
        pred=torch.full((3, 4, 4), pred / 255.0),
        gt=torch.full((3, 4, 4), gt / 255.0),
    )


def test_hand_computed_rgb_and_order_independence():
    metric = TemporalConsistency(test_y_channel=False)
    # clip a: GT constant 100; SR flickers 100, 110, 100 -> |10|, |-10| -> 10
    # clip b: GT 50 -> 60; SR 50 -> 56 -> |6 - 10| = 4
    samples = [
        _sample('a', 2, 100, 100),
        _sample('b', 1, 56, 60),
        _sample('a', 0, 100, 100),
        _sample('a', 1, 110, 100),
        _sample('b', 0, 50, 50),
    ]
    metric.process(None, samples)
    result = metric.compute_metrics(metric.results)
    assert result['tdiff_rgb_crop0'] == pytest.approx((10 + 4) / 2)
    per_clip = result['tdiff_rgb_crop0/per_clip']
    assert per_clip == {'a': pytest.approx(10.0), 'b': pytest.approx(4.0)}
    assert result['tmad_gt'] == pytest.approx((0 + 10) / 2)
    assert result['tmad_sr'] == pytest.approx((10 + 6) / 2)


def test_y_channel_and_crop():
    metric = TemporalConsistency(crop_border=1, test_y_channel=True)
    assert metric.name == 'tdiff_y_crop1'
    metric.process(None, [_sample('c', 0, 0, 0), _sample('c', 1, 255, 0)])
    # Y of white minus Y of black = 235 - 16 = 219 on the 0-255 scale
    assert metric.compute_metrics(metric.results)['tdiff_y_crop1'] == pytest.approx(219, abs=1e-3)


def test_errors():
    with pytest.raises(ValueError, match='crop_border'):
        TemporalConsistency(crop_border=-1)
    with pytest.raises(KeyError, match='needs pred, gt, clip and frame_idx'):
        TemporalConsistency().process(
            None, [dict(pred=torch.zeros(3, 2, 2), gt=torch.zeros(3, 2, 2))]
        )
    single = TemporalConsistency()
    single.process(None, [_sample('a', 0, 1, 1)])
    assert np.isnan(single.compute_metrics(single.results)['tdiff_y_crop0'])


def test_a_non_finite_frame_makes_its_clip_nan():
    metric = TemporalConsistency(test_y_channel=True)
    samples = [_sample('a', 0, 100, 100), _sample('a', 1, 110, 100)]
    samples += [_sample('b', 0, 50, 50), _sample('b', 1, float('nan'), 60)]
    metric.process(None, samples)
    per_clip = metric.compute_metrics(metric.results)['tdiff_y_crop0/per_clip']
    assert np.isfinite(per_clip['a']) and np.isnan(per_clip['b'])
