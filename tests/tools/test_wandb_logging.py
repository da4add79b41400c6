"""``logger.wandb``: training logs to W&B through mmengine's WandbVisBackend, or says why not."""

import json
import os.path as osp
import textwrap

import pytest

from basicattn.engine import logging_backends
from basicattn.engine.logging_backends import vis_backends

# A stand-in for the wandb package that writes each call it gets to $FAKE_WANDB_CALLS.
FAKE_WANDB = """
import json, os

def _record(name, **fields):
    with open(os.environ['FAKE_WANDB_CALLS'], 'a') as f:
        f.write(json.dumps(dict(call=name, **fields), default=str) + '\\n')

def init(**kwargs):
    _record('init', kwargs=kwargs)

def define_metric(*args, **kwargs):
    pass

def log(data, commit=True):
    _record('log', keys=sorted(data))

def Image(image):
    return 'image'

def watch(*args, **kwargs):
    pass

def join():
    _record('join')

class _Config:
    def update(self, data, allow_val_change=False):
        _record('config', keys=sorted(data))

class _Run:
    def log_code(self, name=None):
        pass

config, run = _Config(), _Run()
"""


def _opt(**wandb):
    return {'name': 'exp', 'logger': {'use_tb_logger': False, 'wandb': wandb}}


def test_no_project_means_no_wandb_and_no_message(capsys):
    assert vis_backends(_opt(project=None), 'train') == [dict(type='LocalVisBackend')]
    assert capsys.readouterr().err == ''


def test_not_installed_is_one_warning_line(capsys, monkeypatch):
    monkeypatch.setattr(logging_backends, 'wandb_installed', lambda: False)
    assert vis_backends(_opt(project='sr'), 'train') == [dict(type='LocalVisBackend')]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith('warning: logger.wandb: wandb is not installed')
    assert 'pip install wandb' in err[0]


def test_installed_builds_the_mmengine_backend(monkeypatch):
    monkeypatch.setattr(logging_backends, 'wandb_installed', lambda: True)
    backends = vis_backends(_opt(project='sr', entity='lab', resume_id='abc123'), 'train')
    assert backends[-1] == dict(
        type='WandbVisBackend',
        init_kwargs=dict(project='sr', name='exp', entity='lab', id='abc123', resume='allow'),
    )
    assert vis_backends(_opt(project='sr'), 'test') == [dict(type='LocalVisBackend')]


@pytest.mark.slow
def test_training_logs_to_wandb(tiny_experiment, tool, tmp_path):
    fake = tmp_path / 'fake_site'
    (fake / 'wandb').mkdir(parents=True)
    (fake / 'wandb' / '__init__.py').write_text(textwrap.dedent(FAKE_WANDB))
    calls_file = tmp_path / 'calls.jsonl'
    path = tiny_experiment(
        'wandb',
        **{
            'train.total_iter': 2,
            'val.val_freq': 2,
            'logger.wandb': {'project': 'basicattn-test', 'resume_id': None},
        },
    )
    from conftest import REPO_ROOT

    result = tool(
        'tools/train.py',
        '-opt',
        path,
        env={'PYTHONPATH': f'{REPO_ROOT}{osp.pathsep}{fake}', 'FAKE_WANDB_CALLS': str(calls_file)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'wandb' not in result.stderr
    calls = [json.loads(line) for line in calls_file.read_text().splitlines()]
    (init,) = [c for c in calls if c['call'] == 'init']
    assert init['kwargs']['project'] == 'basicattn-test' and init['kwargs']['name'] == 'wandb'
    logged = set().union(*[c['keys'] for c in calls if c['call'] == 'log'])
    assert {'loss', 'lr', 'tinyval/psnr_y_crop2', 'tinyval/im0'} <= logged, logged
