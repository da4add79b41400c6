"""The DAN option files build the paper's network, name bad values, and train
two iterations / test on tiny data through tools/train.py and tools/test.py.
(Their values are guarded by tests/config/test_option_inheritance.py's fixture.)"""

import json
import os.path as osp

import numpy as np
import pytest
from conftest import REPO_ROOT

from basicattn.config import read_options
from basicattn.config.options import OptionError, load_option_file

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


PAPER_X3_PARAMS = 11_460_745  # tests/archs/arch_cases.py: DAN's paper model at x3


def merged(kind, name):
    """The option file as tools/train.py reads it, before validation (bases merged)."""
    return load_option_file(option_path(kind, name))[0]


@pytest.mark.parametrize('name', TRAIN)
def test_train_and_test_files_build_the_papers_dan(name):
    """Each training file and its test file build the same network: the paper's
    d = 9, r = 16, b = 30 DAN (11.46 M parameters at x3), at the file's scale;
    the metrics crop as many pixels as the scale."""
    from basicattn.archs.build import build_network

    train = read_options(option_path('train', name), purpose='train')
    test = read_options(option_path('test', name), purpose='test')
    scale = train['scale']
    assert test['scale'] == scale and train['network_g']['upscale'] == scale
    assert test['network_g'] == train['network_g']
    for opt in (train, test):
        for metric in opt['val']['metrics'].values():
            assert metric['crop_border'] == scale
    if scale == 3:
        net = build_network(train['network_g'])
        assert sum(p.numel() for p in net.parameters()) == PAPER_X3_PARAMS


@pytest.mark.parametrize(
    'name, count', [('dan_x3_bi_edsr', 44_437_283), ('dan_x3_bi_edsr_backbone', 43_680_003)]
)
def test_table5_edsr_files(name, count):
    """Table 5's EDSR rows: DAN's recipe, the EDSR backbone, with and without GCA + LEA."""
    import torch

    from basicattn.archs.build import build_network

    opt = read_options(option_path('train', name), purpose='train')
    base = read_options(option_path('train', 'dan_x3_bi'), purpose='train')
    assert opt['train'] == base['train'] and opt['scale'] == 3
    with torch.device('meta'):  # counts only
        net = build_network(opt['network_g'])
    assert sum(p.numel() for p in net.parameters()) == count


def test_transfer_files_start_from_the_x3_model():
    """BI x4, BD x3 and DN x3 start from the BI x3 model (Sec. IV-E); x4 by a partial load."""
    for name in ('dan_x4_bi', 'dan_x3_bd', 'dan_x3_dn'):
        paths = read_options(option_path('train', name), purpose='train')['path']
        assert paths['pretrain_network_g'] == 'experiments/dan_x3_bi/latest.pth'
        assert paths['partial_load_g'] is (name == 'dan_x4_bi')
    assert read_options(option_path('train', 'dan_x4_bi'))['path']['partial_exclude_g'] == [
        'upsample.*'
    ]
    base = read_options(option_path('train', 'dan_x3_bi'), purpose='train')
    # one epoch = 1,000 iterations (EDSR-PyTorch), halved every 200 epochs
    assert base['train']['scheduler']['milestones'] == [200000, 400000, 600000, 800000]
    assert base['train']['total_iter'] == 1000000


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
        out.append(f"datasets.{block_key}.filename_tmpl='{{}}x{scale}'")  # the tiny LR names
    return out


@pytest.mark.slow
def test_train_and_test_two_iterations(tiny_data, tmp_path, tool):
    """Every training file runs 2 iterations (validating at the end); the
    matching test file then evaluates the checkpoint on its five sets, and
    the x3 DN test file once more as DAN+ (self-ensemble). BI x4, BD x3 and DN x3
    start from the BI x3 run's checkpoint, as the paper's transfer learning;
    the x4 one through the partial load, which logs what it skipped."""
    x3_checkpoint = osp.join(str(tmp_path / 'dan_x3_bi'), 'iter_2.pth')
    for name in TRAIN:
        opt = merged('train', name)
        scale = opt['scale']
        work = str(tmp_path / name)
        transfer = opt.get('path', {}).get('pretrain_network_g')
        assert (transfer == 'experiments/dan_x3_bi/latest.pth') == (name != 'dan_x3_bi')
        sets = ([f'path.pretrain_network_g={x3_checkpoint}'] if transfer else []) + (
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
        if name == 'dan_x4_bi':  # SMALL_NET: 46 tensors, 2 of the x3 upsampler
            assert (
                f'Partial load of {x3_checkpoint} into DAN: 44 of 46 checkpoint tensors loaded; '
                'skipped: excluded 2 [upsample.* (2)]; left at initialisation: 4 '
                '[upsample.* (4)] (x3 weights into an x4 network)'
            ) in out.stdout + out.stderr
        checkpoint = osp.join(work, 'iter_2.pth')
        assert osp.isfile(checkpoint)

        test_opt = merged('test', name)
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
        metrics = json.load(open(out.stdout.strip().splitlines()[-1]))['metrics']
        assert set(metrics) == set(SETS.values())
        for values in metrics.values():
            assert np.isfinite(values[f'psnr_y_crop{scale}'])
