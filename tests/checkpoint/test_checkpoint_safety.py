"""One loader, no remote code, nothing removed outside the work dir (issue 12, 1 and 2)."""

import os
import os.path as osp
import pickle
import re
import tokenize

import pytest
import torch

from basicattn.checkpoint import io as checkpoint_io
from basicattn.checkpoint import work_dir
from basicattn.checkpoint.io import (
    AtomicLocalBackend,
    check_training_state,
    confine_removals,
    is_url,
    safe_load,
)
from basicattn.checkpoint.state import extract_generator_state, load_network_weights
from basicattn.engine.hooks import rebase_runtime_paths
from basicattn.errors import CheckpointError, UserError

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


class MarkerPayload:
    """Unpickling this creates ``path`` (a stand-in for arbitrary code)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


def malicious_bytes(marker):
    """A pickle whose loading would create ``marker``."""
    return pickle.dumps({'state_dict': MarkerPayload(str(marker))}, protocol=2)


@pytest.fixture
def restore_mmengine_io(monkeypatch):
    """Undo install() afterwards: mmengine's tables are process-wide
    (register_scheme replaces ``_schemes``, hence setattr)."""
    from mmengine.fileio.backends import registry_utils
    from mmengine.runner.checkpoint import CheckpointLoader

    saved = [
        (table, table.copy())
        for table in (registry_utils.backends, registry_utils.prefix_to_backends)
    ]
    monkeypatch.setattr(CheckpointLoader, '_schemes', CheckpointLoader._schemes.copy())
    yield
    for table, copy in saved:
        table.clear()
        table.update(copy)


# -- the loader ------------------------------------------------------------------
@pytest.mark.parametrize(
    'path',
    [
        'http://127.0.0.1:1/x.pth',
        'https://a/b.pth',
        'pavi://x',
        'modelzoo://x',
        'torchvision://x',
        'open-mmlab://x',
        'openmmlab://x',
        'mmcls://x',
        's3://b/x',
        'petrel://b/x',
        'open-mmlab:s3://b/x',
        'ftp://h/x',
        'whatever+v2://x',
    ],
)
def test_urls_are_refused_by_the_loader(path):
    assert is_url(path)
    with pytest.raises(CheckpointError) as info:
        safe_load(path, option='path.resume_state')
    message = str(info.value)
    assert path in message and 'path.resume_state' in message
    assert 'local path' in message and '\n' not in message


@pytest.mark.parametrize(
    'path', ['iter_3.pth', '/abs/dir/iter_3.pth', './a:b.pth', 'dir/x://y.pth']
)
def test_local_paths_are_not_urls(path):
    assert not is_url(path)


def _bad_files(folder):
    good = folder / 'good.pth'
    torch.save({'w': torch.ones(3)}, good)
    data = good.read_bytes()
    legacy = folder / 'legacy.pth'
    torch.save({'w': torch.ones(3)}, legacy, _use_new_zipfile_serialization=False)
    files = {
        'truncated.pth': data[: len(data) // 2],
        'truncated_legacy.pth': legacy.read_bytes()[:-20],
        'empty.pth': b'',
        'text.pth': b'hello, not a checkpoint\n',
        'malicious.pth': malicious_bytes(folder / 'marker'),
        'malicious_p4.pth': pickle.dumps({'x': MarkerPayload(str(folder / 'marker'))}, protocol=4),
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return sorted(files)


def test_bad_files_give_one_line_naming_the_path(tmp_path, recwarn):
    for name in _bad_files(tmp_path):
        path = str(tmp_path / name)
        with pytest.raises(CheckpointError) as info:
            safe_load(path, option='input')
        message = str(info.value)
        assert path in message and 'input' in message, message
        assert '\n' not in message and len(message) < 400, message
        if name.startswith('truncated') or name == 'empty.pth':
            assert 'truncated' in message, message
        if name == 'malicious.pth':
            assert 'could run code' in message and 'open' in message, message
    assert not (tmp_path / 'marker').exists()
    assert not [w for w in recwarn.list if 'pickle protocol' in str(w.message)]


def test_missing_file_names_the_option(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'path.pretrain_network_g .*nope.pth'):
        safe_load(str(tmp_path / 'nope.pth'), option='path.pretrain_network_g')


def test_weights_only_file_cannot_resume():
    with pytest.raises(CheckpointError, match='pretrain_network_g') as info:
        check_training_state({'state_dict': {}}, '/x/net.pth')
    assert '/x/net.pth' in str(info.value) and 'path.resume_state' in str(info.value)
    check_training_state(
        {'state_dict': {}, 'message_hub': {}, 'meta': {'iter': 3, 'epoch': 0}}, '/x/iter_3.pth'
    )
    with pytest.raises(CheckpointError):
        check_training_state(torch.ones(1), '/x/tensor.pth')


def test_wrong_content_is_a_checkpoint_error():
    with pytest.raises(CheckpointError, match=r'w.pth: not a checkpoint .*Tensor'):
        extract_generator_state(torch.ones(2), 'state_dict', 'w.pth')
    with pytest.raises(CheckpointError, match=r"w.pth: no 'params' in checkpoint"):
        extract_generator_state({'state_dict': {}}, 'params', 'w.pth')
    with pytest.raises(CheckpointError, match=r'w.pth: state_dict holds a list'):
        extract_generator_state({'state_dict': [1]}, 'state_dict', 'w.pth')
    net = torch.nn.Linear(2, 2)
    with pytest.raises(CheckpointError) as info:
        load_network_weights(net, {'weight': torch.ones(3, 3)}, True, 'w.pth')
    message = str(info.value)
    assert message.startswith('w.pth: these weights do not fit Linear') and '\n' not in message
    assert 'bias' in message


# -- mmengine's loaders after install() ------------------------------------------
SCHEMES = [
    'pavi://x',
    'modelzoo://x',
    'torchvision://x',
    'open-mmlab://x',
    'openmmlab://x',
    'mmcls://x',
    's3://b/x',
    'open-mmlab:s3://b/x',
    'petrel://b/x',
    'http://127.0.0.1:9/x.pth',
    'https://127.0.0.1:9/x.pth',
    'newscheme://x',
]


@pytest.mark.parametrize('url', SCHEMES)
def test_every_mmengine_scheme_is_refused(url, restore_mmengine_io, monkeypatch):
    import mmengine.runner
    from mmengine.runner.checkpoint import CheckpointLoader

    def no_download(*args, **kwargs):
        raise AssertionError(f'an unsafe loader was reached for {url}')

    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', no_download)
    checkpoint_io.install()
    for prefix in CheckpointLoader._schemes:
        if prefix:
            assert CheckpointLoader._schemes[prefix] is checkpoint_io.load_from_url_refused, prefix
    with pytest.raises(CheckpointError, match=re.escape(url)):
        CheckpointLoader.load_checkpoint(url)
    with pytest.raises(CheckpointError, match=re.escape(url)):
        mmengine.runner.load_checkpoint(torch.nn.Linear(1, 1), url)


def test_scheme_registered_later_is_refused_by_a_second_install(restore_mmengine_io):
    from mmengine.runner.checkpoint import CheckpointLoader

    checkpoint_io.install()
    CheckpointLoader.register_scheme('zzz://', loader=lambda f, m=None: {'ran': True})
    checkpoint_io.install()
    with pytest.raises(CheckpointError):
        CheckpointLoader.load_checkpoint('zzz://x')


def test_local_malicious_file_via_mmengine(tmp_path, restore_mmengine_io):
    from mmengine.runner.checkpoint import CheckpointLoader

    checkpoint_io.install()
    evil = tmp_path / 'evil.pth'
    evil.write_bytes(malicious_bytes(tmp_path / 'marker'))
    with pytest.raises(CheckpointError, match='evil.pth'):
        CheckpointLoader.load_checkpoint(str(evil))
    assert not (tmp_path / 'marker').exists()


# -- removals stay inside the work dir --------------------------------------------
def test_backend_refuses_removals_outside_the_work_dir(tmp_path):
    inside, outside = tmp_path / 'run', tmp_path / 'other'
    inside.mkdir()
    outside.mkdir()
    (inside / 'a.pth').write_bytes(b'a')
    (outside / 'b.pth').write_bytes(b'b')
    (outside / 'sub').mkdir()
    backend = AtomicLocalBackend()
    try:
        confine_removals(str(inside))
        backend.remove(str(outside / 'b.pth'))
        backend.rmtree(str(outside / 'sub'))
        backend.remove(str(inside / '..' / 'other' / 'b.pth'))
        assert (outside / 'b.pth').exists() and (outside / 'sub').is_dir()
        backend.remove(str(inside / 'a.pth'))
        assert not (inside / 'a.pth').exists()
    finally:
        confine_removals(None)
    backend.remove(str(outside / 'b.pth'))  # without a work dir: as before
    assert not (outside / 'b.pth').exists()


# -- the experiment folder ------------------------------------------------------------
def test_pointer_is_relative_and_resolved_inside(tmp_path):
    run = tmp_path / 'run'
    run.mkdir()
    (run / 'iter_3.pth').write_bytes(b'x')
    assert work_dir.read_pointer(str(run))[0] is None
    assert work_dir.write_pointer(str(run), str(run / 'iter_3.pth')) == 'iter_3.pth'
    assert (run / 'last_checkpoint').read_text() == 'iter_3.pth'
    for content in ('iter_3.pth', '/original/run/iter_3.pth', '../elsewhere/iter_3.pth'):
        (run / 'last_checkpoint').write_text(content)
        assert work_dir.read_pointer(str(run))[0] == str(run / 'iter_3.pth')
    (run / 'last_checkpoint').write_text('https://example.com/iter_3.pth')
    with pytest.raises(CheckpointError, match='last_checkpoint.*https://example.com'):
        work_dir.read_pointer(str(run))


@pytest.mark.parametrize(
    'content, what',
    [
        (b'iter_3\x00.pth', 'a NUL byte at offset 6'),
        (b'iter_\xff3.pth', 'byte 0xff at offset 5 is not UTF-8'),
    ],
)
def test_damaged_pointer_is_one_line(tmp_path, content, what):
    """Before: ValueError (embedded null byte) and UnicodeDecodeError tracebacks."""
    (tmp_path / 'last_checkpoint').write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        work_dir.read_pointer(str(tmp_path))
    assert str(info.value) == (
        f'{tmp_path}/last_checkpoint is damaged: {what}; put the file name of a checkpoint '
        'of this folder in it (e.g. iter_1000.pth) or delete it to start afresh'
    )


def test_runtime_paths_are_rebased(tmp_path):
    checkpoint = {
        'message_hub': {
            'runtime_info': {
                'best_ckpt': '/original/run/best_psnr_iter_3.pth',
                'last_ckpt': '/original/run/iter_3.pth',
                'best_ckpt_set/psnr': '/original/run/best_x.pth',
                'best_score': 30.0,
                'iter': 3,
            }
        }
    }
    changed = rebase_runtime_paths(checkpoint, str(tmp_path))
    info = checkpoint['message_hub']['runtime_info']
    assert info['best_ckpt'] == str(tmp_path / 'best_psnr_iter_3.pth')
    assert info['last_ckpt'] == str(tmp_path / 'iter_3.pth')
    assert info['best_ckpt_set/psnr'] == str(tmp_path / 'best_x.pth')
    assert info['best_score'] == 30.0 and set(changed) == {
        'best_ckpt',
        'last_ckpt',
        'best_ckpt_set/psnr',
    }


def test_archive_existing(tmp_path, capsys):
    folder = tmp_path / 'exp'
    assert work_dir.archive_existing(str(folder)) is None  # missing
    folder.mkdir()
    assert work_dir.archive_existing(str(folder)) is None  # empty: used as it is
    (folder / 'iter_3.pth').write_bytes(b'x')
    first = work_dir.archive_existing(str(folder))
    assert re.fullmatch(re.escape(str(folder)) + r'_archived_\d{8}_\d{6}', first)
    assert (tmp_path / osp.basename(first) / 'iter_3.pth').read_bytes() == b'x'
    assert 'moved them to' in capsys.readouterr().out
    folder.mkdir()
    (folder / 'f').write_bytes(b'y')
    stamp = first.rsplit('_archived_', 1)[1]
    assert work_dir.archive_name(str(folder), stamp) == f'{first}_2'
    with pytest.raises(UserError, match='reads .*f from it'):
        work_dir.archive_existing(str(folder), keep=[str(folder / 'f')])
    assert (folder / 'f').exists()


# -- one loader in the code -----------------------------------------------------------
def _code_tokens(path):
    with open(path, 'rb') as f:
        tokens = [
            t for t in tokenize.tokenize(f.readline) if t.type in (tokenize.NAME, tokenize.OP)
        ]
    return tokens


LOADER_NAMES = {'load_checkpoint', '_load_checkpoint'}


def _unsafe_uses(path):
    """(line, text) of checkpoint loads that bypass checkpoint_io.safe_load."""
    tokens = _code_tokens(path)
    found = []
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1].string if i + 1 < len(tokens) else ''
        prev = tokens[i - 1].string if i else ''
        after = tokens[i + 2].string if i + 2 < len(tokens) else ''
        if tok.string == 'torch' and nxt == '.' and after in ('load', 'hub'):
            found.append((tok.start[0], f'torch.{after}'))
        elif tok.string in ('load_state_dict_from_url', 'load_url'):
            found.append((tok.start[0], tok.string))
        elif tok.string == 'hub' and prev in ('import', ','):  # from torch import hub
            found.append((tok.start[0], 'hub'))
        elif tok.string in LOADER_NAMES and nxt == '(' and prev != 'def':
            found.append((tok.start[0], f'{tok.string}('))
    return found


def _python_files():
    for top in ('basicattn', 'tools', 'benchmarks'):
        for root, _, files in os.walk(osp.join(REPO_ROOT, top)):
            for name in files:
                if name.endswith('.py'):
                    yield osp.join(root, name)


def test_scanner_sees_what_it_must():
    source = (
        b'import torch\nx = torch.load(p)\nfrom torch.hub import load_state_dict_from_url\n'
        b'runner.load_checkpoint(p)\nmmengine.runner.checkpoint._load_checkpoint(p)\n'
        b'def after_load_checkpoint(self, runner, checkpoint):\n    pass\n'
        b'call_hook("after_load_checkpoint")\n# torch.load( in a comment\n'
        b's = "torch.load("\nself.after_load_checkpoint(runner, c)\n'
        b'from torch import nn, hub\n'
    )
    path = osp.join(os.environ.get('TMPDIR', '/tmp'), f'scan_probe_{os.getpid()}.py')
    with open(path, 'wb') as f:
        f.write(source)
    try:
        uses = _unsafe_uses(path)
    finally:
        os.remove(path)
    assert [line for line, _ in uses] == [2, 3, 3, 4, 5, 12]


def test_every_checkpoint_load_goes_through_the_one_loader():
    own = osp.join(REPO_ROOT, 'basicattn', 'checkpoint', 'io.py')
    offenders = [
        f'{osp.relpath(path, REPO_ROOT)}:{line}: {what}'
        for path in _python_files()
        if path != own
        for line, what in _unsafe_uses(path)
    ]
    assert offenders == [], 'load through basicattn.checkpoint.io.safe_load:\n' + '\n'.join(
        offenders
    )


def test_readme_claim():
    with open(osp.join(REPO_ROOT, 'README.md'), encoding='utf-8') as f:
        assert 'always loaded with `weights_only=True`' in f.read()


def test_plan_fresh_run(tmp_path):
    folder = tmp_path / 'exp'
    assert work_dir.plan_fresh_run(str(folder), 'train') == 'use'
    folder.mkdir()
    (folder / 'options.yml').write_text('x')
    assert work_dir.plan_fresh_run(str(folder), 'train') == 'archive'
    assert work_dir.plan_fresh_run(str(folder), 'test') == 'archive'  # earlier test results
    (folder / 'iter_3.pth').write_bytes(b'x')
    # a test run in a training folder adds its results and renames nothing ...
    assert work_dir.plan_fresh_run(str(folder), 'test', [str(folder / 'iter_3.pth')]) == 'use'
    # ... unless it would overwrite earlier test results
    (folder / 'metrics.json').write_text('{}')
    with pytest.raises(UserError, match='already holds test results'):
        work_dir.plan_fresh_run(str(folder), 'test')
    # a fresh training run that reads its weights from the folder it would archive
    with pytest.raises(UserError, match='reads .*iter_3.pth'):
        work_dir.plan_fresh_run(str(folder), 'train', [str(folder / 'iter_3.pth')])
