"""BasicSR-shaped option files load: integral floats, io_backend dicts, BasicSR keys."""

import os.path as osp

import pytest
import yaml

from basicattn.config.basicsr_compat import RULES
from basicattn.config.options import validate_options
from basicattn.config.yaml_io import OptionLoader
from basicattn.errors import OptionError

# Written by us in the shape of BasicSR's options/train/EDSR/train_EDSR_Mx2.yml.
BASICSR_EDSR = """\
name: 201_EDSR_Mx2_f64b16_DIV2K_300k_B16G1_wandb
model_type: SRModel
scale: 2
num_gpu: 1  # set num_gpu: 0 for cpu mode
manual_seed: 10

datasets:
  train:
    name: DIV2K
    type: PairedImageDataset
    dataroot_gt: datasets/DIV2K/DIV2K_train_HR_sub
    dataroot_lq: datasets/DIV2K/DIV2K_train_LR_bicubic/X2_sub
    filename_tmpl: '{}'
    io_backend:
      type: disk
    gt_size: 96
    use_flip: true
    use_rot: true
    use_shuffle: true
    num_worker_per_gpu: 6
    batch_size_per_gpu: !!float 16
    dataset_enlarge_ratio: 1000
    prefetch_mode: ~
  val:
    name: Set5
    type: PairedImageDataset
    dataroot_gt: datasets/Set5/GTmod12
    dataroot_lq: datasets/Set5/LRbicx2
    io_backend:
      type: lmdb
      db_paths: [a.lmdb, b.lmdb]
      client_keys: [gt, lq]

network_g:
  type: EDSR
  num_in_ch: 3
  num_out_ch: 3
  num_feat: !!float 64
  num_block: 16
  upscale: 2
  res_scale: 1
  img_range: 255.
  rgb_mean: [0.4488, 0.4371, 0.4040]

path:
  pretrain_model_g: ~
  strict_load: true
  resume_state: ~

train:
  optim_g:
    type: Adam
    lr: !!float 1e-4
    weight_decay: 0
    betas: [0.9, 0.99]
  scheduler:
    type: MultiStepLR
    milestones: [!!float 2e5, 250000]
    gamma: 0.5
  total_iter: !!float 3e5
  warmup_iter: -1  # no warm up
  pixel_opt:
    type: L1Loss
    loss_weight: 1.0
    reduction: mean
  perceptual_opt:
    type: PerceptualLoss
    perceptual_weight: !!float 1.0

val:
  val_freq: !!float 5e3
  save_img: false
  metrics:
    psnr: # metric name, can be arbitrary
      type: calculate_psnr
      crop_border: 2
      test_y_channel: false
    ssim:
      type: calculate_ssim
      crop_border: 2
      test_y_channel: true

logger:
  print_freq: 100
  save_checkpoint_freq: !!float 5e3
  use_tb_logger: true
  wandb:
    project: ~
    resume_id: ~

dist_params:
  backend: nccl
  port: 29500
"""


def _basicsr_edsr():
    return yaml.load(BASICSR_EDSR, Loader=OptionLoader)


def _warnings(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith('warning:')]


def test_basicsr_edsr_file_validates_and_maps(capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    opt = validate_options(_basicsr_edsr(), source='train_EDSR_Mx2.yml')
    train_set, val_set = opt['datasets']['train'], opt['datasets']['val']
    assert train_set['io_backend'] == 'disk' and val_set['io_backend'] == 'lmdb'
    assert train_set['repeat'] == 1000 and 'dataset_enlarge_ratio' not in train_set
    assert train_set['use_hflip'] is True and 'use_flip' not in train_set
    assert 'prefetch_mode' not in train_set
    assert train_set['batch_size_per_gpu'] == 16 and type(train_set['batch_size_per_gpu']) is int
    assert opt['network_g']['num_feat'] == 64 and type(opt['network_g']['num_feat']) is int
    assert opt['network_g']['img_range'] == 255.0
    assert opt['path']['strict_load_g'] is True and 'strict_load' not in opt['path']
    assert opt['path']['pretrain_network_g'] is None and 'pretrain_model_g' not in opt['path']
    assert opt['train']['losses'] == {
        'pixel': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}
    }
    assert 'pixel_opt' not in opt['train'] and 'perceptual_opt' not in opt['train']
    milestones = opt['train']['scheduler']['milestones']
    assert milestones == [200000, 250000] and all(type(m) is int for m in milestones)
    for key, value in [
        (opt['train']['total_iter'], 300000),
        (opt['val']['val_freq'], 5000),
        (opt['logger']['save_checkpoint_freq'], 5000),
    ]:
        assert key == value and type(key) is int
    assert opt['val']['metrics'] == {
        'psnr': {'type': 'PSNR', 'crop_border': 2, 'test_y_channel': False},
        'ssim': {'type': 'SSIM', 'crop_border': 2, 'test_y_channel': True},
    }
    assert opt['logger']['wandb'] == {'project': None, 'entity': None, 'resume_id': None}
    assert 'num_gpu' not in opt
    assert opt['dist_params']['backend'] == 'gloo'
    warnings = _warnings(capsys)
    keys = [line.split(':', 2)[1].strip() for line in warnings]
    assert sorted(keys) == sorted(
        [
            'num_gpu',
            'datasets.val.io_backend',
            'datasets.train.prefetch_mode',
            'train.perceptual_opt',
            'dist_params.backend',
        ]
    ), warnings
    assert 'tools/dist_train.sh' in warnings[keys.index('num_gpu')]
    assert 'client_keys, db_paths' in warnings[keys.index('datasets.val.io_backend')]
    assert "'PerceptualLoss'" in warnings[keys.index('train.perceptual_opt')]
    assert 'Did you mean' not in ''.join(warnings)


