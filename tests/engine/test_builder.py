"""Options -> Runner keyword arguments (no Runner is built here)."""

import os
import os.path as osp
import textwrap

import pytest
import torch

from basicattn.config.options import read_options
from basicattn.engine.builder import runner_cfg
from basicattn.errors import CheckpointError

TINY = textwrap.dedent("""\
    name: builder_test
    scale: 2
    manual_seed: 5
    datasets:
      train:
        type: PairedImageDataset
        dataroot_gt: /nonexistent/train/HR
        gt_size: 16
        batch_size_per_gpu: 3
        num_worker_per_gpu: 0
      val:
        name: tinyval
        type: PairedImageDataset
        dataroot_gt: /nonexistent/val/HR
      val_second:
        type: PairedImageDataset
        dataroot_gt: /nonexistent/val2/HR
        batch_size_per_gpu: 1
    network_g:
      type: EDSR
      num_feat: 8
      num_block: 1
    path:
      experiments_root: EXPROOT
    train:
      optim_g: {type: Adam, lr: 1e-3}
      scheduler: {type: MultiStepLR, milestones: [3], gamma: 0.5}
      total_iter: 6
      warmup_iter: 2
      ema_decay: 0.9
      losses:
        pixel: {type: L1Loss}
    val:
      val_freq: 3
      metrics:
        psnr: {type: PSNR, crop_border: 2, test_y_channel: true}
        ssim: {type: SSIM, crop_border: 2, test_y_channel: true}
    logger:
      print_freq: 2
      save_checkpoint_freq: 3
      max_keep_ckpts: 2
    """)


def load(tmp_path, text=TINY, purpose='train', overrides=()):
    path = tmp_path / 'tiny.yml'
    path.write_text(text.replace('EXPROOT', str(tmp_path / 'exp')), encoding='utf-8')
    return read_options(str(path), overrides, purpose=purpose)


def hooks_by_type(cfg):
    return {hook['type']: hook for hook in cfg['custom_hooks']}


@pytest.fixture
def train_cfg(tmp_path):
    return runner_cfg(load(tmp_path), 'train')


def _default_test_cfg():
    """The model's test_cfg for a `val` section that sets no test-time key
    (the values themselves are pinned in tests/models/test_sr_model.py)."""
    from basicattn.config.test_settings import TestConfig

    return TestConfig.from_options({}, 'SRModel')


def test_train_loops(train_cfg):
    assert train_cfg['train_cfg'] == dict(
        type='ResumableIterBasedTrainLoop', max_iters=6, val_interval=3
    )
    loop = train_cfg['val_cfg']
    assert loop['type'] == 'MultiSetValLoop'
    assert loop['set_name'] == 'tinyval'
    assert [s['name'] for s in loop['extra_sets']] == ['val_second']
    assert 'test_cfg' not in train_cfg


def test_train_dataloader(train_cfg):
    loader = train_cfg['train_dataloader']
    assert loader['sampler'] == dict(type='ResumableInfiniteSampler', shuffle=True)
    assert loader['collate_fn'] == dict(type='default_collate')
    assert loader['batch_size'] == 3
    assert loader['num_workers'] == 0 and loader['persistent_workers'] is False
    dataset = loader['dataset']
    assert dataset['type'] == 'PairedImageDataset' and dataset['scale'] == 2
    assert not {'batch_size_per_gpu', 'num_worker_per_gpu', 'use_shuffle'} & set(dataset)


def test_eval_dataloaders(train_cfg):
    first = train_cfg['val_dataloader']
    assert first['sampler'] == dict(type='DefaultSampler', shuffle=False)
    assert first['collate_fn'] == dict(type='default_collate')
    assert first['dataset']['dataroot_gt'] == '/nonexistent/val/HR'
    second = train_cfg['val_cfg']['extra_sets'][0]
    assert second['dataloader']['dataset']['dataroot_gt'] == '/nonexistent/val2/HR'
    assert second['dataloader']['batch_size'] == 1
    assert [m['prefix'] for m in train_cfg['val_evaluator']] == ['tinyval', 'tinyval']
    assert [m['prefix'] for m in second['evaluator']] == ['val_second', 'val_second']
    assert [m['type'] for m in second['evaluator']] == ['PSNR', 'SSIM']


