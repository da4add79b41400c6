"""The PSNR / SSIM mmengine metrics."""

import math

import numpy as np
import pytest
import torch

from basicattn.metrics.psnr_ssim import calculate_psnr, calculate_ssim
from basicattn.registry import METRICS


def _samples(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        gt = torch.rand(3, 16, 16, generator=g)
        pred = (gt + 0.05 * torch.randn(3, 16, 16, generator=g)).clamp(0, 1)
        out.append(dict(pred=pred, gt=gt, key=f'img_{i:03d}'))
    return out


@pytest.mark.parametrize('name, fn', [('PSNR', calculate_psnr), ('SSIM', calculate_ssim)])
def test_metric_mean_and_per_image(name, fn):
    metric = METRICS.build(dict(type=name, crop_border=2, test_y_channel=True))
    assert type(metric).__name__ == name
    samples = _samples()
    metric.process({}, samples[:2])
    metric.process({}, samples[2:])
    res = metric.evaluate(len(samples))
    key = f'{name.lower()}_y_crop2'
    assert list(res) == [key, f'{key}/per_image']
    expected = [fn(s['pred'], s['gt'], 2, True) for s in samples]
    assert res[key] == pytest.approx(np.mean(expected))
    per_image = res[f'{key}/per_image']
    assert list(per_image) == ['img_000', 'img_001', 'img_002']
    assert list(per_image.values()) == pytest.approx(expected)
    assert metric.results == []  # evaluate() clears them


def test_prefix_and_rgb_name():
    metric = METRICS.build(dict(type='PSNR', prefix='Set5'))
    metric.process(None, _samples(1))
    assert list(metric.evaluate(1)) == ['Set5/psnr_rgb_crop0', 'Set5/psnr_rgb_crop0/per_image']


def test_identical_images_give_inf():
    metric = METRICS.build(dict(type='PSNR'))
    s = _samples(1)[0]
    metric.process(None, [dict(pred=s['gt'], gt=s['gt'], key='same')])
    assert math.isinf(metric.evaluate(1)['psnr_rgb_crop0'])


def test_bad_samples_are_named():
    metric = METRICS.build(dict(type='SSIM'))
    s = _samples(1)[0]
    with pytest.raises(KeyError, match="'gt'"):
        metric.process(None, [dict(pred=s['pred'], key='a')])
    with pytest.raises(
        ValueError,
        match=r"'img_x'.*\(16, 16, 3\).*"
        r'\(8, 16, 3\)',
    ):
        metric.process(None, [dict(pred=s['pred'], gt=s['gt'][:, :8], key='img_x')])
    with pytest.raises(TypeError, match='dict'):
        metric.process(None, [s['pred']])
    with pytest.raises(ValueError, match='crop_border'):
        METRICS.build(dict(type='PSNR', crop_border=-2))


def test_video_clips_mean_over_clips_and_per_clip_values_in_the_result():
    from basicattn.metrics.per_clip import result_tables, scalar_results

    metric = METRICS.build(dict(type='PSNR', prefix='Vid4'))
    samples = _samples(3)
    for sample, clip in zip(samples, ['calendar', 'calendar', 'city']):
        sample['clip'] = clip
    metric.process(None, samples)
    values = [calculate_psnr(s['pred'], s['gt']) for s in samples]
    res = metric.evaluate(3)
    per_clip = {'calendar': np.mean(values[:2]), 'city': values[2]}
    assert list(res) == [
        'Vid4/psnr_rgb_crop0',
        'Vid4/psnr_rgb_crop0/per_clip',
        'Vid4/psnr_rgb_crop0/per_image',
    ]
    assert res['Vid4/psnr_rgb_crop0/per_clip'] == pytest.approx(per_clip)
    assert res['Vid4/psnr_rgb_crop0'] == pytest.approx(np.mean(list(per_clip.values())))
    assert res['Vid4/psnr_rgb_crop0/per_image'] == pytest.approx(
        {'img_000': values[0], 'img_001': values[1], 'img_002': values[2]}
    )
    assert scalar_results(res) == {'Vid4/psnr_rgb_crop0': res['Vid4/psnr_rgb_crop0']}
    per_set, clips, per_image = result_tables(res, ['Vid4', 'empty'])
    assert per_image == {
        'Vid4': {f'img_{i:03d}': {'psnr_rgb_crop0': pytest.approx(v)} for i, v in enumerate(values)}
    }
    assert per_set == {'Vid4': {'psnr_rgb_crop0': res['Vid4/psnr_rgb_crop0']}, 'empty': {}}
    assert clips == {
        'Vid4': {
            'calendar': {'psnr_rgb_crop0': pytest.approx(per_clip['calendar'])},
            'city': {'psnr_rgb_crop0': pytest.approx(per_clip['city'])},
        }
    }


def test_repeated_image_keys_keep_every_value():
    from basicattn.metrics.per_clip import per_image_values

    metric = METRICS.build(dict(type='PSNR'))
    samples = _samples(3)
    for sample in samples:
        sample['key'] = 'same'
    metric.process(None, samples)
    res = metric.evaluate(3)
    per_image = res['psnr_rgb_crop0/per_image']
    assert list(per_image) == ['same', 'same#2', 'same#3']
    assert np.mean(list(per_image.values())) == pytest.approx(res['psnr_rgb_crop0'])
    assert per_image_values([('a', 1), ('a#2', 2), ('a', 3)]) == {'a': 1.0, 'a#2': 2.0, 'a#3': 3.0}


@pytest.mark.parametrize('name', ['PSNR', 'SSIM'])
def test_non_finite_output_scores_nan_not_the_black_image(name):
    """NaN used to round to black (uint8 0) and score a finite ~7 dB; now the value is nan."""
    metric = METRICS.build(dict(type=name))
    good, bad = _samples(2)
    bad['pred'] = bad['pred'].clone()
    bad['pred'][0, 0, 0] = float('nan')
    metric.process(None, [good, bad])
    result = metric.evaluate(2)
    key = f'{name.lower()}_rgb_crop0'
    assert math.isnan(result[key])
    assert math.isnan(result[f'{key}/per_image']['img_001'])
    assert math.isfinite(result[f'{key}/per_image']['img_000'])
