"""tools/train.py refuses bad counts, `--set` paths and failing custom_imports in one line.

The other bounded keys are checked in-process by tests/config/test_option_ranges.py.
"""

import os
import os.path as osp

import pytest
import yaml

BOOM = 'x = 1\nraise RuntimeError("boom at import")\n'


@pytest.mark.parametrize(
    'overrides,culprit',
    [
        (['train.total_iter=0'], 'train.total_iter: must be >= 1, got 0'),
        (['val.val_freq=0'], 'val.val_freq: must be >= 1, got 0'),
        (['train..total_iter=3'], "'train..total_iter=3': empty key"),
        (
            ['custom_imports=[h3_boom_module]'],
            'h3_boom_module.py) failed: RuntimeError: boom at import (line 2)',
        ),
    ],
)
def test_train_refuses_with_one_clear_error(tiny_experiment, forked_tool, overrides, culprit):
    opt_path = tiny_experiment('bad')
    with open(osp.join(osp.dirname(opt_path), 'h3_boom_module.py'), 'w') as f:
        f.write(BOOM)
    out = forked_tool('tools/train.py', '-opt', opt_path, '--set', *overrides, timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) < 10 and 'Traceback' not in out.stderr, out.stderr
    assert lines[0].startswith('error: ') and culprit in out.stderr, out.stderr
    work_dir = yaml.safe_load(open(opt_path))['path']['experiments_root']
    assert not osp.exists(work_dir)  # nothing built, nothing written


def _split_in_base_and_child(opt_path, base_change=None):
    """Rewrite a tiny option file as ``_base_/tiny.yml`` (all but name and path) + child."""
    with open(opt_path) as f:
        opt = yaml.safe_load(f)
    child = {'_base_': '_base_/tiny.yml', 'name': opt.pop('name'), 'path': opt.pop('path')}
    if base_change:
        base_change(opt)
    folder = osp.dirname(opt_path)
    base = osp.join(folder, '_base_', 'tiny.yml')
    os.makedirs(osp.dirname(base), exist_ok=True)
    with open(base, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    with open(opt_path, 'w') as f:
        yaml.safe_dump(child, f, sort_keys=False)
    return base, child


def test_typo_in_a_base_is_named_in_one_line(tiny_experiment, forked_tool):
    def typo(opt):
        opt['train']['totla_iter'] = opt['train'].pop('total_iter')

    opt_path = tiny_experiment('child')
    base, child = _split_in_base_and_child(opt_path, typo)
    out = forked_tool('tools/train.py', '-opt', opt_path, timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    assert 'Traceback' not in out.stderr and out.stderr.startswith('error: '), out.stderr
    assert f"{base}: train.totla_iter: unknown key. Did you mean 'total_iter'" in out.stderr
    assert not osp.exists(child['path']['experiments_root'])


def test_train_records_the_merged_options(tiny_experiment, forked_tool):
    """The experiment folder's options.yml is self-contained: no _base_, every
    inherited value, the --set overrides; it trains again as it is."""
    from basicattn.config.options import load_option_file

    opt_path = tiny_experiment('child')
    _, child = _split_in_base_and_child(opt_path)
    out = forked_tool(
        'tools/train.py', '-opt', opt_path, '--set', 'train.total_iter=2', timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    recorded = osp.join(child['path']['experiments_root'], 'options.yml')
    with open(recorded) as f:
        text = f.read()
    assert '_base_' not in text and '_delete_' not in text
    opt, origins = load_option_file(recorded)
    assert set(origins.values()) == {recorded}
    assert opt['train']['total_iter'] == 2 and opt['network_g']['type'] == 'EDSR'
    assert opt['datasets']['train']['gt_size'] == 16 and opt['name'] == 'child'
