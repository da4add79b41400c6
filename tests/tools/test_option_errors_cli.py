"""tools/train.py refuses bad counts, `--set` paths and failing custom_imports in one line.

The other bounded keys are checked in-process by tests/engine/test_option_ranges.py.
"""

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
