"""End-to-end runs of tools/train.py and tools/test.py in fresh processes."""

import json
import os
import os.path as osp

import pytest
import torch

from basicattn.checkpoint.io import safe_load


def _weights(path):
    return safe_load(path)['state_dict']


def test_resume_in_new_process_equals_straight_run(tiny_experiment, tool):
    """6 iterations straight == 3, stop, new process resumes to 6 (bit-identical).

    Warm-up, a MultiStepLR step at 3, EMA, validation at 3 and two DataLoader
    workers are all in play, so every piece of resumable state is exercised.
    """
    changes = {'datasets.train.num_worker_per_gpu': 2}
    straight = tiny_experiment('straight', **changes)
    resumed = tiny_experiment('resumed', **changes)
    root = tiny_experiment.root
    out = tool('tools/train.py', '-opt', straight)
    assert out.returncode == 0, out.stderr[-3000:]
    first = tool('tools/train.py', '-opt', resumed, '--stop-at', '3')
    assert first.returncode == 0, first.stderr[-3000:]
    assert not osp.exists(osp.join(root, 'resumed', 'iter_6.pth'))
    second = tool('tools/train.py', '-opt', resumed, '--auto-resume')
    assert second.returncode == 0, second.stderr[-3000:]
    assert 'without replay' in second.stdout + second.stderr
    a = _weights(osp.join(root, 'straight', 'iter_6.pth'))
    b = _weights(osp.join(root, 'resumed', 'iter_6.pth'))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ema_a = safe_load(osp.join(root, 'straight', 'iter_6.pth'))['ema_state_dict']
    ema_b = safe_load(osp.join(root, 'resumed', 'iter_6.pth'))['ema_state_dict']
    assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_a)


def test_train_outputs_and_test_tool(tiny_experiment, tool):
    opt = tiny_experiment('full')
    out = tool('tools/train.py', '-opt', opt)
    assert out.returncode == 0, out.stderr[-3000:]
    log = out.stdout + out.stderr
    assert 'eta:' in log and 'tinyval/psnr_y_crop2' in log
    exp = osp.join(tiny_experiment.root, 'full')
    names = os.listdir(exp)
    assert {'iter_3.pth', 'iter_6.pth', 'latest.pth', 'options.yml'} <= set(names)
    assert any(n.startswith('best_tinyval_psnr_y_crop2') for n in names)
    assert os.readlink(osp.join(exp, 'latest.pth')) == 'iter_6.pth'
    assert not [n for n in names if n.endswith('.tmp')]
    # TensorBoard event file and validation images
    events = [f for root, _, files in os.walk(exp) for f in files if 'tfevents' in f]
    assert events
    assert os.listdir(osp.join(exp, 'visualization', 'tinyval'))
    # every checkpoint loads with weights_only=True and no allow-list beyond numpy types
    for name in ('iter_6.pth', 'latest.pth'):
        state = torch.load(osp.join(exp, name), weights_only=True)
        assert 'state_dict' in state and 'message_hub' in state
    # the test tool evaluates the trained weights and writes metrics.json
    test_out = tool(
        'tools/test.py',
        '-opt',
        opt,
        '--checkpoint',
        osp.join(exp, 'iter_6.pth'),
        '--set',
        f'path.experiments_root={exp}/test',
    )
    assert test_out.returncode == 0, test_out.stderr[-3000:]
    last_line = test_out.stdout.strip().splitlines()[-1]
    record = json.load(open(last_line))
    # what was measured: the trained checkpoint and the iteration it was saved after
    assert record['checkpoint'] == osp.join(exp, 'iter_6.pth') and record['iteration'] == 6
    assert record['options'] == osp.abspath(opt)
    metrics = record['metrics']
    assert set(metrics) == {'tinyval'}
    assert set(metrics['tinyval']) == {'psnr_y_crop2', 'ssim_y_crop2'}
    assert 'psnr_y_crop2' in test_out.stdout  # the printed table


def test_train_tool_rejects_bad_options(tiny_experiment, tool):
    opt = tiny_experiment('bad')
    out = tool('tools/train.py', '-opt', opt, '--set', 'train.totl_iter=5')
    assert out.returncode == 2
    assert 'train.totl_iter' in out.stderr and "Did you mean 'total_iter'" in out.stderr
    assert 'Traceback' not in out.stderr


@pytest.mark.slow
def test_two_process_training_on_cpu(tiny_experiment):
    """dist_train.sh 2: both ranks finish (gloo), the checkpoint loads; dist_test.sh 2 works."""
    import subprocess
    import sys

    from conftest import REPO_ROOT

    opt = tiny_experiment('dist')
    env = dict(os.environ, PORT='29631', OMP_NUM_THREADS='1', PYTHON=sys.executable)
    out = subprocess.run(
        ['bash', 'tools/dist_train.sh', '2', opt],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    for rank in (0, 1):
        assert f'basicattn: rank {rank}/2 finished training at iteration 6' in out.stdout
    checkpoint = safe_load(osp.join(tiny_experiment.root, 'dist', 'iter_6.pth'))
    from basicattn.registry import ARCHS

    net = ARCHS.build(dict(type='EDSR', num_feat=8, num_block=1, upscale=2))
    weights = {k[len('generator.') :]: v for k, v in checkpoint['state_dict'].items()}
    net.load_state_dict(weights, strict=True)
    env['PORT'] = '29632'
    test_out = subprocess.run(
        [
            'bash',
            'tools/dist_test.sh',
            '2',
            opt,
            '--checkpoint',
            osp.join(tiny_experiment.root, 'dist', 'iter_6.pth'),
            '--set',
            f'path.experiments_root={tiny_experiment.root}/dist_test',
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert test_out.returncode == 0, test_out.stderr[-3000:]
    path = test_out.stdout.strip().splitlines()[-1]
    metrics = json.load(open(path))['metrics']
    assert metrics['tinyval']['psnr_y_crop2'] > 0
    # each rank evaluated one image; the per-image table holds both
    per_image = json.load(open(osp.join(osp.dirname(path), 'metrics_per_image.json')))['tinyval']
    assert sorted(per_image) == ['im0', 'im1']
    mean = sum(v['psnr_y_crop2'] for v in per_image.values()) / 2
    assert abs(mean - metrics['tinyval']['psnr_y_crop2']) < 1e-9
    # the forward times of both ranks pooled: one frame each
    runtime = json.load(open(path))['runtime']
    assert runtime['processes'] == 2 and runtime['sets']['tinyval']['frames'] == 2
