"""MANA's Parkour and SPMCS test files run on tiny stand-ins of their layouts
(bicubic network), measure RGB PSNR/SSIM with crop 0 as MANA reports, and SPMCS'
distributed BIx4 frames give the numbers of LR made on the fly."""

import json
import os.path as osp

import numpy as np
import pytest
from conftest import REPO_ROOT

from basicattn.config import read_options

TEST = osp.join(REPO_ROOT, 'options', 'test')


@pytest.mark.parametrize(
    'name, key', [('mana_parkour_x4', 'test_parkour'), ('mana_spmc_x4', 'test_spmc')]
)
def test_protocol(name, key):
    opt = read_options(osp.join(TEST, f'{name}.yml'), purpose='test')
    assert list(opt['datasets']) == [key]
    block = opt['datasets'][key]
    assert block['type'] == 'VideoTestDataset' and block['num_frame'] == 7
    for metric in ('psnr', 'ssim'):
        assert opt['val']['metrics'][metric]['crop_border'] == 0
        assert opt['val']['metrics'][metric]['test_y_channel'] is False
    assert opt['network_g']['type'] == 'MANA'


def _clips(root, names, frames, side, rng, lr_root=None):
    import cv2

    from basicattn.data.degradation_transform import BIDegradation
    from basicattn.utils.img_util import imwrite

    deg = BIDegradation(4)
    for clip in names:
        base = cv2.GaussianBlur(
            (rng.random((side + 8, side + 8, 3)) * 255).astype(np.uint8), (7, 7), 2
        )
        for f in range(frames):
            img = np.ascontiguousarray(base[f : f + side, f : f + side])
            imwrite(osp.join(root, clip, f'{f:08d}.png'), img)
            if lr_root:
                imwrite(osp.join(lr_root, clip, f'{f:08d}.png'), deg.degrade(img))


def _run(tool, tmp_path, name, *sets):
    out = tool(
        'tools/test.py',
        '-opt',
        osp.join(TEST, f'{name}.yml'),
        '--set',
        'network_g={type: Bicubic}',
        'path.pretrain_network_g=null',
        'logger.use_tb_logger=false',
        f'path.experiments_root={tmp_path}/exp_{name}_{len(sets)}',
        *sets,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.load(open(out.stdout.strip().splitlines()[-1]))['metrics']


@pytest.mark.slow
def test_files_run_on_their_layouts(tmp_path, tool):
    rng = np.random.default_rng(0)
    parkour = tmp_path / 'Parkour' / 'GT'
    _clips(str(parkour), ['clip_a', 'clip_b'], 7, 16, rng)
    metrics = _run(
        tool, tmp_path, 'mana_parkour_x4', f'datasets.test_parkour.dataroot_gt={parkour}'
    )
    psnr = [v for k, v in metrics['Parkour'].items() if k.startswith('psnr')]
    assert psnr and all(np.isfinite(psnr)), metrics

    spmc = tmp_path / 'SPMCS'
    _clips(str(spmc / 'GT'), ['car05_001', 'hk004_001'], 7, 16, rng, str(spmc / 'BIx4'))
    files = _run(
        tool,
        tmp_path,
        'mana_spmc_x4',
        f'datasets.test_spmc.dataroot_gt={spmc}/GT',
        f'datasets.test_spmc.dataroot_lq={spmc}/BIx4',
    )
    fly = _run(
        tool,
        tmp_path,
        'mana_spmc_x4',
        f'datasets.test_spmc.dataroot_gt={spmc}/GT',
        'datasets.test_spmc.dataroot_lq=null',
        'datasets.test_spmc.clips=[car05_001, hk004_001]',
    )
    # the same MATLAB-bicubic LR (written as uint8 PNG vs made on the fly and rounded
    # the same way): the same metrics up to float summation order
    assert files['SPMCS'] == pytest.approx(fly['SPMCS'], rel=1e-6)
