"""EDVR option files: BasicSR's EDVR files validate (their EDVRModel keys
mapped), ours build BasicSR's EDVR-M, and a tiny EDVR trains two iterations
through tools/train.py with the TSA-only first stage, then tools/test.py
evaluates it."""

import json
import os.path as osp

import numpy as np
import pytest
from conftest import REPO_ROOT

from basicattn.config import read_options
from basicattn.config.options import load_option_file

OPTIONS = osp.join(REPO_ROOT, 'options')

# Written by us in the shape of BasicSR's options/train/EDVR/train_EDVR_M_x4_SR_REDS.yml
# (the TSA stage, started from the woTSA model).
BASICSR_EDVR_M = """\
name: 102_EDVR_M_x4_SR_REDS_600k_B4G8_valREDS4_101pretrain_wandb
model_type: EDVRModel
scale: 4
num_gpu: 8
manual_seed: 10
datasets:
  train:
    name: REDS
    type: REDSDataset
    dataroot_gt: datasets/REDS/train_sharp
    dataroot_lq: datasets/REDS/train_sharp_bicubic
    dataroot_flow: ~
    meta_info_file: basicsr/data/meta_info/meta_info_REDS_GT.txt
    val_partition: REDS4
    io_backend: {type: disk}
    num_frame: 5
    gt_size: 256
    interval_list: [1]
    random_reverse: false
    use_flip: true
    use_rot: true
    use_shuffle: true
    num_worker_per_gpu: 3
    batch_size_per_gpu: 4
    dataset_enlarge_ratio: 200
    prefetch_mode: ~
  val:
    name: REDS4
    type: VideoTestDataset
    dataroot_gt: datasets/REDS/train_sharp
    dataroot_lq: datasets/REDS/train_sharp_bicubic
    meta_info_file: basicsr/data/meta_info/meta_info_REDS4_test_GT.txt
    io_backend: {type: disk}
    cache_data: false
    num_frame: 5
    padding: reflection_circle
network_g:
  type: EDVR
  num_in_ch: 3
  num_out_ch: 3
  num_feat: 64
  num_frame: 5
  deformable_groups: 8
  num_extract_block: 5
  num_reconstruct_block: 10
  center_frame_idx: ~
  hr_in: false
  with_predeblur: false
  with_tsa: true
path:
  pretrain_model_g: experiments/101_EDVR_M_woTSA/models/net_g_600000.pth
  strict_load: false
  resume_state: ~
train:
  optim_g: {type: Adam, lr: !!float 4e-4, weight_decay: 0, betas: [0.9, 0.99]}
  scheduler:
    type: CosineAnnealingRestartLR
    periods: [50000, 100000, 150000, 150000, 150000]
    restart_weights: [1, 1, 1, 1, 1]
    eta_min: !!float 1e-7
  total_iter: 600000
  warmup_iter: -1
  tsa_iter: 50000
  dcn_lr_mul: 1
  pixel_opt: {type: CharbonnierLoss, loss_weight: 1.0, reduction: sum}
val:
  val_freq: !!float 5e3
  save_img: false
  metrics:
    psnr: {type: calculate_psnr, crop_border: 0, test_y_channel: false}
logger:
  print_freq: 100
  save_checkpoint_freq: !!float 5e3
  use_tb_logger: true
  wandb: {project: ~, resume_id: ~}
dist_params: {backend: nccl, port: 29500}
find_unused_parameters: true
"""


def test_basicsr_edvr_file_validates(tmp_path, capsys):
    path = tmp_path / 'train_EDVR_M_x4_SR_REDS.yml'
    path.write_text(BASICSR_EDVR_M)
    opt = read_options(str(path), purpose='train')
    assert opt['model_type'] == 'VideoSRModel'
    assert opt['network_g']['type'] == 'EDVR' and opt['network_g']['upscale'] == 4
    stages = opt['train']['stages']
    assert [(s['until_iter'], s['trainable']) for s in stages] == [
        (50000, ['fusion.*']),
        (600000, None),
    ]
    assert stages[1]['reset_optimizer'] is False
    assert not opt['train'].get('paramwise_cfg')  # dcn_lr_mul: 1 changes nothing
    assert opt['path']['pretrain_network_g'].endswith('net_g_600000.pth')
    err = capsys.readouterr().err
    assert 'warning: find_unused_parameters: ignored' in err
    assert 'tsa_iter' not in err and 'dcn_lr_mul' not in err  # mapped, not ignored


@pytest.mark.parametrize(
    'change, message',
    [
        ('  dcn_lr_mul: 1', '  dcn_lr_mul: 0.5'),
        ('  tsa_iter: 50000', '  tsa_iter: 700000'),
        ('  tsa_iter: 50000', '  tsa_iter: 0'),
    ],
)
def test_basicsr_edvr_model_keys(tmp_path, change, message):
    path = tmp_path / 'edvr.yml'
    path.write_text(BASICSR_EDVR_M.replace(change, message))
    if message.endswith('700000'):
        with pytest.raises(Exception, match=r'train\.tsa_iter: 700000 must be smaller'):
            read_options(str(path), purpose='train')
        return
    opt = read_options(str(path), purpose='train')
    if 'dcn_lr_mul' in message:  # BasicSR: lr x 0.5 for parameters named *dcn*
        assert opt['train']['paramwise_cfg'] == {'custom_keys': {'dcn': {'lr_mult': 0.5}}}
    else:  # tsa_iter 0: no TSA-only phase
        assert not opt['train'].get('stages')


