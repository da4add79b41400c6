"""The DASAA training file ships the paper's batch of 64 (Sec. 4.1, one GPU)."""

import os.path as osp

from conftest import REPO_ROOT

from basicattn.config import read_options

TRAIN = osp.join(REPO_ROOT, 'options', 'train', 'dasaa_x4_vimeo.yml')


def test_paper_batch_of_64_on_the_one_gpu_the_file_is_written_for():
    opt = read_options(TRAIN, purpose='train')
    with open(TRAIN, encoding='utf-8') as f:
        header = f.read().split('\nname:')[0]
    assert 'written for ONE GPU' in header and 'batch_size_per_gpu 64 x 1 GPU = 64' in header
    assert opt['datasets']['train']['batch_size_per_gpu'] * 1 == 64
    # the paper's full-frame SAAM unless asked otherwise; row mode validates too
    assert opt['network_g'].get('saam_mode', 'frame') == 'frame'
    row = read_options(TRAIN, ['network_g.saam_mode=row'], purpose='train')
    assert row['network_g']['saam_mode'] == 'row'
