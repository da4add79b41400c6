"""``tools/analyze.py lam``: outputs, and one ``error:`` line for each bad input."""

import importlib.util
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from conftest import REPO_ROOT

from basicattn.checkpoint.state import save_weights_checkpoint
from basicattn.registry import ARCHS

EDSR_TINY = dict(type='EDSR', num_feat=8, num_block=1, upscale=2)
MANA_TINY = dict(
    type='MANA', num_feat=8, num_frames=3, num_encoder_blocks=1, num_decoder_blocks=1,
    embed_dim=4, num_groups=4, num_slots=8, hr_feat=8,
)  # fmt: skip
FAST = ['--window-size', '4', '--fold', '3', '--batch-size', '2', '--quiet']


def _analyze():
    spec = importlib.util.spec_from_file_location(
        'analyze_tool', osp.join(REPO_ROOT, 'tools', 'analyze.py')
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def analyze():
    return _analyze()


def _weights(folder, cfg):
    torch.manual_seed(0)
    net = ARCHS.build(dict(cfg))
    path = osp.join(folder, f'{cfg["type"]}.pth')
    save_weights_checkpoint(path, net.state_dict(), {'arch': dict(cfg)})
    return path


def _image(path, size=(10, 12), seed=0):
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur((rng.random((*size, 3)) * 255).astype(np.uint8), (3, 3), 0.8)
    cv2.imwrite(path, img)
    return path


@pytest.fixture
def inputs(tmp_path):
    frames = tmp_path / 'clip'
    frames.mkdir()
    for i in range(3):
        _image(str(frames / f'f{i}.png'), seed=i)
    return dict(
        image=_image(str(tmp_path / 'lr.png')),
        clip=str(frames),
        edsr=_weights(str(tmp_path), EDSR_TINY),
        mana=_weights(str(tmp_path), MANA_TINY),
    )


def test_image_lam_writes_json_figure_and_map(analyze, inputs, tmp_path, capsys):
    out = str(tmp_path / 'out')
    argv = ['lam', inputs['image'], '--checkpoint', inputs['edsr'], '--window', '5', '6', *FAST]
    assert analyze.main([*argv, '--out', out]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == out
    assert sorted(os.listdir(out)) == ['lam.json', 'lam.png', 'lam_map.npy']
    report = json.load(open(osp.join(out, 'lam.json')))
    assert report['window'] == dict(row=5, col=6, size=4)
    assert report['path'] == dict(sigma=1.2, fold=3, kernel_size=9)
    assert report['checkpoint'] == inputs['edsr'] and report['arch'] == EDSR_TINY
    assert report['passes'] == dict(forward=4, backward=3)
    assert report['lr_size'] == [10, 12] and report['sr_size'] == [20, 24]
    assert 0 < report['diffusion_index'] < 100
    assert report['diffusion_index'] == pytest.approx((1 - report['gini']) * 100)
    lam_map = np.load(osp.join(out, 'lam_map.npy'))
    assert lam_map.shape == (10, 12) and lam_map.max() == 1.0
    figure = cv2.imread(osp.join(out, 'lam.png'))
    assert figure.shape[1] == 3 * 24 + 2 * 4  # SR output, map and blend, 4-pixel gaps
    # the batch size does not change the result (float32 summation order aside)
    again = str(tmp_path / 'again')
    argv[argv.index('--batch-size') + 1] = '3'
    assert analyze.main([*argv, '--out', again]) == 0
    di = json.load(open(osp.join(again, 'lam.json')))['diffusion_index']
    assert di == pytest.approx(report['diffusion_index'], rel=1e-4)


def test_video_lam_reports_every_frame(analyze, inputs, tmp_path, capsys):
    out = str(tmp_path / 'out')
    argv = ['lam', inputs['clip'], '--checkpoint', inputs['mana'], '--window', '8', '8', *FAST]
    assert analyze.main([*argv, '--frame', '0', '--out', out]) == 0
    assert 'attribution share per frame: f0 ' in capsys.readouterr().out
    report = json.load(open(osp.join(out, 'lam.json')))
    assert report['frame'] == 0 and report['frame_name'] == 'f0' and report['mode'] == 'window'
    frames = report['frames']
    assert [f['name'] for f in frames] == ['f0', 'f1', 'f2']
    assert sum(f['share'] for f in frames) == pytest.approx(1.0, abs=1e-9)
    # frame 0's window, mirrored: [1, 0, 1]; frame 2 is not read
    assert [f['used'] for f in frames] == [True, True, False]
    assert frames[2]['share'] == 0 and frames[2]['diffusion_index'] is None
    assert np.load(osp.join(out, 'lam_map.npy')).shape == (3, 10, 12)


@pytest.mark.parametrize(
    'case,extra,culprit',
    [
        ('window outside', ['--window', '17', '0'], '--window 17 0'),
        ('fold 0', ['--window', '1', '1', '--fold', '0'], '--fold'),
        ('negative sigma', ['--window', '1', '1', '--sigma', '-1'], '--sigma'),
        ('even kernel', ['--window', '1', '1', '--kernel-size', '4'], '--kernel-size'),
        ('batch 0', ['--window', '1', '1', '--batch-size', '0'], '--batch-size'),
        ('window size 0', ['--window', '1', '1', '--window-size', '0'], '--window-size'),
        ('video arch, one image', ['--window', '1', '1', 'MANA'], 'is one image'),
        ('image arch, a folder', ['--window', '1', '1', 'CLIP'], 'image arch'),
        ('frame outside', ['--window', '1', '1', 'MANA', 'CLIP', '--frame', '3'], '--frame 3'),
        ('image too small', ['--window', '1', '1', 'TINY'], 'at least 5x5'),
        ('frame of an image arch', ['--window', '1', '1', '--frame', '0'], '--frame'),
    ],
)
def test_bad_input_is_one_error_line(analyze, inputs, tmp_path, capsys, case, extra, culprit):
    image, weights = inputs['image'], inputs['edsr']
    if 'MANA' in extra:
        extra.remove('MANA')
        weights = inputs['mana']
    if 'CLIP' in extra:
        extra.remove('CLIP')
        image = inputs['clip']
    if 'TINY' in extra:
        extra.remove('TINY')
        image = _image(str(tmp_path / 'tiny.png'), size=(4, 4))
    out = str(tmp_path / 'out')
    argv = ['lam', image, '--checkpoint', weights, '--window-size', '4', '--fold', '2', '--quiet']
    code = analyze.main([*argv, *extra, '--out', out])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, case
    assert len(err) == 1 and err[0].startswith('error: ') and culprit in err[0], err
    assert not osp.exists(out)
    assert not [n for n in os.listdir(tmp_path) if n.startswith('.out')]  # no staged folder


def test_out_that_is_a_file(analyze, inputs, tmp_path, capsys):
    out = tmp_path / 'taken'
    out.write_text('keep')
    argv = ['lam', inputs['image'], '--checkpoint', inputs['edsr'], '--window', '1', '1', *FAST]
    assert analyze.main([*argv, '--out', str(out)]) == 2
    assert 'is not a folder' in capsys.readouterr().err
    assert out.read_text() == 'keep'
