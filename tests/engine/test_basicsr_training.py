"""BasicSR-shaped option files (tests/engine/fixtures/basicsr/) validate and train.

Each fixture keeps BasicSR's exact shape; only its data roots and sizes are
changed, with ``--set`` overrides, as a user would. Training runs
``tools/train.py`` in a fresh process for two iterations on tiny generated
data, so the whole path (read_options, the BasicSR key table, build_runner,
the Runner) is the one users take, and every ignored BasicSR key must print
exactly one ``warning:`` line.
"""

import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest

from basicattn.config import read_options

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FIXTURES = osp.join(osp.dirname(osp.abspath(__file__)), 'fixtures', 'basicsr')
EDSR_FILE = osp.join(FIXTURES, 'train_EDSR_Mx2.yml')
REDS_FILE = osp.join(FIXTURES, 'train_video_REDS_x4.yml')

#: Ignored keys of both files (one warning line each); dist_params.backend
#: warns only where CUDA is missing.
COMMON_WARNINGS = [
    'num_gpu',
    'datasets.train.prefetch_mode',
]  # logger.wandb with project ~ is off, silently
REDS_WARNINGS = COMMON_WARNINGS + [
    'datasets.train.dataroot_flow',
    'datasets.val.cache_data',
]  # train.dcn_lr_mul: 1 is dropped silently (it changes nothing)


def _warned_keys(stderr):
    lines = [line for line in stderr.splitlines() if line.startswith('warning:')]
    return [line.split(':', 2)[1].strip() for line in lines]


def _expected(keys):
    import torch

    return sorted(keys + ([] if torch.cuda.is_available() else ['dist_params.backend']))


def _write(path, img):
    os.makedirs(osp.dirname(path), exist_ok=True)
    cv2.imwrite(path, img)