def test_ema_hook(train_cfg):
    ema = hooks_by_type(train_cfg)['EMAHook']
    assert ema['momentum'] == pytest.approx(1 - 0.9)
    assert ema['ema_type'] == 'ExponentialMovingAverage'


def test_schedulers(train_cfg):
    warmup, main = train_cfg['param_scheduler']
    assert warmup['type'] == 'LinearLR' and warmup['by_epoch'] is False
    assert (warmup['begin'], warmup['end']) == (0, 2)
    assert warmup['start_factor'] == pytest.approx(0.5)
    assert main['type'] == 'MultiStepLR' and main['by_epoch'] is False
    assert main['milestones'] == [3] and main['gamma'] == 0.5


def test_checkpoint_and_logging(train_cfg, tmp_path):
    checkpoint = train_cfg['default_hooks']['checkpoint']
    assert checkpoint['save_best'] == 'tinyval/psnr_y_crop2'
    assert checkpoint['rule'] == 'greater' and checkpoint['by_epoch'] is False
    assert checkpoint['interval'] == 3 and checkpoint['max_keep_ckpts'] == 2
    assert train_cfg['default_hooks']['logger']['interval'] == 2
    assert train_cfg['log_processor']['by_epoch'] is False
    assert train_cfg['work_dir'] == str(tmp_path / 'exp')
    assert train_cfg['default_scope'] == 'basicattn'
    assert train_cfg['randomness']['seed'] == 5
    backends = [b['type'] for b in train_cfg['visualizer']['vis_backends']]
    assert backends == ['LocalVisBackend', 'TensorboardVisBackend']


def test_model_and_optimizer(train_cfg):
    model = train_cfg['model']
    assert model['type'] == 'SRModel'
    assert model['generator'] == dict(type='EDSR', num_feat=8, num_block=1, upscale=2)
    assert model['losses'] == {'pixel': {'type': 'L1Loss'}}
    assert model['test_cfg'] == _default_test_cfg()
    assert model['train_cfg'] == dict(channels_last=False, compile=False)
    wrapper = train_cfg['optim_wrapper']
    assert wrapper['optimizer'] == dict(type='Adam', lr=1e-3)
    assert wrapper['clip_grad'] is None
    assert 'resume' not in train_cfg


def test_every_type_is_registered(train_cfg):
    from basicattn import registry as R

    assert R.LOOPS.get(train_cfg['train_cfg']['type']) is not None
    assert R.LOOPS.get(train_cfg['val_cfg']['type']) is not None
    assert R.DATA_SAMPLERS.get(train_cfg['train_dataloader']['sampler']['type']) is not None
    assert R.DATA_SAMPLERS.get(train_cfg['val_dataloader']['sampler']['type']) is not None
    assert R.FUNCTIONS.get('default_collate') is not None
    assert R.MODELS.get(train_cfg['model']['type']) is not None
    for hook in train_cfg['custom_hooks'] + list(train_cfg['default_hooks'].values()):
        assert R.HOOKS.get(hook['type']) is not None, hook['type']
    for scheduler in train_cfg['param_scheduler']:
        assert R.PARAM_SCHEDULERS.get(scheduler['type']) is not None
    assert R.OPTIM_WRAPPERS.get(train_cfg['optim_wrapper']['type']) is not None


def test_optional_features(tmp_path):
    pretrained = str(tmp_path / 'g.pth')
    opt = load(
        tmp_path,
        overrides=[
            'train.warmup_iter=-1',
            'train.scheduler=null',
            'train.ema_decay=0',
            'train.clip_grad_norm=0.5',
            'logger.use_tb_logger=false',
            f'path.pretrain_network_g={pretrained}',
            'path.strict_load_g=false',
            f'path.resume_state={tmp_path}/iter_3.pth',
            'val.self_ensemble=true',
            'val.tile=16',
        ],
    )
    cfg = runner_cfg(opt, 'train', stop_at=4)
    assert cfg['param_scheduler'] is None
    hooks = hooks_by_type(cfg)
    assert 'EMAHook' not in hooks
    assert hooks['StopAtIterHook']['stop_iter'] == 4
    assert hooks['GeneratorLoadHook'] == dict(
        type='GeneratorLoadHook', path=pretrained, strict=False, param_key=None, scale=2
    )
    assert cfg['optim_wrapper']['clip_grad'] == dict(max_norm=0.5)
    assert [b['type'] for b in cfg['visualizer']['vis_backends']] == ['LocalVisBackend']
    assert cfg['resume'] is True and cfg['load_from'] == f'{tmp_path}/iter_3.pth'
    assert cfg['model']['test_cfg'] == dict(_default_test_cfg(), self_ensemble=True, tile=16)


