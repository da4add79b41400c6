"""MANA through its three training stages at tiny scale on the shared
Vimeo-90K sample (tools/train.py), then tools/test.py per clip; and the
paper-scale option files validate."""

import json
import os.path as osp

import pytest
import torch
import yaml
from conftest import REPO_ROOT

from basicattn.checkpoint.io import safe_load
from basicattn.config import read_options

TINY_MANA = dict(
    type='MANA',
    num_feat=8,
    num_frames=3,
    num_encoder_blocks=1,
    num_decoder_blocks=1,
    embed_dim=4,
    num_groups=4,
    num_slots=8,
    hr_feat=8,
)


def test_paper_option_files_validate():
    opt = read_options(osp.join(REPO_ROOT, 'options', 'train', 'mana_x4_vimeo.yml'))
    stages = opt['train']['stages']
    assert [s['until_iter'] for s in stages] == [90000, 120000, 150000]
    assert opt['train']['total_iter'] == 150000
    assert [s['losses'] for s in stages] == [['pixel'], ['quant'], ['pixel']]
    assert stages[0]['frozen'] == ['memory.*'] and stages[1]['trainable'] == ['memory.*']
    assert opt['train']['optim_g']['betas'] == [0.5, 0.99]
    assert opt['datasets']['train']['batch_size_per_gpu'] == 16
    assert opt['datasets']['train']['gt_size'] == 256  # 64x64 LR
    assert opt['network_g']['num_slots'] == 512  # the paper's N (Sec. 4.1)
    test = read_options(osp.join(REPO_ROOT, 'options', 'test', 'mana_x4_vimeo.yml'), purpose='test')
    for o in (opt, test):  # the paper's RGB PSNR/SSIM
        assert {(m['test_y_channel'], m['crop_border']) for m in o['val']['metrics'].values()} == {
            (False, 0)
        }
    assert test['network_g'] == opt['network_g']


@pytest.mark.parametrize(
    'row, slots, memory',
    [('n128', 128, True), ('n256', 256, True), ('n1024', 1024, True), ('nomem', 512, False)],
)
def test_table2_rows_train_and_test_the_same_network(row, slots, memory):
    """Table 2's rows: the train and test file of a row build the same network."""
    train = read_options(osp.join(REPO_ROOT, 'options', 'train', f'mana_x4_vimeo_{row}.yml'))
    test = read_options(
        osp.join(REPO_ROOT, 'options', 'test', f'mana_x4_vimeo_{row}.yml'), purpose='test'
    )
    assert train['network_g'] == test['network_g']
    assert train['network_g']['num_slots'] == slots
    assert train['network_g'].get('use_memory', True) is memory
    assert test['path']['pretrain_network_g'] == f'experiments/mana_x4_vimeo_{row}/latest.pth'
    if not memory:  # no memory: no quantisation loss, no memory stage
        assert list(train['train']['losses']) == ['pixel']
        assert [s['until_iter'] for s in train['train']['stages']] == [90000, 120000]


def test_the_authors_code_variant():
    opt = read_options(osp.join(REPO_ROOT, 'options', 'train', 'mana_x4_vimeo_code.yml'))
    assert opt['network_g']['num_slots'] == 256
    assert opt['train']['optim_g'] == {'type': 'Adam', 'lr': 1e-4, 'betas': [0.5, 0.999]}
    assert [s['lr'] for s in opt['train']['stages']] == [1e-4, 1e-4, 1e-4]
    assert opt['val']['metrics']['psnr']['test_y_channel'] is True


