"""NetworkRecordHook: the arch is recorded in every checkpoint, and the exported
``net_g_<iter>`` files are pruned like the checkpoints (``logger.max_keep_ckpts``)."""

import os
from types import SimpleNamespace

import torch

from basicattn.engine.hooks import NetworkRecordHook

ARCH = {'type': 'EDSR', 'num_feat': 4, 'num_block': 1, 'upscale': 2}


def _save(hook, work_dir, iteration):
    runner = SimpleNamespace(work_dir=str(work_dir), experiment_name='exp')
    checkpoint = {'meta': {'iter': iteration}, 'state_dict': {'generator.w': torch.ones(2)}}
    hook.before_save_checkpoint(runner, checkpoint)
    return checkpoint


def test_records_arch_and_scale(tmp_path):
    checkpoint = _save(NetworkRecordHook(ARCH, scale=2), tmp_path, 5)
    assert checkpoint['meta']['arch'] == ARCH and checkpoint['meta']['scale'] == 2
    assert os.listdir(tmp_path) == []  # no weights files unless save_weights is set


def test_keeps_the_newest_max_keep_weights_files_only(tmp_path):
    (tmp_path / 'net_g_best.safetensors').write_bytes(b'x')  # not ours: never removed
    (tmp_path / 'net_g_1.pth').write_bytes(b'x')  # another format: kept
    hook = NetworkRecordHook(ARCH, scale=2, save_weights='safetensors', max_keep=2)
    for iteration in (10, 20, 30, 40):
        _save(hook, tmp_path, iteration)
    assert sorted(os.listdir(tmp_path)) == [
        'net_g_1.pth',
        'net_g_30.safetensors',
        'net_g_40.safetensors',
        'net_g_best.safetensors',
    ]


def test_minus_one_keeps_every_file(tmp_path):
    hook = NetworkRecordHook(ARCH, save_weights='pth', max_keep=-1)
    for iteration in (1, 2, 3):
        _save(hook, tmp_path, iteration)
    assert sorted(os.listdir(tmp_path)) == ['net_g_1.pth', 'net_g_2.pth', 'net_g_3.pth']