def test_auto_resume(tmp_path):
    """The builder resolves last_checkpoint itself (mmengine trusted its content)."""
    opt = load(tmp_path)
    cfg = runner_cfg(opt, 'train', auto_resume=True)  # no pointer: a fresh start
    assert not cfg.get('resume') and cfg.get('load_from') is None
    work_dir = runner_cfg(opt, 'train')['work_dir']
    os.makedirs(work_dir)
    state = {'meta': {'iter': 3, 'epoch': 0}, 'message_hub': {}, 'state_dict': {}}
    torch.save(state, str(tmp_path / 'exp' / 'iter_3.pth'))  # a (minimal) training state
    for content in ('iter_3.pth', '/elsewhere/old_run/iter_3.pth'):
        (tmp_path / 'exp' / 'last_checkpoint').write_text(content)
        cfg = runner_cfg(opt, 'train', auto_resume=True)
        assert cfg['resume'] is True
        assert cfg['load_from'] == osp.join(osp.abspath(work_dir), 'iter_3.pth')
    # the pointer's file is missing: the newest valid checkpoint is taken (issue 22)
    (tmp_path / 'exp' / 'last_checkpoint').write_text('iter_9.pth')
    cfg = runner_cfg(opt, 'train', auto_resume=True)
    assert cfg['load_from'] == osp.join(osp.abspath(work_dir), 'iter_3.pth')
    # checkpoints, but none valid: refused (a fresh start would archive them)
    (tmp_path / 'exp' / 'iter_3.pth').write_bytes(b'x')
    with pytest.raises(CheckpointError, match='no checkpoint in .* can resume the run'):
        runner_cfg(opt, 'train', auto_resume=True)


def test_no_validation_sets(tmp_path):
    opt = load(tmp_path)
    del opt['datasets']['val'], opt['datasets']['val_second']
    cfg = runner_cfg(opt, 'train')
    assert 'val_cfg' not in cfg and 'val_dataloader' not in cfg
    assert cfg['default_hooks']['checkpoint']['save_best'] is None


def test_test_purpose_multi_set(tmp_path):
    text = TINY.replace(
        'datasets:\n',
        textwrap.dedent("""\
        datasets:
          test_set5:
            name: Set5
            type: PairedImageDataset
            dataroot_gt: /nonexistent/Set5
          test_set14:
            type: PairedImageDataset
            dataroot_gt: /nonexistent/Set14
        """),
        1,
    )
    opt = load(tmp_path, text, purpose='test')
    cfg = runner_cfg(opt, 'test')
    loop = cfg['test_cfg']
    assert loop['type'] == 'MultiSetTestLoop'
    assert loop['set_name'] == 'Set5'
    # one entry per further set: the other test set, then the validation sets
    assert [s['name'] for s in loop['extra_sets']] == ['test_set14', 'tinyval', 'val_second']
    assert cfg['test_dataloader']['dataset']['dataroot_gt'] == '/nonexistent/Set5'
    assert [m['prefix'] for m in cfg['test_evaluator']] == ['Set5', 'Set5']
    assert 'train_cfg' not in cfg and 'train_dataloader' not in cfg
    assert 'losses' not in cfg['model']
    assert cfg['default_hooks']['checkpoint']['save_best'] is None


def test_test_purpose_without_train_section(tmp_path):
    opt = load(tmp_path, purpose='test')
    del opt['train']
    cfg = runner_cfg(opt, 'test')
    assert cfg['test_cfg']['set_name'] == 'tinyval'
    assert [s['name'] for s in cfg['test_cfg']['extra_sets']] == ['val_second']


