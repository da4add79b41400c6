"""The attention-dropout study runner: variant specs, Table 2's shape, a tiny resumable run."""

import json
import os
import os.path as osp

import numpy as np
import pytest
import yaml

from basicattn.analysis.dropout_study import (
    ROW_FILE,
    TABLE_2_VARIANTS,
    format_study_table,
    parse_variant,
    parse_variants,
    run_study,
)
from basicattn.errors import UserError


@pytest.mark.parametrize(
    'spec,key,blocks,label',
    [
        ('all', 'all', tuple(range(1, 11)), 'All'),
        ('none', 'none', (), 'None'),
        ('1-5', '1-5', (1, 2, 3, 4, 5), '{1,2,3,4,5}'),
        ('6-10', '6-10', (6, 7, 8, 9, 10), '{6,7,8,9,10}'),
        ('even', '2_4_6_8_10', (2, 4, 6, 8, 10), '{2,4,6,8,10}'),
        ('2,4,6,8,10', '2_4_6_8_10', (2, 4, 6, 8, 10), '{2,4,6,8,10}'),
        ('odd', '1_3_5_7_9', (1, 3, 5, 7, 9), '{1,3,5,7,9}'),
        ('1-3,7', '1-3_7', (1, 2, 3, 7), '{1,2,3,7}'),
        ('1-10', 'all', tuple(range(1, 11)), 'All'),
    ],
)
def test_variant_specs_are_one_based_block_sets(spec, key, blocks, label):
    variant = parse_variant(spec, 10)
    assert (variant.key, variant.blocks, variant.label) == (key, blocks, label)


def test_the_default_variants_are_table_2():
    variants = parse_variants(TABLE_2_VARIANTS, 10)
    assert [v.label for v in variants] == [
        'All',
        'None',
        '{1,2,3,4,5}',
        '{6,7,8,9,10}',
        '{2,4,6,8,10}',
    ]
    assert [v.option_value for v in variants][:3] == ['all', 'none', [1, 2, 3, 4, 5]]


@pytest.mark.parametrize(
    'specs,message',
    [
        (['0-4'], "'0-4' names blocks outside 1..10"),
        (['11'], "'11' names blocks outside 1..10"),
        (['first'], "'first' is not a variant"),
        (['5-1'], "'5-1' names blocks outside"),
        (['even', '2,4,6,8,10'], "'2,4,6,8,10' and 'even' are the same variant"),
    ],
)
def test_bad_variant_specs_are_user_errors(specs, message):
    with pytest.raises(UserError, match=message.replace('.', r'\.').replace('{', r'\{')):
        parse_variants(specs, 10)


def test_the_table_has_table_2s_columns():
    rows = [
        dict(
            variant='all',
            blocks_label='All',
            parameters=9_186_705,
            psnr=28.6512,
            set='Set14',
            metric='psnr_y_crop4',
        ),
        dict(variant='none', blocks_label='None', parameters=4_388_415, psnr=None),
    ]
    lines = format_study_table(rows).splitlines()
    assert lines[0].startswith('PSNR (dB) on Set14 (psnr_y_crop4)')
    header = [cell.strip() for cell in lines[2].split('|')[1:-1]]
    assert header == ['Variant', 'Blocks with attention', 'PSNR', 'Parameters']
    assert '| all     | All                   | 28.65 | 9.2 M (9,186,705) |' in lines
    assert '| none    | None                  | -     | 4.4 M (4,388,415) |' in lines


def _tiny_study(root):
    """A probe of two blocks, x2, two iterations on generated 24x24 images."""
    import cv2

    rng = np.random.default_rng(0)
    for sub, count in (('train', 4), ('val', 2)):
        os.makedirs(osp.join(root, sub))
        for i in range(count):
            img = (rng.random((24, 24, 3)) * 255).astype(np.uint8)
            cv2.imwrite(osp.join(root, sub, f'im{i}.png'), cv2.GaussianBlur(img, (5, 5), 1.5))
    opt = {
        'name': 'probe',
        'scale': 2,
        'manual_seed': 1,
        'datasets': {
            'train': {
                'type': 'PairedImageDataset',
                'dataroot_gt': osp.join(root, 'train'),
                'gt_size': 12,
                'batch_size_per_gpu': 2,
                'num_worker_per_gpu': 0,
            },
            'val': {
                'name': 'tinyval',
                'type': 'PairedImageDataset',
                'dataroot_gt': osp.join(root, 'val'),
            },
        },
        'network_g': {'type': 'AttentionProbe', 'num_feat': 4, 'unf': 4, 'num_block': 2},
        'train': {
            'optim_g': {'type': 'Adam', 'lr': 1e-3},
            'total_iter': 2,
            'losses': {'pixel': {'type': 'L1Loss'}},
        },
        'val': {
            'val_freq': 100,
            'metrics': {'psnr': {'type': 'PSNR', 'crop_border': 2, 'test_y_channel': True}},
        },
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 100, 'use_tb_logger': False},
    }
    path = osp.join(root, 'probe.yml')
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    return path


