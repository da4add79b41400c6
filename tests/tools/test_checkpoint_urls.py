"""A checkpoint URL never runs code (issue 12, section 1).

A local HTTP server serves a pickle whose loading would create a marker file.
Its URL, given wherever a checkpoint can be named, is refused before anything
is fetched: exit code 2, one short line naming the option and the URL.
"""

import os
import os.path as osp
import re

import pytest
from malicious_checkpoint import malicious_bytes, serve


@pytest.fixture
def evil(tmp_path):
    marker = tmp_path / 'marker'
    with serve(malicious_bytes(marker)) as server:
        server.marker = marker
        yield server
    assert not marker.exists(), 'the payload ran'
    assert server.requests == [], f'the URL was fetched: {server.requests}'


def _assert_refused(out, option, url):
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) < 10, out.stderr
    assert 'Traceback' not in out.stderr
    line = lines[-1]
    assert line.startswith('error: ') and option in line and url in line, out.stderr


@pytest.mark.parametrize('key', ['resume_state', 'pretrain_network_g'])
def test_train_refuses_url_options(key, evil, tiny_experiment, tool):
    opt = tiny_experiment('url')
    out = tool('tools/train.py', '-opt', opt, '--set', f'path.{key}={evil.url}')
    _assert_refused(out, f'path.{key}', evil.url)
    assert not osp.exists(osp.join(tiny_experiment.root, 'url'))  # no Runner was built


def test_auto_resume_refuses_url_in_last_checkpoint(evil, tiny_experiment, forked_tool):
    opt = tiny_experiment('pointer')
    work = osp.join(tiny_experiment.root, 'pointer')
    os.makedirs(work)
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write(evil.url)
    out = forked_tool('tools/train.py', '-opt', opt, '--auto-resume')
    _assert_refused(out, 'last_checkpoint', evil.url)
    assert sorted(os.listdir(work)) == ['last_checkpoint']


def test_test_tool_refuses_url_checkpoint(evil, tiny_experiment, forked_tool):
    opt = tiny_experiment('urltest')
    out = forked_tool('tools/test.py', '-opt', opt, '--checkpoint', evil.url)
    _assert_refused(out, '--checkpoint', evil.url)
    # the same URL written into the option itself
    out = forked_tool('tools/test.py', '-opt', opt, '--set', f'path.pretrain_network_g={evil.url}')
    _assert_refused(out, 'path.pretrain_network_g', evil.url)


def test_infer_refuses_url_checkpoint(evil, tiny_experiment, forked_tool, tmp_path):
    image = osp.join(tiny_experiment.root, 'val', 'im0.png')
    out = forked_tool(
        'tools/infer.py',
        image,
        str(tmp_path / 'out'),
        '--checkpoint',
        evil.url,
        '--arch',
        'EDSR',
        '--arch-args',
        '{"num_feat": 8, "num_block": 1}',
    )
    _assert_refused(out, '--checkpoint', evil.url)
    assert not (tmp_path / 'out').exists()


def test_loader_level_http_is_never_fetched(evil):
    """mmengine's own entry points, after install(), for an http URL."""
    import mmengine.runner
    import torch
    from mmengine.runner.checkpoint import CheckpointLoader

    from basicattn.checkpoint import io as checkpoint_io
    from basicattn.errors import CheckpointError

    checkpoint_io.install()
    with pytest.raises(CheckpointError, match=re.escape(evil.url)):
        CheckpointLoader.load_checkpoint(evil.url)
    with pytest.raises(CheckpointError, match=re.escape(evil.url)):
        mmengine.runner.load_checkpoint(torch.nn.Linear(1, 1), evil.url)


def test_local_malicious_checkpoint_everywhere(tiny_experiment, forked_tool, tmp_path):
    """The same payload as a local file: refused by name, the marker never appears."""
    marker = tmp_path / 'local_marker'
    evil = tmp_path / 'evil.pth'
    evil.write_bytes(malicious_bytes(marker))
    opt = tiny_experiment('local')
    runs = {
        'resume_state': ('tools/train.py', '-opt', opt, '--set', f'path.resume_state={evil}'),
        'pretrain': (
            'tools/train.py',
            '-opt',
            opt,
            '--set',
            f'path.pretrain_network_g={evil}',
            'train.total_iter=1',
        ),
        'test': ('tools/test.py', '-opt', opt, '--checkpoint', str(evil)),
        'convert': (
            'tools/convert_model.py',
            '--source',
            'a2n_official',
            '--scale',
            '2',
            str(evil),
            str(tmp_path / 'converted.pth'),
        ),
    }
    for name, args in runs.items():
        out = forked_tool(*args)
        assert out.returncode == 2, (name, out.stderr[-3000:])
        lines = out.stderr.strip().splitlines()
        assert len(lines) < 10 and 'Traceback' not in out.stderr, (name, out.stderr)
        assert str(evil) in lines[-1] and 'could run code' in lines[-1], (name, out.stderr)
    assert not marker.exists()
    assert not (tmp_path / 'converted.pth').exists()


def test_truncated_checkpoint_is_one_line(tiny_experiment, forked_tool, tmp_path):
    import torch

    path = tmp_path / 'cut.pth'
    torch.save({'state_dict': {'w': torch.ones(64)}}, path)
    path.write_bytes(path.read_bytes()[:200])
    opt = tiny_experiment('cut')
    for args in (
        ('tools/test.py', '-opt', opt, '--checkpoint', str(path)),
        ('tools/train.py', '-opt', opt, '--set', f'path.resume_state={path}'),
    ):
        out = forked_tool(*args)
        assert out.returncode == 2, out.stderr[-3000:]
        lines = out.stderr.strip().splitlines()
        assert len(lines) < 10 and 'Traceback' not in out.stderr, out.stderr
        assert str(path) in lines[-1] and 'truncated' in lines[-1], out.stderr