def test_nccl_kept_with_cuda(capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    opt = validate_options(_basicsr_edsr(), source='x.yml')
    assert opt['dist_params']['backend'] == 'nccl'
    assert not any('dist_params' in line for line in _warnings(capsys))


@pytest.mark.parametrize(
    'where, value, expected',
    [
        (('val', 'val_freq'), 5.5, 'val.val_freq: expected int, got float 5.5'),
        (('logger', 'print_freq'), True, 'logger.print_freq: expected int, got bool True'),
        (('train', 'total_iter'), 1e5 + 0.5, 'train.total_iter: expected int'),
        (('network_g', 'num_block'), 16.5, 'network_g.num_block: EDSR expects int'),
        (('network_g', 'num_block'), True, 'network_g.num_block: EDSR expects int'),
        (
            ('datasets', 'train', 'batch_size_per_gpu'),
            2.5,
            'datasets.train.batch_size_per_gpu: expected int, got float 2.5',
        ),
    ],
)
def test_non_integral_float_and_bool_still_fail(where, value, expected):
    opt = _basicsr_edsr()
    node = opt
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    with pytest.raises(OptionError) as err:
        validate_options(opt, source='x.yml')
    assert expected in str(err.value)


@pytest.mark.parametrize(
    'backend, expected',
    [
        (
            {'type': 'disks'},
            "datasets.train.io_backend.type: 'disks' is not one of ['disk', 'lmdb']",
        ),
        ({'db_paths': ['a']}, 'datasets.train.io_backend.type: None is not one of'),
        ('memcached', "datasets.train.io_backend: 'memcached' is not one of ['disk', 'lmdb']"),
    ],
)
def test_bad_io_backend_names_the_key(backend, expected):
    opt = _basicsr_edsr()
    opt['datasets']['train']['io_backend'] = backend
    with pytest.raises(OptionError) as err:
        validate_options(opt, source='x.yml')
    assert expected in str(err.value)


def test_basicsr_key_given_with_ours_is_an_error():
    opt = _basicsr_edsr()
    opt['datasets']['train']['repeat'] = 2
    with pytest.raises(OptionError) as err:
        validate_options(opt, source='x.yml')
    assert 'datasets.train.dataset_enlarge_ratio: BasicSR key for datasets.train.repeat' in str(
        err.value
    )


def test_every_rule_in_the_docs():
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    with open(osp.join(root, 'docs', 'options.md'), encoding='utf-8') as f:
        docs = f.read()
    assert '## Coming from BasicSR' in docs
    for rule in RULES:
        assert f'| `{rule.basicsr.replace("|", chr(92) + "|")}` |' in docs, rule.basicsr


def test_option_warnings_are_printed_by_the_first_process_only(monkeypatch, capsys):
    from basicattn.config.basicsr_compat import warn_option

    for rank, printed in (('0', True), ('1', False), (None, True)):
        if rank is None:
            monkeypatch.delenv('RANK', raising=False)
        else:
            monkeypatch.setenv('RANK', rank)
        monkeypatch.delenv('SLURM_PROCID', raising=False)
        warn_option('num_gpu', 'ignored: one warning')
        assert bool(capsys.readouterr().err) == printed, rank
    monkeypatch.delenv('RANK', raising=False)
    monkeypatch.setenv('SLURM_PROCID', '3')
    warn_option('num_gpu', 'ignored')
    assert capsys.readouterr().err == ''


# -- issue 22: BasicSR files, second round -------------------------------------------


def test_test_file_suffix_and_find_unused_parameters_are_explained(capsys):
    opt = _basicsr_edsr()
    opt['val']['suffix'] = None  # BasicSR's test files: `suffix: ~`
    opt['find_unused_parameters'] = True
    opt = validate_options(opt, source='x.yml')
    assert 'suffix' not in opt['val'] and 'find_unused_parameters' not in opt
    warnings = {line.split(':', 2)[1].strip(): line for line in _warnings(capsys)}
    assert 'results/<set>/<key>.png' in warnings['val.suffix']
    assert 'train.stages' in warnings['find_unused_parameters']


def test_fix_flow_is_explained_as_a_frozen_first_stage(capsys):
    opt = _basicsr_edsr()
    opt['train']['fix_flow'] = 5000
    opt = validate_options(opt, source='x.yml')
    assert 'fix_flow' not in opt['train'] and 'stages' not in opt['train']
    (line,) = [w for w in _warnings(capsys) if w.startswith('warning: train.fix_flow:')]
    assert "train.stages: [{until_iter: N, frozen: ['*spynet*']}" in line


def test_flow_lr_mul_becomes_a_parameter_wise_lr_multiplier():
    opt = _basicsr_edsr()
    opt['train']['flow_lr_mul'] = 0.125
    opt['train']['paramwise_cfg'] = {'custom_keys': {'conv_offset': {'lr_mult': 0.25}}}
    opt = validate_options(opt, source='x.yml')
    assert 'flow_lr_mul' not in opt['train']
    assert opt['train']['paramwise_cfg'] == {
        'custom_keys': {'conv_offset': {'lr_mult': 0.25}, 'spynet': {'lr_mult': 0.125}}
    }
    one = _basicsr_edsr()
    one['train']['flow_lr_mul'] = 1  # BasicSR's default: nothing to do
    assert validate_options(one, source='x.yml')['train']['paramwise_cfg'] is None


@pytest.mark.parametrize(
    'paramwise, expected',
    [
        (
            {'custom_keys': {'spynet': {'lr_mult': 0.5}}},
            'train.flow_lr_mul: BasicSR key for train.paramwise_cfg.custom_keys.spynet',
        ),
        (None, None),
    ],
)
def test_flow_lr_mul_conflict_and_bad_value(paramwise, expected):
    opt = _basicsr_edsr()
    opt['train']['flow_lr_mul'] = 0.125 if paramwise else 'low'
    opt['train']['paramwise_cfg'] = paramwise
    with pytest.raises(OptionError) as err:
        validate_options(opt, source='x.yml')
    assert (
        expected
        or 'train.flow_lr_mul: expected a number >= 0 (the lr multiplier of the '
        "flow network), got 'low'"
    ) in str(err.value)


def _reds_options(root, partition, **block):
    opt = _basicsr_edsr()
    opt['model_type'] = 'EDVRModel'
    opt['network_g'] = {'type': 'Bicubic'}
    opt['datasets']['train'] = {
        'type': 'REDSDataset',
        'dataroot_gt': str(root),
        'num_frame': 3,
        'val_partition': partition,
        'batch_size_per_gpu': 1,
        **block,
    }
    del opt['datasets']['val']
    return opt


def test_val_partition_clips_are_checked_under_the_key_written(tmp_path):
    for clip in ('001', '011', '012'):
        (tmp_path / clip).mkdir()
    with pytest.raises(OptionError) as err:
        validate_options(_reds_options(tmp_path, 'REDS4'), source='reds.yml')
    (problem,) = err.value.problems
    assert problem.startswith(
        f'datasets.train.val_partition: REDS4: clip(s) 000, 015, 020 of the REDS4 partition '
        f'are not among the clips of {tmp_path} (3 found)'
    )
    assert 'exclude_clips' not in str(err.value)
    for clip in ('000', '015', '020'):
        (tmp_path / clip).mkdir()
    opt = validate_options(_reds_options(tmp_path, 'REDS4'), source='reds.yml')
    assert opt['datasets']['train']['exclude_clips'] == 'REDS4'


def test_val_partition_clips_of_an_lmdb_come_from_its_meta_info(tmp_path):
    (tmp_path / 'meta_info.txt').write_text(
        '000/00000000.png (8,8,3) 1\n011/00000000.png (8,8,3) 1\n'
    )
    with pytest.raises(OptionError, match=r'clip\(s\) 015, 020 of the REDS4 partition'):
        validate_options(
            _reds_options(tmp_path, 'REDS4', io_backend={'type': 'lmdb'}), source='reds.yml'
        )
