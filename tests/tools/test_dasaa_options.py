"""A tiny DASAA trains two iterations on the shared Vimeo-90K sample and tests in
sequence and single-step modes. (tests/test_shipped_options.py validates the DASAA
option files and builds their networks.)"""

import json
import os.path as osp

import pytest
import yaml
from conftest import REPO_ROOT

SMALL = dict(
    type='DASAA',
    num_frames=5,
    num_feat=8,
    num_rdb=1,
    rdb_layers=2,
    growth=4,
    reduction=2,
    pab_hidden=4,
    attn_chunk=64,
)


@pytest.mark.slow
def test_tiny_dasaa_trains_and_tests_in_both_modes(testdata, tmp_path, tool):
    sequences = testdata('vimeo90k_sample', 'sequences')
    opt = yaml.safe_load(open(osp.join(REPO_ROOT, 'options', 'demo', 'demo_dasaa_x4.yml')))
    for block in opt['datasets'].values():
        block['dataroot_gt'] = sequences
        block['meta_info_file'] = osp.join(REPO_ROOT, block['meta_info_file'])
    opt['datasets']['train'].update(gt_size=32, batch_size_per_gpu=2, num_worker_per_gpu=0)
    opt['network_g'] = dict(SMALL)
    opt['train'].update(total_iter=2, scheduler=None)
    opt['path']['experiments_root'] = str(tmp_path / 'exp')
    opt_file = tmp_path / 'dasaa.yml'
    opt_file.write_text(yaml.safe_dump(opt, sort_keys=False))
    out = tool('tools/train.py', '-opt', str(opt_file))
    assert out.returncode == 0, out.stderr[-3000:]
    results = {}
    for sequence in ('true', 'false'):
        test = tool(
            'tools/test.py',
            '-opt',
            str(opt_file),
            '--checkpoint',
            str(tmp_path / 'exp' / 'iter_2.pth'),
            '--set',
            f'val.sequence={sequence}',
            f'path.experiments_root={tmp_path}/test_{sequence}',
        )
        assert test.returncode == 0, test.stderr[-3000:]
        results[sequence] = json.load(open(test.stdout.strip().splitlines()[-1]))['metrics']
    seq = results['true']['vimeo_sample_heldout']
    single = results['false']['vimeo_sample_heldout']
    assert {'psnr_y_crop4', 'tdiff_y_crop4', 'tmad_sr', 'tmad_gt'} <= set(seq)
    assert seq['psnr_y_crop4'] != single['psnr_y_crop4']  # the state changes the output
