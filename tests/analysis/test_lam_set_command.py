"""``tools/analyze.py lam-set``: the A2N Table 7 layout for several models over a set."""

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
from basicattn.metrics.psnr_ssim import calculate_psnr
from basicattn.registry import ARCHS
from basicattn.utils.img_util import img2tensor, imread, tensor2img
from basicattn.utils.matlab_imresize import imresize

EDSR_TINY = dict(type='EDSR', num_feat=8, num_block=1, upscale=2)
BICUBIC = 'Bicubic=arch:Bicubic:{"scale": 2}'
FAST = ['--window-size', '4', '--fold', '2', '--batch-size', '2', '--quiet']


@pytest.fixture(scope='module')
def analyze():
    spec = importlib.util.spec_from_file_location(
        'analyze_tool', osp.join(REPO_ROOT, 'tools', 'analyze.py')
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    for folder in ('HR', 'LR'):
        (tmp_path / folder).mkdir()
    for name in ('a', 'b'):
        hr = cv2.GaussianBlur((rng.random((20, 24, 3)) * 255).astype(np.uint8), (5, 5), 1.0)
        cv2.imwrite(str(tmp_path / 'HR' / f'{name}.png'), hr)
        lr = imresize(img2tensor(hr[..., ::-1].copy())[None], scale=0.5)[0]
        cv2.imwrite(str(tmp_path / 'LR' / f'{name}.png'), tensor2img(lr)[..., ::-1])
    (tmp_path / 'windows.txt').write_text('LR/a.png 2 3\nLR/a.png 8 10\nLR/b.png 5 5\n')
    torch.manual_seed(0)
    weights = str(tmp_path / 'edsr.pth')
    save_weights_checkpoint(weights, ARCHS.build(dict(EDSR_TINY)).state_dict(), {'arch': EDSR_TINY})
    return tmp_path, weights


def test_table_of_two_models(analyze, data, capsys):
    root, weights = data
    out = str(root / 'out')
    argv = ['lam-set', str(root / 'windows.txt'), '--model', f'EDSR tiny={weights}']
    argv += ['--model', BICUBIC, '--gt-folder', str(root / 'HR'), *FAST, '--out', out]
    assert analyze.main(argv) == 0
    printed = capsys.readouterr().out
    assert sorted(os.listdir(out)) == ['figures', 'lam_set.json', 'results.md']
    assert sorted(os.listdir(osp.join(out, 'figures'))) == ['Bicubic', 'EDSR_tiny']
    assert sorted(os.listdir(osp.join(out, 'figures', 'Bicubic'))) == [
        'a_r2_c3.png', 'a_r8_c10.png', 'b_r5_c5.png',
    ]  # fmt: skip
    report = json.load(open(osp.join(out, 'lam_set.json')))
    assert report['path'] == dict(sigma=1.2, fold=2, kernel_size=9)
    edsr, bicubic = report['models']
    assert [edsr['label'], bicubic['label']] == ['EDSR tiny', 'Bicubic']
    assert len(bicubic['windows']) == 3
    dis = [w['diffusion_index'] for w in bicubic['windows']]
    assert bicubic['mean_diffusion_index'] == pytest.approx(np.mean(dis))
    # the PSNR as tools/test.py measures it: Y channel, crop = scale, per image then mean
    psnrs = []
    for name in ('a', 'b'):
        sr = ARCHS.build(dict(type='Bicubic', scale=2))(
            img2tensor(imread(str(root / 'LR' / f'{name}.png')))[None]
        )
        psnrs.append(
            calculate_psnr(tensor2img(sr), imread(str(root / 'HR' / f'{name}.png')), 2, True)
        )
    assert bicubic['mean_psnr'] == pytest.approx(np.mean(psnrs), abs=1e-9)
    table = open(osp.join(out, 'results.md')).read()
    assert table in printed
    lines = table.splitlines()
    assert lines[0].startswith('LAM Diffusion Index: mean over 3 window(s) of 4x4 SR pixels')
    assert [c.strip() for c in lines[2].split('|')[1:4]] == ['Model', 'DI', 'PSNR (dB)']
    assert lines[5].split('|')[1].strip() == 'Bicubic'
    assert lines[5].split('|')[3].strip() == f'{np.mean(psnrs):.2f}'


def test_without_gt_the_psnr_is_left_out(analyze, data, capsys):
    root, _ = data
    out = str(root / 'out')
    assert (
        analyze.main(
            ['lam-set', str(root / 'windows.txt'), '--model', BICUBIC, *FAST, '--out', out]
        )
        == 0
    )
    report = json.load(open(osp.join(out, 'lam_set.json')))
    assert report['models'][0]['mean_psnr'] is None
    assert '(no GT given' in report['caption']


@pytest.mark.parametrize(
    'extra,culprit',
    [
        (['--model', BICUBIC, '--model', BICUBIC], 'its own label'),
        (['--model', 'nolabel.pth'], '--model'),
        (['--model', 'M=MANA'], 'video arch'),
        (
            ['--model', 'W=WEIGHTS', '--model', BICUBIC, '--window-size', '12'],
            'a.png (model W): --window 8 10',
        ),
        (['--model', BICUBIC, '--fold', '0'], '--fold'),
    ],
)
def test_bad_inputs_fail_before_any_lam_run(analyze, data, capsys, extra, culprit):
    root, weights = data
    extra = [f'W={weights}' if e == 'W=WEIGHTS' else e for e in extra]
    if 'M=MANA' in extra:
        mana = dict(type='MANA', num_feat=8, num_groups=4, embed_dim=4, num_slots=8, hr_feat=8)
        path = str(root / 'mana.pth')
        save_weights_checkpoint(path, ARCHS.build(dict(mana)).state_dict(), {'arch': mana})
        extra[extra.index('M=MANA')] = f'M={path}'
    out = str(root / 'out')
    code = analyze.main(['lam-set', str(root / 'windows.txt'), *extra, '--quiet', '--out', out])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith('error: ') and culprit in err[0], err
    assert not osp.exists(out)
