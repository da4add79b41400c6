"""What tools/test.py writes: metrics.json says what was measured; per-image values."""

import json
import os.path as osp
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, tool_module

import basicattn
from basicattn.models.forward_timing import cpu_model
from basicattn.registry import ARCHS


def _test(forked_tool, opt, *args):
    out = forked_tool('tools/test.py', '-opt', opt, *args)
    assert out.returncode == 0, out.stderr[-3000:]
    path = out.stdout.strip().splitlines()[-1]
    record = json.load(open(path))
    per_image = json.load(open(osp.join(osp.dirname(path), 'metrics_per_image.json')))
    return record, per_image


def test_metrics_json_records_what_was_measured_and_per_image_values(tiny_experiment, forked_tool):
    opt = tiny_experiment('plain')  # EDSR as initialised: no weights file
    relative = osp.relpath(opt, REPO_ROOT)  # the tool runs in the repository root
    before = datetime.now(timezone.utc).replace(microsecond=0)
    record, per_image = _test(forked_tool, relative)
    assert list(record) == [
        'options',
        'checkpoint',
        'iteration',
        'written',
        'basicattn',
        'label',
        'network',
        'params',
        'scale',
        'test_cfg',
        'metrics',
        'runtime',
    ]
    assert record['label'] == 'EDSR (plain)' and record['network'] == 'EDSR'
    tiny = ARCHS.build(dict(type='EDSR', num_feat=8, num_block=1, upscale=2))
    assert record['params'] == sum(p.numel() for p in tiny.parameters())
    assert record['scale'] == 2 and record['test_cfg']['self_ensemble'] is False
    assert record['options'] == opt
    assert record['checkpoint'] is None and record['iteration'] is None
    written = datetime.fromisoformat(record['written'])
    assert written.utcoffset().total_seconds() == 0
    assert before <= written <= datetime.now(timezone.utc)
    assert record['basicattn'] == basicattn.__version__
    means = record['metrics']['tinyval']
    assert set(means) == {'psnr_y_crop2', 'ssim_y_crop2'}
    images = per_image['tinyval']
    assert sorted(images) == ['im0', 'im1']  # the image keys of the set
    for metric, mean in means.items():
        assert np.mean([values[metric] for values in images.values()]) == pytest.approx(mean)
    assert images['im0']['psnr_y_crop2'] != images['im1']['psnr_y_crop2']
    # the forward time per output frame, per set, with the device named
    runtime = record['runtime']
    assert runtime['device_type'] == 'cpu' and runtime['device'] == cpu_model()
    assert runtime['device'] and runtime['threads'] >= 1 and runtime['processes'] == 1
    assert runtime['torch'] == torch.__version__
    timed = runtime['sets']['tinyval']
    assert timed['frames'] == 2  # one per output image
    assert 0 < timed['ms_per_frame'] < 60_000 and 0 < timed['ms_per_frame_median'] < 60_000
    # tools/demo.py reads the file it writes (the demo is too slow to run in the tests)
    path = osp.join(osp.dirname(opt), 'plain', 'metrics_probe.json')
    with open(path, 'w') as f:
        json.dump(record, f)
    assert tool_module('demo').set_means(path, 'tinyval') == means
    # the parameters-vs-PSNR figure needs nothing but this file
    svg = osp.join(osp.dirname(opt), 'plain', 'tradeoff.svg')
    plot = tool_module('plot_tradeoff')
    assert plot.main([path, '--set', 'tinyval', '--metric', 'psnr_y_crop2', '--out', svg]) == 0
    circle = ET.parse(svg).getroot().find('{http://www.w3.org/2000/svg}circle')
    assert float(circle.get('data-params')) == record['params']
    assert float(circle.get('data-value')) == pytest.approx(means['psnr_y_crop2'], rel=1e-5)


@pytest.mark.parametrize('meta', [{'iter': 4, 'arch': {'type': 'EDSR'}}, None])
def test_checkpoint_path_and_its_iteration(tiny_experiment, forked_tool, tmp_path, meta):
    """A training checkpoint's ``meta['iter']``; null for weights without it (converted)."""
    opt = tiny_experiment('weights')
    net = ARCHS.build(dict(type='EDSR', num_feat=8, num_block=1, upscale=2))
    checkpoint = {'state_dict': net.state_dict()}
    if meta is not None:
        checkpoint['meta'] = meta
    weights = tmp_path / 'weights.pth'
    torch.save(checkpoint, weights)
    record, per_image = _test(
        forked_tool,
        opt,
        '--checkpoint',
        osp.relpath(weights, REPO_ROOT),
        '--set',
        f'path.experiments_root={tmp_path}/test',
    )
    assert record['checkpoint'] == str(weights)
    assert record['iteration'] == (meta or {}).get('iter')
    assert set(per_image['tinyval']) == {'im0', 'im1'}


def test_json_files_are_strict_json_even_for_an_infinite_psnr(tmp_path):
    """An SR image equal to its GT has PSNR inf: written as "inf", never as `Infinity`."""
    test_tool = tool_module('test')
    content = {'Set5': {'img': {'psnr': float('inf'), 'ssim': 1.0}, 'n': [float('nan'), 2]}}
    path = test_tool._write_json(content, str(tmp_path), 'metrics_per_image.json')

    def refuse(constant):
        raise AssertionError(f'non-standard JSON constant {constant}')

    loaded = json.loads(open(path).read(), parse_constant=refuse)
    assert loaded == {'Set5': {'img': {'psnr': 'inf', 'ssim': 1.0}, 'n': ['nan', 2]}}
    assert float(loaded['Set5']['img']['psnr']) == float('inf')