def _tiny_options(root, sequences):
    opt = yaml.safe_load(open(osp.join(REPO_ROOT, 'options', 'train', 'mana_x4_vimeo.yml')))
    train, val = opt['datasets']['train'], opt['datasets']['val']
    train.update(
        dataroot_gt=sequences,
        meta_info_file=osp.join(root, 'train.txt'),
        num_frame=3,
        gt_size=32,
        batch_size_per_gpu=2,
        num_worker_per_gpu=0,
    )
    val.update(dataroot_gt=sequences, meta_info_file=osp.join(root, 'val.txt'), num_frame=3)
    opt['network_g'] = dict(TINY_MANA)
    opt['train'].update(total_iter=6, optim_g={'type': 'Adam', 'lr': 1e-3, 'betas': [0.5, 0.99]})
    for stage, end in zip(opt['train']['stages'], (2, 4, 6)):
        stage.update(until_iter=end, lr=1e-3)
    opt['path'] = dict(
        experiments_root=osp.join(root, 'exp'), pretrain_network_g=osp.join(root, 'init.pth')
    )
    opt['val'].update(val_freq=6)
    opt['logger'] = dict(print_freq=1, save_checkpoint_freq=2, use_tb_logger=False)
    return opt


@pytest.mark.slow
def test_three_stages_on_vimeo_sample_then_test_per_clip(testdata, tmp_path, tool):
    sequences = testdata('vimeo90k_sample', 'sequences')
    root = str(tmp_path)
    (tmp_path / 'train.txt').write_text(''.join(f'00001/{i:04d}\n' for i in range(1, 9)))
    (tmp_path / 'val.txt').write_text('00002/0001\n00002/0002\n')
    from basicattn.registry import ARCHS

    torch.manual_seed(0)
    torch.save({'state_dict': ARCHS.build(dict(TINY_MANA)).state_dict()}, f'{root}/init.pth')
    opt_file = tmp_path / 'mana_tiny.yml'
    opt_file.write_text(yaml.safe_dump(_tiny_options(root, sequences), sort_keys=False))
    out = tool('tools/train.py', '-opt', str(opt_file))
    assert out.returncode == 0, out.stderr[-3000:]
    log = out.stdout + out.stderr
    assert 'stage 3/3 all from iteration 4 to 6' in log
    w = {0: safe_load(f'{root}/init.pth')['state_dict']}
    for it in (2, 4, 6):
        state = safe_load(f'{root}/exp/iter_{it}.pth')['state_dict']
        w[it] = {k.replace('generator.', '', 1): v for k, v in state.items()}

    def changed(a, b):
        return {k for k in w[a] if not torch.equal(w[a][k], w[b][k])}

    memory = {k for k in w[0] if k.startswith('memory.')}
    assert memory == {'memory.bank', 'memory.conv_out.weight', 'memory.conv_out.bias'}
    stage1, stage2, stage3 = changed(0, 2), changed(2, 4), changed(4, 6)
    assert not stage1 & memory and len(stage1) > 10  # memory frozen, the rest trains
    assert stage2 == {'memory.bank'}  # the quantisation loss reaches only the bank
    assert memory <= stage3 and stage1 <= stage3  # everything trains again
    # tools/test.py on the two held-out clips: per-clip table and metrics.json (RGB, the paper's)
    test = tool(
        'tools/test.py',
        '-opt',
        str(opt_file),
        '--checkpoint',
        f'{root}/exp/iter_6.pth',
        '--set',
        f'path.experiments_root={root}/test',
    )
    assert test.returncode == 0, test.stderr[-3000:]
    assert 'per clip' in test.stdout and '00002/0002' in test.stdout
    metrics = json.load(open(test.stdout.strip().splitlines()[-1]))['metrics']
    per_clip = json.load(open(f'{root}/test/metrics_per_clip.json'))['Vimeo90K_test']
    mean = sum(v['psnr_rgb_crop0'] for v in per_clip.values()) / len(per_clip)
    assert abs(metrics['Vimeo90K_test']['psnr_rgb_crop0'] - mean) < 1e-9
    # per frame: keys clip/frame, the frames of each clip average to its per-clip value
    frames = json.load(open(f'{root}/test/metrics_per_image.json'))['Vimeo90K_test']
    for clip, values in per_clip.items():
        own = [v['psnr_rgb_crop0'] for k, v in frames.items() if k.startswith(clip + '/')]
        assert own and abs(sum(own) / len(own) - values['psnr_rgb_crop0']) < 1e-9
