"""Gradient accumulation (``train.accumulate``): one iteration = one optimizer step.

Accumulating 2 batches of 2 trains exactly what batches of 4 train (EDSR has
no batch statistics; same samples, same lr schedule in optimizer steps), and
a run resumed from an odd iteration ends bit-identical to a straight one.
"""

import pytest
import tiny_runs
import torch
from test_builder import load

from basicattn.engine.builder import runner_cfg
from basicattn.errors import OptionError


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """The work dirs of a 4-iteration accumulate=2 x batch 2 run, by name."""
    root = str(tmp_path_factory.mktemp('accumulate'))
    tiny_runs.write_images(f'{root}/images')
    straight = tiny_runs.train(root, tiny_runs.options(root, 'accum2', accumulate=2))
    return root, straight


def _weights(work_dir, iteration):
    return tiny_runs.checkpoint(work_dir, iteration)['state_dict']


def test_two_batches_of_two_equal_one_batch_of_four(runs):
    root, accumulated = runs
    batch4 = tiny_runs.train(root, tiny_runs.options(root, 'batch4', batch=4))
    for iteration in (1, 4):  # after the first step and at the end (lr halved at 2)
        a, b = _weights(accumulated, iteration), _weights(batch4, iteration)
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)
    # the schedule counts optimizer steps: both halve the lr after step 2
    lrs = tiny_runs.checkpoint(accumulated, 4)['message_hub']['log_scalars']['train/lr']['log']
    assert lrs.tolist() == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4])
    assert tiny_runs.checkpoint(accumulated, 4)['message_hub']['runtime_info']['iter'] == 3


def test_resume_from_an_odd_iteration_is_exact(runs):
    root, straight = runs
    opt = tiny_runs.options(root, 'accum2_resumed', accumulate=2)
    resumed = tiny_runs.train(root, opt, stop_at=1)
    tiny_runs.train(root, opt, auto_resume=True)
    a, b = _weights(straight, 4), _weights(resumed, 4)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    optim_a = tiny_runs.checkpoint(straight, 4)['optimizer']['state']
    optim_b = tiny_runs.checkpoint(resumed, 4)['optimizer']['state']
    for index, state in optim_a.items():
        assert all(torch.equal(state[k], optim_b[index][k]) for k in state)


def test_accumulate_option_builds_the_wrapper(tmp_path):
    cfg = runner_cfg(load(tmp_path, overrides=['train.accumulate=3']), 'train')
    wrapper = cfg['optim_wrapper']
    assert wrapper['type'] == 'AccumulatingOptimWrapper'
    assert wrapper['accumulative_counts'] == 3
    assert cfg['train_cfg']['max_iters'] == 6  # optimizer steps, not batches
    amp = runner_cfg(load(tmp_path, overrides=['train.accumulate=2', 'train.amp=bf16']), 'train')
    assert amp['optim_wrapper']['type'] == 'MixedPrecisionOptimWrapper'
    assert amp['optim_wrapper']['accumulative_counts'] == 2
    plain = runner_cfg(load(tmp_path), 'train')['optim_wrapper']
    assert plain['type'] == 'OptimWrapper' and 'accumulative_counts' not in plain
    with pytest.raises(OptionError, match='train.accumulate'):
        load(tmp_path, overrides=['train.accumulate=0'])