def _pair(gt_path, lq_path, size, scale, rng):
    gt = cv2.GaussianBlur((rng.random((size, size, 3)) * 255).astype(np.uint8), (5, 5), 1)
    _write(gt_path, gt)
    _write(lq_path, cv2.resize(gt, (size // scale,) * 2, interpolation=cv2.INTER_AREA))


def _train(option_file, overrides, timeout=120):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS='1')
    args = [sys.executable, 'tools/train.py', '-opt', option_file, '--set', *overrides]
    return subprocess.run(
        args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_edsr_file_validates(capsys):
    opt = read_options(EDSR_FILE)
    assert opt['model_type'] == 'SRModel' and opt['train']['total_iter'] == 300000
    assert opt['datasets']['train']['repeat'] == 1000
    assert opt['datasets']['train']['filename_tmpl'] == '{}'  # PairedImageDataset takes it
    assert opt['train']['losses'] == {
        'pixel': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}
    }
    assert opt['val']['metrics']['psnr']['type'] == 'PSNR'
    assert sorted(_warned_keys(capsys.readouterr().err)) == _expected(COMMON_WARNINGS)


def test_reds_file_validates_and_maps_reds_dataset(capsys):
    opt = read_options(REDS_FILE)
    assert sorted(_warned_keys(capsys.readouterr().err)) == _expected(REDS_WARNINGS)
    assert opt['model_type'] == 'VideoSRModel'
    train, val = opt['datasets']['train'], opt['datasets']['val']
    assert train['type'] == 'REDSClipDataset'
    assert train['exclude_clips'] == 'REDS4' and 'val_partition' not in train
    assert 'dataroot_flow' not in train and train['use_hflip'] is True
    assert (train['num_frame'], train['interval_list'], train['random_reverse']) == (5, [1], False)
    assert train['repeat'] == 200
    assert val['type'] == 'VideoTestDataset' and val['padding'] == 'reflection_circle'
    assert 'cache_data' not in val
    assert opt['train']['scheduler'] == {
        'type': 'CosineAnnealingRestartLR',
        'periods': [150000] * 4,
        'restart_weights': [1] * 4,
        'eta_min': 1e-7,
    }
    assert opt['path']['pretrain_network_g'] is None and opt['path']['strict_load_g'] is True


@pytest.mark.parametrize(
    'value, expected',
    [
        ('official', {'exclude_clips': 'REDSofficial'}),
        ('REDS5', "datasets.train.val_partition: 'REDS5' is not one of ['REDS4', 'official']"),
    ],
)
def test_val_partition_values(value, expected):
    from basicattn.errors import OptionError

    overrides = [f'datasets.train.val_partition={value}']
    if isinstance(expected, dict):
        assert expected.items() <= read_options(REDS_FILE, overrides)['datasets']['train'].items()
        return
    with pytest.raises(OptionError) as err:
        read_options(REDS_FILE, overrides)
    assert expected in str(err.value)


def test_edvr_network_is_accepted():
    """BasicSR's EDVR arguments build basicattn's EDVR (BasicSR's names)."""
    opt = read_options(REDS_FILE, ['network_g={type: EDVR, num_feat: 64, num_frame: 5}'])
    assert opt['network_g'] == {'type': 'EDVR', 'num_feat': 64, 'num_frame': 5, 'upscale': 4}


def _two_iterations(tmp_path):
    """Overrides that make a BasicSR-sized file a two-iteration run on tiny data."""
    return [
        'datasets.train.gt_size=16',
        'datasets.train.batch_size_per_gpu=2',
        'datasets.train.num_worker_per_gpu=0',
        f'path.experiments_root={tmp_path}/exp',
        'train.total_iter=2',
        'val.val_freq=2',
        'logger.print_freq=1',
        'logger.save_checkpoint_freq=2',
        'logger.use_tb_logger=false',
    ]


def _checkpoints(folder):
    return sorted(f for f in os.listdir(folder) if f.startswith('iter_') and f.endswith('.pth'))


def test_edsr_file_trains_two_iterations(tmp_path):
    rng = np.random.default_rng(0)
    for split, count in (('train', 3), ('val', 1)):
        for i in range(count):
            _pair(
                str(tmp_path / split / 'HR' / f'{i:04d}.png'),
                str(tmp_path / split / 'LR' / f'{i:04d}.png'),
                32,
                2,
                rng,
            )
    out = _train(
        EDSR_FILE,
        [
            f'datasets.train.dataroot_gt={tmp_path}/train/HR',
            f'datasets.train.dataroot_lq={tmp_path}/train/LR',
            f'datasets.val.dataroot_gt={tmp_path}/val/HR',
            f'datasets.val.dataroot_lq={tmp_path}/val/LR',
            'network_g.num_feat=8',
            'network_g.num_block=1',
        ]
        + _two_iterations(tmp_path),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(_warned_keys(out.stderr)) == _expected(COMMON_WARNINGS), out.stderr[-3000:]
    assert 'finished training at iteration 2' in out.stdout
    assert _checkpoints(tmp_path / 'exp') == ['iter_2.pth']
    assert 'Set5/psnr' in out.stdout + out.stderr


def test_reds_file_trains_two_iterations(tmp_path):
    rng = np.random.default_rng(0)
    # 000 011 015 020 are REDS4 (val_partition): left out of training, must exist
    clips, frames = ('000', '001', '002', '011', '015', '020'), 6
    for clip in clips:
        for f in range(frames):
            name = f'{clip}/{f:08d}.png'
            _pair(str(tmp_path / 'GT' / name), str(tmp_path / 'LQ' / name), 32, 4, rng)
    (tmp_path / 'meta_info_REDS_GT.txt').write_text(
        ''.join(f'{c} {frames} (32,32,3)\n' for c in clips)
    )
    (tmp_path / 'meta_info_REDS4_test_GT.txt').write_text(f'011 {frames} (32,32,3)\n')
    out = _train(
        REDS_FILE,
        [
            f'datasets.train.dataroot_gt={tmp_path}/GT',
            f'datasets.train.dataroot_lq={tmp_path}/LQ',
            f'datasets.train.meta_info_file={tmp_path}/meta_info_REDS_GT.txt',
            f'datasets.val.dataroot_gt={tmp_path}/GT',
            f'datasets.val.dataroot_lq={tmp_path}/LQ',
            f'datasets.val.meta_info_file={tmp_path}/meta_info_REDS4_test_GT.txt',
        ]
        + _two_iterations(tmp_path),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(_warned_keys(out.stderr)) == _expected(REDS_WARNINGS), out.stderr[-3000:]
    assert 'finished training at iteration 2' in out.stdout
    assert _checkpoints(tmp_path / 'exp') == ['iter_2.pth']
    assert 'REDS4/psnr' in out.stdout + out.stderr
