"""The DAN option files: they validate, follow the paper's recipe, and train
two iterations / test on tiny data through tools/train.py and tools/test.py."""

import json
import os.path as osp

import numpy as np
import pytest
import yaml
from conftest import REPO_ROOT

from basicattn.engine import read_options
from basicattn.engine.options import OptionError

TRAIN = ['dan_x3_bi', 'dan_x4_bi', 'dan_x3_bd', 'dan_x3_dn']
SETS = {
    'test_set5': 'Set5',
    'test_set14': 'Set14',
    'test_b100': 'B100',
    'test_urban100': 'Urban100',
    'test_manga109': 'Manga109',
}
SMALL_NET = ['network_g.num_block=2', 'network_g.num_feat=16', 'network_g.num_res=1']


def option_path(kind, name):
    return osp.join(REPO_ROOT, 'options', kind, f'{name}.yml')


def raw(kind, name):
    with open(option_path(kind, name), encoding='utf-8') as f:
        return yaml.safe_load(f)


@pytest.mark.parametrize('name', TRAIN)
def test_train_files_follow_the_paper(name):
    opt = read_options(option_path('train', name), purpose='train')
    scale = opt['scale']
    assert name == f'dan_x{scale}_{name.split("_")[-1]}'
    net = opt['network_g']
    assert net['type'] == 'DAN' and net['upscale'] == scale
    assert (net['num_feat'], net['num_block'], net['reduction'], net['distance']) == (64, 30, 16, 9)
    train_set = opt['datasets']['train']
    assert train_set['gt_size'] // scale == 48  # 48x48 LR
    assert train_set['batch_size_per_gpu'] == 16
    assert train_set['use_hflip'] and train_set['use_rot']
    assert train_set['dataroot_gt'].startswith('datasets/DIV2K/')
    train = opt['train']
    assert train['optim_g']['type'] == 'Adam' and train['optim_g']['lr'] == 1e-4
    assert list(train['losses'].values()) == [{'type': 'L1Loss', 'loss_weight': 1.0}]
    sched = train['scheduler']
    per_halving = 200 * 800 // 16  # 10,000
    assert sched['type'] == 'MultiStepLR' and sched['gamma'] == 0.5
    assert sched['milestones'] == [per_halving * k for k in range(1, 5)]
    for metric in opt['val']['metrics'].values():
        assert metric['crop_border'] == scale and metric['test_y_channel']
    deg = name.split('_')[-1].upper()
    if deg == 'DN':
        assert train_set['degradation']['type'] == 'DNDegradation'
        assert 'seed' not in train_set['degradation']  # per-sample noise
        assert opt['datasets']['val']['degradation']['seed'] == 0
    if deg == 'BD':
        assert opt['datasets']['val']['degradation'] == 'BD'


@pytest.mark.parametrize('name', TRAIN)
def test_test_files(name):
    opt = read_options(option_path('test', name), purpose='test')
    scale = opt['scale']
    assert {k: v['name'] for k, v in opt['datasets'].items()} == SETS
    for block in opt['datasets'].values():
        assert block['dataroot_gt'] == f'datasets/benchmark/{block["name"]}/HR'
    for metric in opt['val']['metrics'].values():
        assert metric['crop_border'] == scale and metric['test_y_channel']
    assert opt['val']['self_ensemble'] is False
    assert (
        opt['network_g'] == read_options(option_path('train', name), purpose='train')['network_g']
    )


def test_bad_values_are_named():
    path = option_path('train', 'dan_x3_bi')
    with pytest.raises(OptionError) as info:
        read_options(path, ['network_g.gca=chanel', 'network_g.num_blocks=2'], purpose='train')
    text = str(info.value)
    assert 'network_g.gca' in text and 'chanel' in text
    assert 'network_g.num_blocks' in text and "'num_block'" in text


# -- two iterations on tiny data ----------------------------------------
def _write_tiny_data(root):
    """HR 48x48 photos-like images, their BI x3/x4 and BD x3 LR."""
    import cv2

    from basicattn.data.degradation_transform import BDDegradation, BIDegradation
    from basicattn.utils.img_util import imwrite

    rng = np.random.default_rng(0)
    dirs = {}
    for part, count in (('train', 4), ('val', 2)):
        for i in range(count):
            img = (rng.random((48, 48, 3)) * 255).astype(np.uint8)
            img = cv2.GaussianBlur(img, (7, 7), 2)
            imwrite(osp.join(root, part, 'HR', f'im{i}.png'), img)
            for tag, deg in (
                ('BI_X3', BIDegradation(3)),
                ('BI_X4', BIDegradation(4)),
                ('BD_X3', BDDegradation(3)),
            ):
                suffix = tag[-2:].lower()
                imwrite(osp.join(root, part, tag, f'im{i}{suffix}.png'), deg.degrade(img))
        dirs[part] = osp.join(root, part)
    return dirs


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('dan_tiny'))
    return _write_tiny_data(root)


def _data_overrides(block_key, block, part_dir, scale):
    deg = 'BD' if 'BD' in str(block.get('dataroot_lq', '')) else 'BI'
    out = [f'datasets.{block_key}.dataroot_gt={part_dir}/HR']
    if 'dataroot_lq' in block:
        out.append(f'datasets.{block_key}.dataroot_lq={part_dir}/{deg}_X{scale}')
    return out


@pytest.mark.slow
def test_train_and_test_two_iterations(tiny_data, tmp_path, tool):
    """Every training file runs 2 iterations (validating at the end); the
    matching test file then evaluates the checkpoint on its five sets, and
    the x3 DN test file once more as DAN+ (self-ensemble)."""
    for name in TRAIN:
        opt = raw('train', name)
        scale = opt['scale']
        work = str(tmp_path / name)
        sets = (
            []
            + _data_overrides('train', opt['datasets']['train'], tiny_data['train'], scale)
            + _data_overrides('val', opt['datasets']['val'], tiny_data['val'], scale)
        )
        out = tool(
            'tools/train.py',
            '-opt',
            option_path('train', name),
            '--set',
            *sets,
            *SMALL_NET,
            f'datasets.train.gt_size={8 * scale}',
            'datasets.train.batch_size_per_gpu=2',
            'datasets.train.num_worker_per_gpu=0',
            'train.total_iter=2',
            'val.val_freq=2',
            'logger.save_checkpoint_freq=2',
            'logger.print_freq=1',
            'logger.use_tb_logger=false',
            f'path.experiments_root={work}',
        )
        assert out.returncode == 0, (name, out.stderr[-3000:])
        assert f'Set5/psnr_y_crop{scale}' in out.stdout + out.stderr
        checkpoint = osp.join(work, 'iter_2.pth')
        assert osp.isfile(checkpoint)

        test_opt = raw('test', name)
        sets = []
        for key, block in test_opt['datasets'].items():
            sets += _data_overrides(key, block, tiny_data['val'], scale)
        extra = ['val.self_ensemble=true'] if name == 'dan_x3_dn' else []
        out = tool(
            'tools/test.py',
            '-opt',
            option_path('test', name),
            '--checkpoint',
            checkpoint,
            '--set',
            *sets,
            *SMALL_NET,
            *extra,
            'logger.use_tb_logger=false',
            f'path.experiments_root={work}/test',
        )
        assert out.returncode == 0, (name, out.stderr[-3000:])
        metrics = json.load(open(out.stdout.strip().splitlines()[-1]))
        assert set(metrics) == set(SETS.values())
        for values in metrics.values():
            assert np.isfinite(values[f'psnr_y_crop{scale}'])
