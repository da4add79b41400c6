"""A full disk during training: one line naming the file, nothing torn left behind."""

import os
import os.path as osp

import pytest
import yaml


@pytest.mark.slow
def test_training_on_a_full_disk_names_the_checkpoint(tiny_experiment, tool, small_disk):
    disk = small_disk('200k')
    # a network whose checkpoint (about 0.4 MB) cannot fit on the 200 KiB disk
    opt = tiny_experiment('full', network_g={'type': 'EDSR', 'num_feat': 32, 'num_block': 4})
    with open(opt, encoding='utf-8') as f:
        options = yaml.safe_load(f)
    options['path']['experiments_root'] = osp.join(disk, 'exp')
    with open(opt, 'w', encoding='utf-8') as f:
        yaml.safe_dump(options, f)
    out = tool('tools/train.py', '-opt', opt)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2, out.stderr[-2000:]
    assert len(lines) < 10 and lines[-1].startswith('error: ')
    assert 'iter_3.pth' in lines[-1] and 'No space left' in lines[-1]
    left = os.listdir(osp.join(disk, 'exp'))
    assert not [n for n in left if n.endswith('.pth') or 'tmp' in n], left
    assert 'last_checkpoint' not in left