def test_shipped_files_are_basicsr_recipes():
    """edvr_m_x4 = woTSA + TSA + the 50k fusion-only stage; the network is EDVR-M."""
    wotsa, _ = load_option_file(osp.join(OPTIONS, 'train', 'edvr_m_x4_wotsa.yml'))
    tsa, _ = load_option_file(osp.join(OPTIONS, 'train', 'edvr_m_x4.yml'))
    assert wotsa['network_g'] == {**tsa['network_g'], 'with_tsa': False}
    assert tsa['train']['stages'][0] == {
        'name': 'tsa',
        'until_iter': 50000,
        'trainable': ['fusion.*'],
    }
    assert tsa['path']['pretrain_network_g'] == 'experiments/edvr_m_x4_wotsa/latest.pth'
    test = read_options(osp.join(OPTIONS, 'test', 'edvr_m_x4.yml'), purpose='test')
    import inspect

    from basicattn.archs.edvr_arch import EDVR

    defaults = {k: p.default for k, p in inspect.signature(EDVR).parameters.items()}
    assert {**defaults, **test['network_g']} == {**defaults, **tsa['network_g'], 'upscale': 4}
    x16 = read_options(osp.join(OPTIONS, 'train', 'edvr_l_x16_vid3oc.yml'), purpose='train')
    from basicattn.archs.edvr_arch import EDVR_X16_DKSAN

    net = {k: v for k, v in x16['network_g'].items() if k in EDVR_X16_DKSAN}
    assert net == EDVR_X16_DKSAN and x16['scale'] == 16


TINY_NET = [
    'network_g.num_feat=8',
    'network_g.deformable_groups=2',
    'network_g.num_extract_block=1',
    'network_g.num_reconstruct_block=1',
]


def _write_clips(root, names, frames, size, rng):
    import cv2

    from basicattn.data.degradation_transform import BIDegradation
    from basicattn.utils.img_util import imwrite

    deg = BIDegradation(4)
    for clip in names:
        base = cv2.GaussianBlur(
            (rng.random((size + 8, size + 8, 3)) * 255).astype(np.uint8), (9, 9), 3
        )
        for f in range(frames):
            img = np.ascontiguousarray(base[f : f + size, f : f + size])
            imwrite(osp.join(root, 'HR', clip, f'{f:08d}.png'), img)
            imwrite(osp.join(root, 'LR', clip, f'{f:08d}.png'), deg.degrade(img))


@pytest.mark.slow
def test_train_two_iterations_tsa_stage_then_test(tmp_path, tool):
    """options/train/edvr_m_x4.yml (tiny width, generated REDS-like clips): iteration 1
    trains only the TSA fusion, iteration 2 everything; then options/test/edvr_m_x4.yml."""
    import torch

    from basicattn.archs.edvr_arch import EDVR

    rng = np.random.default_rng(0)
    data = tmp_path / 'reds'
    _write_clips(str(data / 'train'), ['001', '002'], 6, 32, rng)
    _write_clips(str(data / 'val'), ['003'], 5, 32, rng)
    work = str(tmp_path / 'train')
    out = tool(
        'tools/train.py',
        '-opt',
        osp.join(OPTIONS, 'train', 'edvr_m_x4.yml'),
        '--set',
        *TINY_NET,
        f'datasets.train.dataroot_gt={data}/train/HR',
        f'datasets.train.dataroot_lq={data}/train/LR',
        'datasets.train.exclude_clips=null',
        'datasets.train.gt_size=32',
        'datasets.train.batch_size_per_gpu=2',
        'datasets.train.num_worker_per_gpu=0',
        'datasets.train.repeat=1',
        f'datasets.val.dataroot_gt={data}/val/HR',
        f'datasets.val.dataroot_lq={data}/val/LR',
        'datasets.val.clips=null',
        'path.pretrain_network_g=null',
        'train.total_iter=2',
        'train.scheduler.periods=[1, 1]',
        'train.scheduler.restart_weights=[1, 1]',
        "train.stages=[{name: tsa, until_iter: 1, trainable: ['fusion.*']}, "
        '{name: all, until_iter: 2, reset_optimizer: false}]',
        'val.val_freq=2',
        'logger.save_checkpoint_freq=2',
        'logger.print_freq=1',
        'logger.use_tb_logger=false',
        f'path.experiments_root={work}',
    )
    assert out.returncode == 0, out.stderr[-3000:]
    log = out.stdout + out.stderr
    tiny = EDVR(num_feat=8, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1)
    fusion = sum(p.numel() for n, p in tiny.named_parameters() if n.startswith('fusion.'))
    total = sum(p.numel() for p in tiny.parameters())
    assert f'stage 1/2 tsa from iteration 0 to 1: {fusion:,} trainable parameters' in log
    assert f'stage 2/2 all from iteration 1 to 2: {total:,} trainable parameters' in log
    assert 'REDS4/psnr' in log
    checkpoint = osp.join(work, 'iter_2.pth')
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)['state_dict']
    assert any(k.endswith('pcd_align.dcn_pack.l1.conv_offset.weight') for k in state)

    test = tool(
        'tools/test.py',
        '-opt',
        osp.join(OPTIONS, 'test', 'edvr_m_x4.yml'),
        '--checkpoint',
        checkpoint,
        '--set',
        *TINY_NET,
        f'datasets.test_reds4.dataroot_gt={data}/val/HR',
        f'datasets.test_reds4.dataroot_lq={data}/val/LR',
        'datasets.test_reds4.clips=null',
        'logger.use_tb_logger=false',
        f'path.experiments_root={tmp_path}/test',
    )
    assert test.returncode == 0, test.stderr[-3000:]
    metrics = json.load(open(test.stdout.strip().splitlines()[-1]))['metrics']
    psnr = [v for k, v in metrics['REDS4'].items() if k.startswith('psnr')]
    assert psnr and all(np.isfinite(psnr)), metrics
