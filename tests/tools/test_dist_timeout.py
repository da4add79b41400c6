"""Distributed runs never hang silently: a stuck rank makes the job fail, named."""

import os
import subprocess
import sys
import time

import pytest
import yaml
from conftest import REPO_ROOT

SLEEPY_DATASET = '''\
"""A dataset whose rank 1 stops answering at its third sample (test_dist_timeout)."""
import os
import time

from basicattn.data.paired_image_dataset import PairedImageDataset
from basicattn.registry import DATASETS


@DATASETS.register_module(force=True)
class SleepOnRankOneDataset(PairedImageDataset):
    calls = 0

    def __getitem__(self, index):
        type(self).calls += 1
        if int(os.environ.get('RANK', 0)) == 1 and type(self).calls == 3:
            time.sleep(300)
        return super().__getitem__(index)
'''


@pytest.mark.slow
def test_stuck_rank_fails_the_job_naming_it(tiny_experiment, tmp_path):
    """dist_train.sh 2 with dist_params.timeout 5: rank 1 sleeps, rank 0 reports rank 1."""
    opt_path = tiny_experiment('stuck')
    opt = yaml.safe_load(open(opt_path))
    (tmp_path / 'sleepy_dataset.py').write_text(SLEEPY_DATASET)
    opt['custom_imports'] = ['sleepy_dataset']
    opt['datasets']['train']['type'] = 'SleepOnRankOneDataset'
    opt['dist_params'] = {'timeout': 5}
    opt['train']['total_iter'] = 20
    opt['val']['val_freq'] = 20
    opt['logger'].update(save_checkpoint_freq=20, use_tb_logger=False)
    with open(opt_path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    env = dict(os.environ, PORT='29641', OMP_NUM_THREADS='1', PYTHON=sys.executable)
    start = time.monotonic()
    out = subprocess.run(
        ['bash', 'tools/dist_train.sh', '2', opt_path],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    elapsed = time.monotonic() - start
    text = out.stdout + out.stderr
    assert out.returncode != 0, text[-3000:]
    errors = [line for line in text.splitlines() if line.startswith('error: rank 0:')]
    assert errors, text[-3000:]
    assert 'timed out after 5 s (dist_params.timeout)' in errors[0]
    assert 'rank(s) that did not answer: 1 (of 2)' in errors[0]
    # no traceback from the ranks (torchrun's launcher prints its own ChildFailedError)
    assert 'train.py", line' not in text, text[-3000:]
    assert 'RuntimeError: [' not in text, text[-3000:]
    # startup of two processes on a loaded CI machine, then 5 s timeout + 5 s roll call
    assert elapsed < 90, f'took {elapsed:.0f} s'


# -- unit checks of basicattn/engine/dist_env.py (no processes started) ------------


def test_init_distributed_passes_the_timeout(monkeypatch):
    import datetime

    from basicattn.engine import dist_env

    seen = {}
    monkeypatch.setattr(dist_env.dist, 'is_initialized', lambda: False)
    monkeypatch.setattr(dist_env.dist, 'init_process_group', lambda **kw: seen.update(kw))
    monkeypatch.setattr(dist_env.torch.cuda, 'is_available', lambda: False)
    monkeypatch.setitem(dist_env._state, 'timeout_s', 600)
    assert dist_env.init_distributed('pytorch', 'auto', 29500, timeout=7) == 'gloo'
    assert seen == {'backend': 'gloo', 'timeout': datetime.timedelta(seconds=7)}
    assert dist_env._state['timeout_s'] == 7


def test_runner_config_gives_mmengine_the_timeout():
    from conftest import tiny_options

    from basicattn.config.options import validate_options
    from basicattn.engine.builder import runner_cfg

    opt = validate_options(tiny_options('/nonexistent'), source='x.yml')
    assert runner_cfg(opt)['env_cfg']['dist_cfg']['timeout'] == 600
    opt['dist_params']['timeout'] = 42
    assert runner_cfg(opt)['env_cfg']['dist_cfg']['timeout'] == 42


@pytest.mark.parametrize(
    'text,expected',
    [
        (
            '[/x/gloo/transport/tcp/unbound_buffer.cc:78] Timed out waiting 5000ms for recv '
            'operation to complete',
            True,
        ),
        (
            'Watchdog caught collective operation timeout: WorkNCCL(SeqNum=3, OpType=ALLREDUCE)',
            True,
        ),
        ('DataLoader timed out after 5 seconds', False),
        ('Connection closed by peer [127.0.0.1]:1234', False),
    ],
)
def test_is_collective_timeout(text, expected):
    from basicattn.engine.dist_env import is_collective_timeout

    assert is_collective_timeout(RuntimeError(text)) is expected
    assert is_collective_timeout(ValueError(text)) is False


def test_describe_timeout_cases():
    from basicattn.engine.dist_env import describe_timeout

    err = RuntimeError('[/x/unbound_buffer.cc:78] Timed out waiting 5000ms for recv')
    line = describe_timeout(err, [1, 3], 0, 4, 5)
    assert line.startswith(
        'rank 0: a collective operation timed out after 5 s '
        '(dist_params.timeout); rank(s) that did not answer: 1, 3 (of 4)'
    )
    assert line.endswith('(Timed out waiting 5000ms for recv)')
    assert 'out of step' in describe_timeout(err, [], 2, 4, 5)
    assert 'could not be asked' in describe_timeout(err, None, 2, 4, 5)


def test_timeout_report_passes_other_errors_through():
    from basicattn.engine.dist_env import collective_timeout_report

    with pytest.raises(RuntimeError, match='Timed out'):  # not distributed: unchanged
        with collective_timeout_report():
            raise RuntimeError('Timed out waiting 5000ms')
    with pytest.raises(KeyError):
        with collective_timeout_report():
            raise KeyError('x')


# -- SLURM: scontrol is run with an argument list ----------------------------------


def _fake_scontrol(folder, body):
    path = folder / 'scontrol'
    path.write_text('#!/bin/sh\n' + body)
    path.chmod(0o755)
    return path


@pytest.fixture
def slurm_env(monkeypatch):
    for key in ('MASTER_ADDR', 'MASTER_PORT', 'WORLD_SIZE', 'RANK', 'LOCAL_RANK'):
        # set first so that monkeypatch records the variable and removes what the
        # code under test writes into os.environ (a leaked MASTER_ADDR would
        # point later torchrun tests at a host that does not exist)
        monkeypatch.setenv(key, '')
        monkeypatch.delenv(key)
    monkeypatch.setenv('SLURM_PROCID', '3')
    monkeypatch.setenv('SLURM_NTASKS', '8')
    monkeypatch.setenv('SLURM_LOCALID', '1')
    return monkeypatch


def test_slurm_environment_uses_first_host(tmp_path, slurm_env):
    from basicattn.engine.dist_env import _slurm_environment

    # prints its arguments, one per line, after the two host names
    _fake_scontrol(tmp_path, 'echo node-a\necho node-b\nfor a in "$@"; do echo "arg:$a"; done\n')
    slurm_env.setenv('PATH', f'{tmp_path}:{os.environ["PATH"]}')
    marker = tmp_path / 'injected'
    slurm_env.setenv('SLURM_NODELIST', f'node-[a-b]; touch {marker}')
    _slurm_environment(29511)
    assert os.environ['MASTER_ADDR'] == 'node-a'
    assert os.environ['MASTER_PORT'] == '29511'
    assert (os.environ['WORLD_SIZE'], os.environ['RANK'], os.environ['LOCAL_RANK']) == (
        '8',
        '3',
        '1',
    )
    assert not marker.exists()  # the node list reached scontrol as one argument, no shell


def test_slurm_node_list_is_one_argument(tmp_path, monkeypatch):
    from basicattn.engine.dist_env import first_slurm_host

    # prints its argument count, then the node list it got as the third argument
    _fake_scontrol(tmp_path, 'echo "$#:$1:$2:$3"\necho second-line\n')
    monkeypatch.setenv('PATH', f'{tmp_path}:{os.environ["PATH"]}')
    assert first_slurm_host('a b; c $(x)') == '3:show:hostname:a b; c $(x)'


def test_slurm_without_scontrol_is_a_clear_error(tmp_path, slurm_env):
    from basicattn.engine.dist_env import DistributedError, _slurm_environment

    slurm_env.setenv('PATH', str(tmp_path))  # an empty folder: no scontrol
    slurm_env.setenv('SLURM_NODELIST', 'node[1-2]')
    with pytest.raises(DistributedError, match='scontrol command is not found'):
        _slurm_environment(29500)


def test_slurm_scontrol_failure_is_a_clear_error(tmp_path, slurm_env):
    from basicattn.engine.dist_env import DistributedError, _slurm_environment

    _fake_scontrol(tmp_path, 'echo "scontrol: error: bad node list" >&2\nexit 1\n')
    slurm_env.setenv('PATH', f'{tmp_path}:{os.environ["PATH"]}')
    slurm_env.setenv('SLURM_NODELIST', 'bad[')
    with pytest.raises(
        DistributedError,
        match=r"'bad\[' failed \(exit code 1\): scontrol: "
        'error: bad node list',
    ):
        _slurm_environment(29500)


def test_slurm_keeps_a_given_master_addr(tmp_path, slurm_env):
    from basicattn.engine.dist_env import _slurm_environment

    slurm_env.setenv('PATH', str(tmp_path))  # scontrol would be missing: not needed
    slurm_env.setenv('SLURM_NODELIST', 'node[1-2]')
    slurm_env.setenv('MASTER_ADDR', '10.0.0.5')
    _slurm_environment(29500)
    assert os.environ['MASTER_ADDR'] == '10.0.0.5'


def test_slurm_missing_variable_is_a_clear_error(slurm_env):
    from basicattn.engine.dist_env import DistributedError, _slurm_environment

    slurm_env.delenv('SLURM_NODELIST', raising=False)
    with pytest.raises(DistributedError, match='SLURM_NODELIST is not set'):
        _slurm_environment(29500)
