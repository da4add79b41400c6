"""A dataset's `name` never steers where results are written."""

import json
import os
import os.path as osp

import pytest
import torch
import yaml

from basicattn.engine.builder import dataset_sets
from basicattn.utils.path_util import safe_path_component


@pytest.fixture
def tool(forked_tool):
    """These runs need no fresh interpreter: fork them (conftest.forked_tool)."""
    return forked_tool


@pytest.mark.parametrize(
    'name,expected',
    [
        ('Set5', 'Set5'),
        ('../escape', '.._escape'),
        ('/tmp/abs', '_tmp_abs'),
        ('..', '__'),
        ('.', '_'),
        ('', '_'),
        ('a\\b', 'a_b'),
        ('a\0b', 'a_b'),
        ('x/../../y', 'x_.._.._y'),
        ('.hidden', '.hidden'),
        (5, '5'),
    ],
)
def test_safe_path_component(name, expected):
    assert safe_path_component(name) == expected
    assert safe_path_component(expected) == expected  # idempotent
    assert osp.dirname(osp.join('root', safe_path_component(name))) == 'root'


def test_dataset_sets_are_safe_names():
    opt = {
        'datasets': {
            'val': {'name': '../escape'},
            'val_abs': {'name': '/tmp/abs'},
            'test_plain': {},
            'train': {'name': '/x'},
        }
    }
    assert [n for n, _ in dataset_sets(opt, 'test')] == ['test_plain', '.._escape', '_tmp_abs']
    assert [n for n, _ in dataset_sets(opt, 'train')] == ['.._escape', '_tmp_abs']


def _files_under(root):
    return {osp.join(d, f) for d, _, files in os.walk(root) for f in files}


def test_set_names_cannot_write_outside_the_work_dir(tiny_experiment, tool, tmp_path):
    """`name: ../escape`, `../../escape`, `/abs/dir`: images and metrics stay in place."""
    from basicattn.registry import ARCHS

    absolute = str(tmp_path / 'abs_target')
    opt_path = tiny_experiment('names')
    opt = yaml.safe_load(open(opt_path))
    val = opt['datasets']['val']
    names = {'val': '../escape', 'val_up': '../../escape', 'val_abs': absolute}
    for key, name in names.items():
        opt['datasets'][key] = dict(val, name=name)
    with open(opt_path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    weights = str(tmp_path / 'weights.pth')
    net = ARCHS.build(dict(type='EDSR', num_feat=8, num_block=1, upscale=2))
    torch.save({'state_dict': net.state_dict()}, weights)
    work_dir = str(tmp_path / 'names')
    before = _files_under(str(tmp_path))
    out = tool('tools/test.py', '-opt', opt_path, '--checkpoint', weights)
    assert out.returncode == 0, out.stderr[-3000:]
    written = _files_under(str(tmp_path)) - before
    outside = [p for p in written if not p.startswith(work_dir + os.sep)]
    assert not outside, outside
    assert not osp.exists(absolute) and not osp.exists(tmp_path / 'escape')
    assert not osp.exists(osp.join(work_dir, 'escape'))
    safe = sorted(safe_path_component(n) for n in names.values())
    results = osp.join(work_dir, 'results')
    assert sorted(os.listdir(results)) == safe
    for folder in safe:
        assert sorted(os.listdir(osp.join(results, folder))) == ['im0.png', 'im1.png']
    metrics = json.load(open(out.stdout.strip().splitlines()[-1]))['metrics']
    assert sorted(metrics) == safe