def test_test_purpose_needs_a_set(tmp_path):
    opt = load(tmp_path, purpose='test')
    for key in ('val', 'val_second'):
        del opt['datasets'][key]
    with pytest.raises(ValueError, match='no test_<name> or val set'):
        runner_cfg(opt, 'test')


def test_default_work_dirs(tmp_path):
    opt = load(tmp_path, overrides=['path.experiments_root=null'])
    assert runner_cfg(opt, 'train')['work_dir'].replace('\\', '/') == 'experiments/builder_test'
    assert runner_cfg(opt, 'test')['work_dir'].replace('\\', '/') == 'results/builder_test'


@pytest.mark.parametrize('block', ['val', 'logger', 'path', 'dist_params'])
def test_null_optional_block_builds(tmp_path, block):
    opt = load(tmp_path, overrides=[f'{block}=null'])
    cfg = runner_cfg(opt, 'train')
    assert cfg['train_cfg']['type'] == 'ResumableIterBasedTrainLoop'


def test_paramwise_cfg_gives_offset_layers_their_own_lr(tmp_path):
    """EDVR-style recipe: a smaller lr for parameters whose name has a key."""
    from mmengine.optim import build_optim_wrapper

    from basicattn.config import validate_options
    from basicattn.engine import runner_cfg
    from basicattn.models.sr_model import SRModel

    opt = validate_options(
        {
            'name': 'pw',
            'scale': 2,
            'datasets': {'train': {'type': 'PairedImageDataset', 'dataroot_gt': str(tmp_path)}},
            'network_g': {'type': 'EDSR', 'num_feat': 8, 'num_block': 1},
            'path': {'experiments_root': str(tmp_path / 'exp')},
            'train': {
                'optim_g': {'type': 'Adam', 'lr': 4e-4},
                'total_iter': 2,
                'losses': {'pixel': {'type': 'L1Loss'}},
                'clip_grad_norm': 1.0,
                'paramwise_cfg': {'custom_keys': {'conv_last': {'lr_mult': 0.25}}},
            },
        }
    )
    cfg = runner_cfg(opt)['optim_wrapper']
    assert cfg['paramwise_cfg'] == {'custom_keys': {'conv_last': {'lr_mult': 0.25}}}
    model = SRModel(dict(type='EDSR', num_feat=8, num_block=1, upscale=2))
    wrapper = build_optim_wrapper(model, cfg)
    lrs = {g['lr'] for g in wrapper.optimizer.param_groups}
    assert lrs == {4e-4, 1e-4}


def test_video_model_gets_sequence_and_image_model_refuses_it(tmp_path):
    from basicattn.errors import OptionError

    # refused when the file is validated, before anything is built
    with pytest.raises(OptionError, match='val.sequence: sequence is a setting of VideoSRModel'):
        load(tmp_path, overrides=['val.sequence=true'])
    opt = load(tmp_path, overrides=['model_type=VideoSRModel'])
    assert runner_cfg(opt, 'train')['model']['test_cfg']['sequence'] is False


def test_best_checkpoint_of_a_lower_is_better_metric(tmp_path):
    """LPIPS first in val.metrics: the best checkpoint is the lowest value."""
    import torch

    from basicattn.metrics.lpips_net import LPIPSNet

    net = LPIPSNet('alex')  # weights of the right layout (default init): only built here
    torch.save(net.backbone_state_dict(), tmp_path / 'b.pth')
    torch.save(net.head_state_dict(), tmp_path / 'h.pth')
    lpips = (
        f'lpips: {{type: LPIPS, crop_border: 2, backbone_path: {tmp_path}/b.pth, '
        f'head_path: {tmp_path}/h.pth}}'
    )
    text = TINY.replace('psnr: {type: PSNR, crop_border: 2, test_y_channel: true}', lpips)
    checkpoint = runner_cfg(load(tmp_path, text), 'train')['default_hooks']['checkpoint']
    assert checkpoint['save_best'] == 'tinyval/lpips_alex_crop2'
    assert checkpoint['rule'] == 'less'
