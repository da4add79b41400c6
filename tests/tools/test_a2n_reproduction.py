"""A2N with the authors' weights through the user path: convert_model.py, then
tools/test.py with options/test/a2n_official_x{2,3}.yml, on the shared Set5."""

import json
import os.path as osp

import pytest
from conftest import REPO_ROOT

PAPER = {2: 38.06, 3: 34.47}  # Table 5; both protocols land within 0.01 dB of it
CHOP = {2: 38.0627, 3: 34.4759}  # measured with the authors' protocol (--chop), our val.chop


@pytest.mark.slow
@pytest.mark.parametrize('scale', [2, 3])
def test_official_a2n_reproduces_set5(scale, testdata, tool, tmp_path):
    weights = testdata('weights', 'a2n_official', f'aan_x{scale}.pt')
    set5 = testdata('Set5', f'X{scale}')
    converted = str(tmp_path / f'a2n_official_x{scale}.pth')
    out = tool(
        'tools/convert_model.py',
        '--source',
        'a2n_official',
        '--scale',
        str(scale),
        weights,
        converted,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    opt = osp.join(REPO_ROOT, 'options', 'test', f'a2n_official_x{scale}.yml')
    common = [
        f'datasets.test_set5.dataroot_gt={set5}/HR',
        f'datasets.test_set5.dataroot_lq={set5}/LR',
    ]
    results = {}
    for chop in (True, False):
        out = tool(
            'tools/test.py',
            '-opt',
            opt,
            '--checkpoint',
            converted,
            '--set',
            *common,
            f'val.chop={str(chop).lower()}',
            f'path.experiments_root={tmp_path}/{chop}',
        )
        assert out.returncode == 0, out.stderr[-2000:]
        results[chop] = json.load(open(out.stdout.strip().splitlines()[-1]))['metrics']['Set5']
    key = f'psnr_y_crop{scale}'
    print(
        f'A2N x{scale} Set5 {key}: chop {results[True][key]:.4f} dB, '
        f'whole image {results[False][key]:.4f} dB'
    )
    assert abs(results[True][key] - PAPER[scale]) <= 0.01
    assert abs(results[True][key] - CHOP[scale]) <= 0.002
    assert abs(results[False][key] - PAPER[scale]) <= 0.01