def _files(folder):
    return {
        osp.join(d, n): os.stat(osp.join(d, n)).st_mtime_ns
        for d, _, names in os.walk(folder)
        for n in names
    }


def test_tiny_study_stops_resumes_and_skips_finished_variants(tmp_path, capsys):
    option_file = _tiny_study(str(tmp_path))
    out = str(tmp_path / 'study')
    variants = ['all', 'none']

    # 1. stopped after iteration 1 of the first variant: nothing is finished
    assert run_study(option_file, variants, out, stop_at=1) == 0
    assert 'all: stopped after iteration 1 of 2' in capsys.readouterr().out
    assert not osp.exists(osp.join(out, 'all', ROW_FILE))
    assert open(osp.join(out, 'all', 'last_checkpoint')).read().strip() == 'iter_1.pth'
    table = open(osp.join(out, 'results.md')).read()
    assert '| all     | All                   | -    |' in table
    assert not osp.exists(osp.join(out, 'none'))

    # 2. run again: 'all' resumes from its checkpoint, both finish and are tested
    assert run_study(option_file, variants, out) == 0
    said = capsys.readouterr().out
    assert f'resuming from {osp.join(out, "all", "iter_1.pth")}' in said
    rows = json.load(open(osp.join(out, 'results.json')))['rows']
    assert [r['variant'] for r in rows] == ['all', 'none']
    assert [r['attention_blocks'] for r in rows] == [[1, 2], []]
    # 4-channel probe: conv_first 112, two blocks of 148 (+ 164 per generator), the x2
    # stage's two convs of 148 and conv_last 111
    assert [r['parameters'] for r in rows] == [1_143, 815]
    for row in rows:
        assert row['iteration'] == 2 and row['checkpoint'] == f'{row["variant"]}/iter_2.pth'
        assert row['set'] == 'tinyval' and row['metric'] == 'psnr_y_crop2'
        assert 10 < row['psnr'] < 60
        assert json.load(open(osp.join(out, row['variant'], ROW_FILE)))['psnr'] == row['psnr']
        assert osp.isfile(osp.join(out, row['variant'], 'test', 'options.yml'))
    table = open(osp.join(out, 'results.md')).read().splitlines()
    assert table[0].startswith('PSNR (dB) on tinyval (psnr_y_crop2)')
    assert table[4].startswith(f'| all     | All                   | {rows[0]["psnr"]:.2f} |')
    assert table[5].startswith(f'| none    | None                  | {rows[1]["psnr"]:.2f} |')

    # 3. once more: nothing is trained or tested again, nothing in the folders changes
    before = _files(osp.join(out, 'all')) | _files(osp.join(out, 'none'))
    assert run_study(option_file, variants, out) == 0
    said = capsys.readouterr().out
    assert 'all: finished earlier' in said and 'none: finished earlier' in said
    assert 'training' not in said
    assert _files(osp.join(out, 'all')) | _files(osp.join(out, 'none')) == before

    # 4. other training options: the finished rows are not mixed into the table
    with pytest.raises(UserError, match='trained and tested with other options'):
        run_study(option_file, variants, out, overrides=['train.total_iter=3'])


def test_an_arch_without_attention_blocks_is_refused_before_training(tmp_path):
    option_file = _tiny_study(str(tmp_path))
    with pytest.raises(UserError, match="network_g.type 'EDSR' has no attention_blocks"):
        run_study(
            option_file,
            ['all'],
            str(tmp_path / 'study'),
            overrides=['network_g={type: EDSR, num_feat: 4, num_block: 1}'],
        )
    with pytest.raises(UserError, match="'3' names blocks outside 1..2"):
        run_study(option_file, ['all', '3'], str(tmp_path / 'study'))
    assert not osp.exists(tmp_path / 'study')
