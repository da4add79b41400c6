"""Bad inputs to the tools: one clean ``error:`` line each, and nothing written.

The acceptance table of issue 12, section 5. Every case runs one tool in a
process of its own on a bad input built in ``tmp_path``: the first case of
each tool as a fresh ``python tools/X.py`` (as a user runs it), the others
forked from a process that has already imported torch, mmengine and
basicattn (``fork_server.py``; the same tool code, minus 3 s of imports per
case). Each asserts:

* exit code 2 (the project's user-error code; a traceback gives 1, and 0
  means the bad input was accepted);
* stderr has fewer than 10 lines and holds ``error:``;
* every culprit of the case (key path, option, file name or URL) is named
  in stderr (with the case's temporary folder blanked out first, so that a
  culprit cannot be matched by the test id in the folder's name);
* nothing was written where it should not be: every file and folder that
  existed in ``tmp_path`` before the run is still there and unchanged, the
  only new paths are those the case allows (``may_write``: the log folder of
  a run that failed on its data or a checkpoint after it started, an empty
  output folder of infer.py; never a checkpoint), a malicious pickle's
  marker never appears, the shared data is unchanged and nothing appeared
  under the checkout's ``experiments/`` or ``results/``.

``area`` says which part of the library owns a case (``checkpoint``:
checkpoint loading, URLs, resume, conversion; ``data``: datasets, LMDB,
infer/make_lr outputs; ``options``: option files, ranges, ``--set``,
``custom_imports``, command-line arguments); the id of a case starts with
its tool. ``BASICATTN_BAD_INPUTS_LOG=FILE`` appends each outcome to FILE
(JSON lines) for the counts of the issue's closing note.
"""

import copy
import hashlib
import importlib.util
import os
import os.path as osp
import shutil
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Callable, List, Tuple, Union

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO_ROOT, run_tool, tiny_options

URL = 'http://127.0.0.1:9/x.pth'  # the discard port: nothing ever answers
OPTIONS_NAME = 'bad_options.yml'
EDSR_TINY = dict(type='EDSR', num_feat=8, num_block=1, upscale=2)
# a run that failed after it started (a data or checkpoint error, never an option
# error) may leave its log folder; no case may leave a checkpoint or metrics
RUN_LOGS = ('exp', 'exp/*')
NO_CHECKPOINTS = ('*.pth', '*last_checkpoint', '*metrics.json')


# --------------------------------------------------------------------------
# the shared, read-only inputs (one set per module)
# --------------------------------------------------------------------------


def _image(rng, h, w):
    import cv2

    img = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    return cv2.GaussianBlur(img, (5, 5), 1.5)


def _write_pngs(folder, count, h, w, rng, prefix='im'):
    from basicattn.utils.img_util import imwrite

    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        imwrite(osp.join(folder, f'{prefix}{i}.png'), _image(rng, h, w))


def _a2n_official_state_dict(scale):
    """A synthetic A2N state dict in the authors' layout (from the converter tests)."""
    path = osp.join(REPO_ROOT, 'tests', 'converters', 'test_a2n_converter.py')
    spec = importlib.util.spec_from_file_location('_a2n_converter_tests', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.official_state_dict(scale=scale)


def _tree_digest(root):
    """{relative path: sha256 (files) or 'dir'} of everything under ``root``."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            found[osp.relpath(osp.join(folder, name), root)] = 'dir'
        for name in files:
            path = osp.join(folder, name)
            rel = osp.relpath(path, root)
            if osp.islink(path):
                found[rel] = 'link:' + os.readlink(path)
                continue
            with open(path, 'rb') as f:
                found[rel] = hashlib.sha256(f.read()).hexdigest()
    return found


@pytest.fixture(scope='module')
def shared(tmp_path_factory):
    """Tiny data, checkpoints and an LMDB that the cases read but never change."""
    from basicattn.data.lmdb_builder import build_lmdb_from_folder
    from basicattn.registry import ARCHS

    root = tmp_path_factory.mktemp('bad_inputs_shared')
    rng = np.random.default_rng(0)
    _write_pngs(str(root / 'train'), 6, 48, 48, rng)
    _write_pngs(str(root / 'val'), 2, 48, 48, rng)
    _write_pngs(str(root / 'lr'), 3, 12, 16, rng, prefix='a')
    # 6 images of 48x48: 15 pages, so that the middle page is a tree or data page
    build_lmdb_from_folder(
        str(root / 'train'), str(root / 'good.lmdb'), num_workers=0, progress=False
    )
    torch.manual_seed(0)
    net = ARCHS.build(dict(EDSR_TINY))
    torch.save(
        {'state_dict': net.state_dict(), 'meta': {'arch': dict(EDSR_TINY)}},
        str(root / 'edsr_x2.pth'),
    )
    torch.save(_a2n_official_state_dict(scale=2), str(root / 'aan_x2_src.pt'))
    digest = _tree_digest(str(root))
    yield root
    assert _tree_digest(str(root)) == digest, 'a case changed the shared inputs'


# --------------------------------------------------------------------------
# what a case builds in its own tmp_path
# --------------------------------------------------------------------------


class _Payload:
    """Unpickling this creates the folder ``marker`` (the payload's trace)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _set(opt, dotted, value):
    node = opt
    keys = dotted.split('.')
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def _drop(opt, dotted):
    node = opt
    keys = dotted.split('.')
    for key in keys[:-1]:
        node = node[key]
    del node[keys[-1]]


class Ctx:
    """A case's tmp_path, the shared inputs and helpers that write bad inputs."""

    def __init__(self, tmp, shared_root):
        self.tmp = str(tmp)
        self.shared = str(shared_root)
        self.marker = osp.join(self.tmp, 'PAYLOAD_RAN')

    def path(self, *parts):
        return osp.join(self.tmp, *parts)

    def data(self, *parts):
        return osp.join(self.shared, *parts)

    def write(self, name, content):
        path = self.path(name)
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'wb' if isinstance(content, bytes) else 'w') as f:
            f.write(content)
        return path

    # option files ---------------------------------------------------------
    def base_options(self):
        opt = tiny_options(self.shared)
        opt['name'] = 'badinput'
        opt['path']['experiments_root'] = self.path('exp')
        return opt

    def options(self, changes=None, drop=(), opt=None):
        """Write the tiny EDSR options with ``{dotted.key: value}`` changes."""
        opt = copy.deepcopy(opt if opt is not None else self.base_options())
        for key, value in (changes or {}).items():
            _set(opt, key, value)
        for key in drop:
            _drop(opt, key)
        return self.write(OPTIONS_NAME, yaml.safe_dump(opt, sort_keys=False))

    # checkpoints ------------------------------------------------------------
    def truncated_checkpoint(self, name='truncated.pth'):
        with open(self.data('edsr_x2.pth'), 'rb') as f:
            data = f.read()
        return self.write(name, data[: len(data) // 2])

    def text_checkpoint(self, name='notes.pth'):
        return self.write(name, 'these are my notes, not weights\n')

    def malicious_checkpoint(self, name='evil.pth'):
        path = self.path(name)
        torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': _Payload(self.marker)}, path)
        return path

    def weights_only_checkpoint(self, name='weights_only.pth'):
        path = self.path(name)
        shutil.copyfile(self.data('edsr_x2.pth'), path)
        return path

    # images -----------------------------------------------------------------
    def images_with_a_corrupt_one(self, folder, source, corrupt='im3.png'):
        shutil.copytree(self.data(source), self.path(folder))
        return self.write(osp.join(folder, corrupt), b'\x89PNG\r\n\x1a\n but not really')


@dataclass(frozen=True)
class Case:
    id: str
    tool: str  # script under tools/
    build: Callable[[Ctx], List[str]]  # writes the bad input, returns the arguments
    culprits: Tuple[Union[str, Tuple[str, ...]], ...]  # each named in stderr (a tuple: any of)
    area: str  # checkpoint | data | options
    may_write: Tuple[str, ...] = ()  # globs (relative to tmp_path) of allowed new paths
    never: Tuple[str, ...] = NO_CHECKPOINTS  # globs that no new path may match
    timeout: int = 180


CASES = []


def case(id, tool, culprits, area, **kwargs):
    def register(build):
        CASES.append(
            Case(
                id=f'{tool[:-3]}-{id}',
                tool=tool,
                build=build,
                culprits=tuple([culprits] if isinstance(culprits, str) else culprits),
                area=area,
                **kwargs,
            )
        )
        return build

    return register


def train(c, *extra):
    return ['-opt', c.path(OPTIONS_NAME), *extra]


# --------------------------------------------------------------------------
# train.py: option files
# --------------------------------------------------------------------------


@case('options-not-yaml', 'train.py', OPTIONS_NAME, 'options')
def _(c):
    c.write(OPTIONS_NAME, 'name: tiny\nscale: [2\ntrain: {total_iter: 3\n')
    return train(c)


@case('options-not-a-mapping', 'train.py', OPTIONS_NAME, 'options')
def _(c):
    c.write(OPTIONS_NAME, '- name\n- scale\n')
    return train(c)


@case('options-empty', 'train.py', OPTIONS_NAME, 'options')
def _(c):
    c.write(OPTIONS_NAME, '')
    return train(c)


@case('options-missing', 'train.py', 'no_such_options.yml', 'options')
def _(c):
    return ['-opt', c.path('no_such_options.yml')]


@case('options-a-folder', 'train.py', 'opts_dir', 'options')
def _(c):
    os.makedirs(c.path('opts_dir'))
    return ['-opt', c.path('opts_dir')]


@case('unknown-top-level-key', 'train.py', 'manual_sead', 'options')
def _(c):
    c.options({'manual_sead': 3})
    return train(c)


@case('unknown-key-typo', 'train.py', 'logger.print_frq', 'options')
def _(c):
    c.options({'logger.print_frq': 1})
    return train(c)


@case('misplaced-key', 'train.py', 'train.val_freq', 'options')
def _(c):
    c.options({'train.val_freq': 3}, drop=['val.val_freq'])
    return train(c)


@case('unknown-dataset-key', 'train.py', 'datasets.training', 'options')
def _(c):
    opt = c.base_options()
    opt['datasets']['training'] = opt['datasets'].pop('train')
    c.options(opt=opt)
    return train(c)


@case('wrong-type-total_iter', 'train.py', 'train.total_iter', 'options')
def _(c):
    c.options({'train.total_iter': 'many'})
    return train(c)


@case('wrong-type-scale', 'train.py', 'scale', 'options')
def _(c):
    c.options({'scale': 'x2'})
    return train(c)


@case('wrong-type-dataset-arg', 'train.py', 'datasets.train.use_hflip', 'options')
def _(c):
    c.options({'datasets.train.use_hflip': 'sometimes'})
    return train(c)


@case('network_g-not-a-mapping', 'train.py', 'network_g', 'options')
def _(c):
    c.options({'network_g': 'EDSR'})
    return train(c)


@case('train-section-missing', 'train.py', 'train', 'options')
def _(c):
    c.options(drop=['train'])
    return train(c)


# --------------------------------------------------------------------------
# train.py: count-like options out of range
# --------------------------------------------------------------------------


def _range_case(key, value):
    @case(f'{key}={value}', 'train.py', key, 'options')
    def _(c):
        c.options({key: value})
        return train(c)


for _key, _value in (
    ('train.total_iter', 0),
    ('train.total_iter', -5),
    ('val.val_freq', 0),
    ('datasets.train.batch_size_per_gpu', 0),
    ('datasets.train.num_worker_per_gpu', -1),
    ('logger.print_freq', 0),
    ('logger.save_checkpoint_freq', 0),
    ('datasets.train.gt_size', 0),
    ('scale', 0),
):
    _range_case(_key, _value)


# --------------------------------------------------------------------------
# train.py: --set
# --------------------------------------------------------------------------


@case('set-without-equals', 'train.py', 'train.total_iter', 'options')
def _(c):
    c.options()
    return train(c, '--set', 'train.total_iter')


@case('set-empty-key-segment', 'train.py', 'train..total_iter', 'options')
def _(c):
    c.options()
    return train(c, '--set', 'train..total_iter=3')


@case('set-into-a-scalar', 'train.py', 'scale.factor', 'options')
def _(c):
    c.options()
    return train(c, '--set', 'scale.factor=2')


@case('set-unknown-key', 'train.py', 'train.total_iters', 'options')
def _(c):
    c.options()
    return train(c, '--set', 'train.total_iters=3')


@case('set-out-of-range', 'train.py', 'train.total_iter', 'options')
def _(c):
    c.options()
    return train(c, '--set', 'train.total_iter=-1')


# --------------------------------------------------------------------------
# train.py: registered names and their arguments
# --------------------------------------------------------------------------


def _type_case(what, key, name):
    @case(f'unknown-{what}', 'train.py', (key, name), 'options')
    def _(c):
        c.options({key: name})
        return train(c)


for _what, _key, _name in (
    ('arch', 'network_g.type', 'EDSRR'),
    ('loss', 'train.losses.pixel.type', 'L7Loss'),
    ('dataset', 'datasets.train.type', 'PairedImageDatset'),
    ('metric', 'val.metrics.psnr.type', 'PSNRR'),
    ('optimizer', 'train.optim_g.type', 'Adamm'),
    ('scheduler', 'train.scheduler.type', 'MultiStepLRR'),
):
    _type_case(_what, _key, _name)


@case('unknown-arch-argument', 'train.py', 'network_g.num_feats', 'options')
def _(c):
    c.options({'network_g.num_feats': 8})
    return train(c)


CUSTOM_ARCH = """
from torch import nn
from basicattn.registry import ARCHS


@ARCHS.register_module()
class NeedsWidth(nn.Module):
    def __init__(self, width, upscale=2):
        super().__init__()
        self.conv = nn.Conv2d(3, 3 * upscale * upscale, 3, padding=1)
        self.up = nn.PixelShuffle(upscale)

    def forward(self, x):
        return self.up(self.conv(x))
"""


@case('missing-required-arch-arg', 'train.py', 'network_g.width', 'options')
def _(c):
    c.write('needs_width_arch.py', CUSTOM_ARCH)
    c.options({'custom_imports': ['needs_width_arch'], 'network_g': {'type': 'NeedsWidth'}})
    return train(c)


@case(
    'custom_imports-missing-module',
    'train.py',
    ('custom_imports', 'no_such_module_xyz', OPTIONS_NAME),
    'options',
)
def _(c):
    c.options({'custom_imports': ['no_such_module_xyz']})
    return train(c)


@case(
    'custom_imports-raises',
    'train.py',
    ('custom_imports', 'raising_module', OPTIONS_NAME),
    'options',
)
def _(c):
    c.write('raising_module.py', "raise RuntimeError('this module is broken')\n")
    c.options({'custom_imports': ['raising_module']})
    return train(c)


# --------------------------------------------------------------------------
# train.py: data
# --------------------------------------------------------------------------


@case('dataset-folder-missing', 'train.py', 'no_such_train_dir', 'data', may_write=RUN_LOGS)
def _(c):
    c.options({'datasets.train.dataroot_gt': c.path('no_such_train_dir')})
    return train(c)


@case('dataset-folder-empty', 'train.py', 'empty_train_dir', 'data', may_write=RUN_LOGS)
def _(c):
    os.makedirs(c.path('empty_train_dir'))
    c.options({'datasets.train.dataroot_gt': c.path('empty_train_dir')})
    return train(c)


@case('val-folder-missing', 'train.py', 'no_such_val_dir', 'data', may_write=RUN_LOGS)
def _(c):
    c.options({'datasets.val.dataroot_gt': c.path('no_such_val_dir')})
    return train(c)


@case('corrupt-training-image', 'train.py', 'im3.png', 'data', may_write=RUN_LOGS)
def _(c):
    c.images_with_a_corrupt_one('train_bad', 'train', 'im3.png')
    c.options(
        {
            'datasets.train.dataroot_gt': c.path('train_bad'),
            'datasets.train.use_shuffle': False,
            'train.total_iter': 3,
        }
    )
    return train(c)


# --------------------------------------------------------------------------
# train.py: checkpoints (pretrain_network_g, resume_state)
# --------------------------------------------------------------------------


def _pretrain(c, value):
    c.options({'path.pretrain_network_g': value})
    return train(c)


@case('pretrain-missing', 'train.py', 'missing_weights.pth', 'checkpoint', may_write=RUN_LOGS)
def _(c):
    return _pretrain(c, c.path('missing_weights.pth'))


@case('pretrain-text-file', 'train.py', 'notes.pth', 'checkpoint', may_write=RUN_LOGS)
def _(c):
    return _pretrain(c, c.text_checkpoint())


@case('pretrain-truncated', 'train.py', 'truncated.pth', 'checkpoint', may_write=RUN_LOGS)
def _(c):
    return _pretrain(c, c.truncated_checkpoint())


@case('pretrain-malicious-pickle', 'train.py', 'evil.pth', 'checkpoint', may_write=RUN_LOGS)
def _(c):
    return _pretrain(c, c.malicious_checkpoint())


@case(
    'pretrain-url',
    'train.py',
    ('pretrain_network_g', URL),
    'checkpoint',
    may_write=RUN_LOGS,
    timeout=60,
)
def _(c):
    return _pretrain(c, URL)


@case('resume-weights-only', 'train.py', 'weights_only.pth', 'checkpoint', may_write=RUN_LOGS)
def _(c):
    c.options({'path.resume_state': c.weights_only_checkpoint()})
    return train(c)


@case('resume-url', 'train.py', ('resume_state', URL), 'checkpoint', may_write=RUN_LOGS, timeout=60)
def _(c):
    c.options({'path.resume_state': URL})
    return train(c)


@case('resume-missing', 'train.py', 'no_such_state.pth', 'checkpoint', may_write=RUN_LOGS)
def _(c):
    c.options({'path.resume_state': c.path('no_such_state.pth')})
    return train(c)


@case('resume-malicious-pickle', 'train.py', 'evil.pth', 'checkpoint', may_write=RUN_LOGS)
def _(c):
    c.options({'path.resume_state': c.malicious_checkpoint()})
    return train(c)


# --------------------------------------------------------------------------
# test.py
# --------------------------------------------------------------------------


def _test(c, checkpoint, *extra):
    c.options(drop=['train'])
    return ['-opt', c.path(OPTIONS_NAME), '--checkpoint', checkpoint, *extra]


@case('checkpoint-missing', 'test.py', 'no_such_weights.pth', 'checkpoint', may_write=RUN_LOGS)
def _(c):
    return _test(c, c.path('no_such_weights.pth'))


@case('checkpoint-truncated', 'test.py', 'truncated.pth', 'checkpoint', may_write=RUN_LOGS)
def _(c):
    return _test(c, c.truncated_checkpoint())


@case('checkpoint-text-file', 'test.py', 'notes.pth', 'checkpoint', may_write=RUN_LOGS)
def _(c):
    return _test(c, c.text_checkpoint())


@case('checkpoint-malicious-pickle', 'test.py', 'evil.pth', 'checkpoint', may_write=RUN_LOGS)
def _(c):
    return _test(c, c.malicious_checkpoint())


@case(
    'checkpoint-url',
    'test.py',
    (('--checkpoint', 'pretrain_network_g'), URL),
    'checkpoint',
    may_write=RUN_LOGS,
    timeout=60,
)
def _(c):
    return _test(c, URL)


@case('checkpoint-of-another-arch', 'test.py', 'a2n_weights.pth', 'checkpoint', may_write=RUN_LOGS)
def _(c):
    from basicattn.registry import ARCHS

    cfg = dict(type='A2N', num_feat=8, unf=6, num_block=1, upscale=2)
    path = c.path('a2n_weights.pth')
    torch.save({'state_dict': ARCHS.build(cfg).state_dict(), 'meta': {'arch': cfg}}, path)
    return _test(c, path)


@case('unknown-key', 'test.py', 'val.save_imgs', 'options')
def _(c):
    return _test(c, c.data('edsr_x2.pth'), '--set', 'val.save_imgs=true')


@case('test-folder-missing', 'test.py', 'no_such_test_dir', 'data', may_write=RUN_LOGS)
def _(c):
    return _test(
        c, c.data('edsr_x2.pth'), '--set', f'datasets.val.dataroot_gt={c.path("no_such_test_dir")}'
    )


@case('test-options-with-only-a-train-set', 'test.py', 'datasets', 'options')
def _(c):
    c.options(drop=['datasets.val'])
    return ['-opt', c.path(OPTIONS_NAME), '--checkpoint', c.data('edsr_x2.pth')]


@case('options-missing', 'test.py', 'no_such_test_options.yml', 'options')
def _(c):
    return ['-opt', c.path('no_such_test_options.yml'), '--checkpoint', c.data('edsr_x2.pth')]


# --------------------------------------------------------------------------
# infer.py
# --------------------------------------------------------------------------

OUT = ('out',)  # an empty output folder is tolerated; no output file is


def _infer(c, src, *extra, ckpt=True):
    args = [src, c.path('out'), '--quiet', *extra]
    return args + (['--checkpoint', c.data('edsr_x2.pth')] if ckpt else [])


@case('input-missing', 'infer.py', 'no_such_input', 'data', may_write=OUT)
def _(c):
    return _infer(c, c.path('no_such_input'))


@case('input-folder-empty', 'infer.py', 'empty_input', 'data', may_write=OUT)
def _(c):
    os.makedirs(c.path('empty_input'))
    return _infer(c, c.path('empty_input'))


@case('corrupt-image-among-good-ones', 'infer.py', 'a2.png', 'data', may_write=OUT)
def _(c):
    shutil.copytree(c.data('lr'), c.path('in'))
    c.write('in/a2.png', b'\x89PNG\r\n\x1a\n truncated')  # a0, a1 come first
    return _infer(c, c.path('in'))


@case('existing-first-output', 'infer.py', ('a0.png', '--overwrite'), 'data')
def _(c):
    c.write('out/a0.png', b'an earlier result')
    return _infer(c, c.data('lr'))


@case('existing-later-output', 'infer.py', ('a1.png', '--overwrite'), 'data')
def _(c):
    c.write('out/a1.png', b'an earlier result')  # a0 comes first: it must not be written
    return _infer(c, c.data('lr'))


@case('existing-video-output', 'infer.py', ('result.mp4', '--overwrite'), 'data')
def _(c):
    c.write('result.mp4', b'an earlier video')
    return [c.data('lr'), c.path('result.mp4'), '--quiet', '--checkpoint', c.data('edsr_x2.pth')]


@case('arch-args-bad-json', 'infer.py', '--arch-args', 'options', may_write=OUT)
def _(c):
    return _infer(c, c.data('lr'), '--arch', 'Bicubic', '--arch-args', '{scale: 2', ckpt=False)


@case('arch-args-not-an-object', 'infer.py', '--arch-args', 'options', may_write=OUT)
def _(c):
    return _infer(c, c.data('lr'), '--arch', 'Bicubic', '--arch-args', '[2]', ckpt=False)


@case('arch-args-unknown-argument', 'infer.py', 'scalee', 'options', may_write=OUT)
def _(c):
    return _infer(c, c.data('lr'), '--arch', 'Bicubic', '--arch-args', '{"scalee": 2}', ckpt=False)


@case('unknown-arch', 'infer.py', 'NoSuchNet', 'options', may_write=OUT)
def _(c):
    return _infer(c, c.data('lr'), '--arch', 'NoSuchNet', ckpt=False)


@case(
    'arch-with-parameters-no-checkpoint',
    'infer.py',
    ('EDSR', '--checkpoint'),
    'checkpoint',
    may_write=OUT,
)
def _(c):
    return _infer(c, c.data('lr'), '--arch', 'EDSR', '--arch-args', '{"upscale": 2}', ckpt=False)


@case('checkpoint-missing', 'infer.py', 'no_such_weights.pth', 'checkpoint', may_write=OUT)
def _(c):
    return _infer(c, c.data('lr'), '--checkpoint', c.path('no_such_weights.pth'), ckpt=False)


@case('checkpoint-truncated', 'infer.py', 'truncated.pth', 'checkpoint', may_write=OUT)
def _(c):
    return _infer(c, c.data('lr'), '--checkpoint', c.truncated_checkpoint(), ckpt=False)


@case('checkpoint-malicious-pickle', 'infer.py', 'evil.pth', 'checkpoint', may_write=OUT)
def _(c):
    return _infer(c, c.data('lr'), '--checkpoint', c.malicious_checkpoint(), ckpt=False)


@case('checkpoint-url', 'infer.py', ('--checkpoint', URL), 'checkpoint', may_write=OUT, timeout=60)
def _(c):
    return _infer(c, c.data('lr'), '--checkpoint', URL, ckpt=False)


@case(
    'checkpoint-without-arch',
    'infer.py',
    ('plain_weights.pth', '--arch'),
    'checkpoint',
    may_write=OUT,
)
def _(c):
    from basicattn.registry import ARCHS

    path = c.path('plain_weights.pth')
    torch.save({'state_dict': ARCHS.build(dict(EDSR_TINY)).state_dict()}, path)
    return _infer(c, c.data('lr'), '--checkpoint', path, ckpt=False)


@case('options-with-unknown-key', 'infer.py', 'network_g.num_feats', 'options', may_write=OUT)
def _(c):
    c.options({'network_g.num_feats': 8})
    return _infer(c, c.data('lr'), '-opt', c.path(OPTIONS_NAME))


# --------------------------------------------------------------------------
# create_lmdb.py
# --------------------------------------------------------------------------


@case('source-missing', 'create_lmdb.py', 'no_such_source', 'data')
def _(c):
    return [c.path('no_such_source'), c.path('out.lmdb'), '--no-progress']


@case('source-is-a-file', 'create_lmdb.py', 'a_file.png', 'data')
def _(c):
    shutil.copyfile(c.data('lr', 'a0.png'), c.path('a_file.png'))
    return [c.path('a_file.png'), c.path('out.lmdb'), '--no-progress']


@case('source-without-images', 'create_lmdb.py', 'no_images', 'data')
def _(c):
    c.write('no_images/readme.txt', 'nothing to see\n')
    return [c.path('no_images'), c.path('out.lmdb'), '--no-progress']


@case('corrupt-source-image', 'create_lmdb.py', 'a1.png', 'data')
def _(c):
    shutil.copytree(c.data('lr'), c.path('src'))
    c.write('src/a1.png', b'\x89PNG\r\n\x1a\n truncated')
    return [c.path('src'), c.path('out.lmdb'), '--no-progress', '--workers', '0']


@case('destination-exists', 'create_lmdb.py', ('existing.lmdb', '--overwrite'), 'data')
def _(c):
    shutil.copytree(c.data('good.lmdb'), c.path('existing.lmdb'))
    return [c.data('lr'), c.path('existing.lmdb'), '--no-progress']


@case('verify-only-without-data.mdb', 'create_lmdb.py', ('not_a_db.lmdb', 'data.mdb'), 'data')
def _(c):
    c.write('not_a_db.lmdb/meta_info.txt', 'a0.png (12,16,3) 1\n')
    return ['--verify-only', c.path('not_a_db.lmdb'), '--no-progress']


@case('verify-only-corrupt-data.mdb', 'create_lmdb.py', 'corrupt.lmdb', 'data')
def _(c):
    shutil.copytree(c.data('good.lmdb'), c.path('corrupt.lmdb'))
    path = c.path('corrupt.lmdb', 'data.mdb')
    pages = osp.getsize(path) // 4096
    assert pages >= 8, pages
    with open(path, 'r+b') as f:  # one whole page in the middle (not a meta page)
        f.seek(pages // 2 * 4096)
        f.write(bytes([0xA5]) * 4096)
    return ['--verify-only', c.path('corrupt.lmdb'), '--no-progress']


@case('verify-only-missing', 'create_lmdb.py', 'no_such.lmdb', 'data')
def _(c):
    return ['--verify-only', c.path('no_such.lmdb'), '--no-progress']


# --------------------------------------------------------------------------
# convert_model.py
# --------------------------------------------------------------------------


def _convert(c, src, *extra, source='a2n_official', scale='2'):
    return ['--source', source, '--scale', scale, src, c.path('converted.pth'), *extra]


@case('input-missing', 'convert_model.py', 'no_such_aan.pt', 'checkpoint')
def _(c):
    return _convert(c, c.path('no_such_aan.pt'))


@case('input-truncated', 'convert_model.py', 'truncated.pt', 'checkpoint')
def _(c):
    with open(c.data('aan_x2_src.pt'), 'rb') as f:
        data = f.read()
    return _convert(c, c.write('truncated.pt', data[: len(data) // 2]))


@case('input-text-file', 'convert_model.py', 'notes.pth', 'checkpoint')
def _(c):
    return _convert(c, c.text_checkpoint())


@case('input-malicious-pickle', 'convert_model.py', 'evil.pth', 'checkpoint')
def _(c):
    return _convert(c, c.malicious_checkpoint())


@case('unknown-source', 'convert_model.py', ('--source', 'a2n_offical'), 'checkpoint')
def _(c):
    return _convert(c, c.data('aan_x2_src.pt'), source='a2n_offical')


@case('output-exists', 'convert_model.py', ('converted.pth', '--overwrite'), 'checkpoint')
def _(c):
    c.write('converted.pth', b'an earlier conversion')
    return _convert(c, c.data('aan_x2_src.pt'))


@case('scale-3-on-aan_x2', 'convert_model.py', ('aan_x2.pt', '--scale'), 'checkpoint')
def _(c):
    shutil.copyfile(c.data('aan_x2_src.pt'), c.path('aan_x2.pt'))
    return _convert(c, c.path('aan_x2.pt'), scale='3')


@case('wrong-layout', 'convert_model.py', 'edsr_x2.pth', 'checkpoint')
def _(c):
    return _convert(c, c.data('edsr_x2.pth'))


# --------------------------------------------------------------------------
# get_flops.py and make_lr.py
# --------------------------------------------------------------------------


@case('unknown-arch', 'get_flops.py', 'NoSuchNet', 'options')
def _(c):
    return ['--arch', 'NoSuchNet', '--input-shape', '3', '8', '8']


@case('arch-args-bad-json', 'get_flops.py', '--arch-args', 'options')
def _(c):
    return ['--arch', 'EDSR', '--arch-args', '{upscale: 2', '--input-shape', '3', '8', '8']


@case('arch-arg-out-of-range', 'get_flops.py', 'upscale', 'options')
def _(c):
    return ['--arch', 'A2N', '--arch-args', '{"upscale": 5}', '--input-shape', '3', '8', '8']


@case('options-with-unknown-key', 'get_flops.py', 'network_g.num_feats', 'options')
def _(c):
    c.options({'network_g.num_feats': 8})
    return ['-opt', c.path(OPTIONS_NAME), '--input-shape', '3', '8', '8']


@case('hr-folder-missing', 'make_lr.py', 'no_such_hr', 'data')
def _(c):
    return [c.path('no_such_hr'), c.path('lr_out'), '--degradation', 'BI', '--scale', '2']


@case('hr-folder-without-images', 'make_lr.py', 'no_images', 'data')
def _(c):
    c.write('no_images/readme.txt', 'nothing to see\n')
    return [c.path('no_images'), c.path('lr_out'), '--degradation', 'BI', '--scale', '2']


@case('corrupt-image-among-good-ones', 'make_lr.py', 'im1.png', 'data', may_write=('lr_out',))
def _(c):
    shutil.copytree(c.data('val'), c.path('hr'))
    c.write('hr/im1.png', b'\x89PNG\r\n\x1a\n truncated')  # im0 comes first
    return [c.path('hr'), c.path('lr_out'), '--degradation', 'BI', '--scale', '2']


@case('existing-output', 'make_lr.py', ('im1.png', '--overwrite'), 'data')
def _(c):
    c.write('lr_out/im1.png', b'an earlier result')
    return [c.data('val'), c.path('lr_out'), '--degradation', 'BD', '--scale', '2']


# --------------------------------------------------------------------------
# issue 22: outputs over inputs, scale, locks, flags
# --------------------------------------------------------------------------
# An output that is, contains or lies inside an input is refused whatever the
# flags (basicattn/utils/output_guard.py); the harness asserts every input in
# tmp_path is unchanged. Weights recorded for x2 on an x3 network are refused
# by every tool that loads them (check_checkpoint_scale).

I22_A2N = dict(type='A2N', num_feat=8, unf=6, num_block=2)  # the synthetic official layout


def _i22_a2n_x2(c, name='a2n_x2.pth'):
    """The synthetic authors' A2N x2 weights converted as x2 (meta records the scale)."""
    from basicattn.checkpoint.state import save_weights_file
    from basicattn.converters.base import get_converter

    state, arch = get_converter('a2n_official')(_a2n_official_state_dict(scale=2), scale=2)
    path = c.path(name)
    save_weights_file(path, state, {'arch': arch, 'scale': 2, 'scale_source': '--scale'})
    return path


def _i22_a2n_x3_options(c, changes=(), drop=()):
    """Tiny options of the same A2N at x3 (the datasets make their LR by bicubic).

    ``gt_size`` 18: the patch must be a multiple of the scale (a check of its own).
    """
    x3 = {'network_g': dict(I22_A2N), 'scale': 3, 'datasets.train.gt_size': 18}
    return c.options({**x3, **dict(changes)}, drop=drop)


@case('i22-compare-output-is-an-input', 'test.py', ('a.json', '-o', '--compare'), 'options')
def _(c):
    a = c.write('a.json', '{"metrics": {}}')
    b = c.write('b.json', '{"metrics": {}}')
    return ['--compare', a, b, '-o', a]


@case(
    'i22-results-folder-holds-the-test-set',
    'test.py',
    ('path.experiments_root', 'datasets.val.dataroot_gt'),
    'data',
)
def _(c):
    shutil.copytree(c.data('val'), c.path('results', 'val'))
    c.options(
        {
            'datasets.val.dataroot_gt': c.path('results', 'val'),
            'path.experiments_root': c.path('results'),
        },
        drop=['train'],
    )
    return ['-opt', c.path(OPTIONS_NAME), '--checkpoint', c.data('edsr_x2.pth')]


@case('i22-x2-weights-on-x3-options', 'test.py', ('a2n_x2.pth', 'x2', 'x3'), 'checkpoint')
def _(c):
    path = _i22_a2n_x2(c)
    _i22_a2n_x3_options(c, drop=['train'])
    return ['-opt', c.path(OPTIONS_NAME), '--checkpoint', path]


@case('i22-label-with-a-newline', 'test.py', '--label', 'options')
def _(c):
    c.options(drop=['train'])
    args = ['-opt', c.path(OPTIONS_NAME), '--checkpoint', c.data('edsr_x2.pth')]
    return args + ['--label', 'mine\n| x | y |']


@case('i22-x2-pretrain-on-x3-options', 'train.py', ('a2n_x2.pth', 'x2', 'x3'), 'checkpoint')
def _(c):
    path = _i22_a2n_x2(c)
    _i22_a2n_x3_options(c, {'path.pretrain_network_g': path})
    return train(c)


@case('i22-experiment-folder-is-the-train-set', 'train.py', 'datasets.train.dataroot_gt', 'data')
def _(c):
    shutil.copytree(c.data('train'), c.path('train'))
    c.options(
        {'datasets.train.dataroot_gt': c.path('train'), 'path.experiments_root': c.path('train')}
    )
    return train(c)


@case('i22-stop-at-negative', 'train.py', '--stop-at', 'options')
def _(c):
    c.options()
    return train(c, '--stop-at', '-3')


@case('i22-stop-at-beyond-total_iter', 'train.py', ('--stop-at', 'train.total_iter'), 'options')
def _(c):
    c.options()
    return train(c, '--stop-at', '7')


@case(
    'i22-auto-resume-without-a-valid-checkpoint',
    'train.py',
    ('iter_3.pth', '--auto-resume'),
    'checkpoint',
)
def _(c):
    c.options()
    c.truncated_checkpoint(osp.join('exp', 'iter_3.pth'))
    c.write(osp.join('exp', 'last_checkpoint'), 'iter_4.pth')
    return train(c, '--auto-resume')


@case('i22-output-is-the-input-image', 'infer.py', ('OUTPUT', 'INPUT', 'a0.png'), 'data')
def _(c):
    shutil.copyfile(c.data('lr', 'a0.png'), c.path('a0.png'))
    weights = ['--checkpoint', c.data('edsr_x2.pth')]
    return [c.path('a0.png'), c.path('a0.png'), '--quiet', '--overwrite', *weights]


@case('i22-output-inside-the-input-folder', 'infer.py', ('OUTPUT', 'INPUT', 'lies inside'), 'data')
def _(c):
    shutil.copytree(c.data('lr'), c.path('lr'))
    return [
        c.path('lr'),
        c.path('lr', 'sr'),
        '--quiet',
        '--overwrite',
        '--checkpoint',
        c.data('edsr_x2.pth'),
    ]


@case('i22-unknown-output-extension', 'infer.py', ('out.xyz', '.png', '.mp4'), 'data')
def _(c):
    return [c.data('lr'), c.path('out.xyz'), '--quiet', '--checkpoint', c.data('edsr_x2.pth')]


@case('i22-x2-weights-as-x3-arch', 'infer.py', ('a2n_x2.pth', 'x2', 'x3'), 'checkpoint')
def _(c):
    path = _i22_a2n_x2(c)
    arch_args = dict(I22_A2N, upscale=3)
    arch_args.pop('type')
    import json

    return [
        c.data('lr'),
        c.path('out'),
        '--quiet',
        '--arch',
        'A2N',
        '--arch-args',
        json.dumps(arch_args),
        '--checkpoint',
        path,
    ]


@case('i22-out-is-the-gt-folder', 'compare.py', ('--out', '--gt'), 'data')
def _(c):
    shutil.copytree(c.data('val'), c.path('gt'))
    shutil.copytree(c.data('val'), c.path('sr'))
    return [
        '--gt',
        c.path('gt'),
        '--sr',
        f'M={c.path("sr")}',
        '--out',
        c.path('gt'),
        '--scale',
        '2',
    ]


@case('i22-out-is-the-hr-folder', 'make_lr.py', ('OUT_DIR', 'HR_DIR'), 'data')
def _(c):
    shutil.copytree(c.data('val'), c.path('hr'))
    return [c.path('hr'), c.path('hr'), '--degradation', 'BI', '--scale', '2', '--overwrite']


@case('i22-hr-out-is-the-hr-folder', 'make_lr.py', ('--hr-out', 'HR_DIR'), 'data')
def _(c):
    shutil.copytree(c.data('val'), c.path('hr'))
    args = [c.path('hr'), c.path('lr_out'), '--degradation', 'BI', '--scale', '2']
    return args + ['--hr-out', c.path('hr'), '--overwrite']


@case(
    'i22-output-is-the-input', 'convert_model.py', ('OUTPUT', 'INPUT', 'aan_x2.pth'), 'checkpoint'
)
def _(c):
    shutil.copyfile(c.data('aan_x2_src.pt'), c.path('aan_x2.pth'))
    return [
        '--source',
        'a2n_official',
        '--scale',
        '2',
        c.path('aan_x2.pth'),
        c.path('aan_x2.pth'),
        '--overwrite',
    ]


@case('i22-onnx-output-name', 'convert_model.py', ('x.onnx', 'export.py'), 'checkpoint')
def _(c):
    return ['--source', 'a2n_official', '--scale', '2', c.data('aan_x2_src.pt'), c.path('x.onnx')]


@case('i22-out-is-the-checkpoint', 'export.py', ('OUT', '--checkpoint', 'edsr.pth'), 'checkpoint')
def _(c):
    shutil.copyfile(c.data('edsr_x2.pth'), c.path('edsr.pth'))
    return [c.path('edsr.pth'), '--checkpoint', c.path('edsr.pth'), '--overwrite']


@case('i22-x2-weights-as-x3-arch', 'export.py', ('a2n_x2.pth', 'x2', 'x3'), 'checkpoint')
def _(c):
    import json

    path = _i22_a2n_x2(c)
    arch_args = {k: v for k, v in I22_A2N.items() if k != 'type'}
    arch_args['upscale'] = 3
    return [
        c.path('a2n.onnx'),
        '--arch',
        'A2N',
        '--arch-args',
        json.dumps(arch_args),
        '--checkpoint',
        path,
    ]


@case('i22-destination-inside-the-source', 'create_lmdb.py', ('DST', 'SRC', 'lies inside'), 'data')
def _(c):
    shutil.copytree(c.data('val'), c.path('src'))
    return [c.path('src'), c.path('src', 'db.lmdb'), '--overwrite', '--no-progress']


# --------------------------------------------------------------------------
# issue 22: tracebacks and unclear lines
# --------------------------------------------------------------------------
# Each of these gave a traceback or a misleading line before issue 22.


def _alias_bomb(levels=9):
    """A billion-laughs YAML fragment: 9 lists of 9 aliases, nested 9 deep."""
    lines = ['    l0: &l0 [' + ', '.join(['lol'] * 9) + ']']
    lines += [f'    l{i}: &l{i} [' + ', '.join([f'*l{i - 1}'] * 9) + ']' for i in range(1, levels)]
    return '\n'.join(lines) + '\n'


def _with_bomb(c, name):
    """Our tiny options, with the bomb nested in ``train.paramwise_cfg``."""
    text = yaml.safe_dump(c.base_options(), sort_keys=False)
    top = '\ntrain:\n'  # the top-level section, not datasets.train
    assert top in text
    return c.write(name, text.replace(top, top + '  paramwise_cfg:\n' + _alias_bomb(), 1))


@case('i22-options-alias-bomb', 'train.py', (OPTIONS_NAME, 'billion laughs'), 'options', timeout=60)
def _(c):
    _with_bomb(c, OPTIONS_NAME)
    return train(c)


@case('i22-base-file-alias-bomb', 'train.py', ('bomb_base.yml', 'aliases'), 'options', timeout=60)
def _(c):
    _with_bomb(c, 'bomb_base.yml')
    c.write(OPTIONS_NAME, '_base_: bomb_base.yml\nname: child\n')
    return train(c)


@case('i22-set-alias-bomb', 'train.py', ('--set train.x', 'aliases'), 'options', timeout=60)
def _(c):
    c.options()
    bomb = '[&a0 [lol, lol, lol], ' + ', '.join(
        f'&a{i} [' + ', '.join([f'*a{i - 1}'] * 9) + ']' for i in range(1, 9)
    )
    return train(c, '--set', f'train.x={bomb}]')


@case('i22-options-not-utf8', 'train.py', (OPTIONS_NAME, 'byte offset'), 'options')
def _(c):
    c.write(OPTIONS_NAME, 'name: caf\xe9\nscale: 2\n'.encode('latin-1'))
    return train(c)


@case('i22-options-binary-file', 'train.py', ('weights.yml', 'byte offset'), 'options')
def _(c):
    with open(c.data('edsr_x2.pth'), 'rb') as f:
        c.write('weights.yml', f.read())
    return ['-opt', c.path('weights.yml')]


@case('i22-options-nested-too-deep', 'train.py', (OPTIONS_NAME, '64 levels'), 'options')
def _(c):
    c.write(OPTIONS_NAME, 'name: deep\nnetwork_g: ' + '[' * 5000 + ']' * 5000 + '\n')
    return train(c)


@case('i22-gt_size-not-a-multiple-of-scale', 'train.py', 'datasets.train.gt_size', 'options')
def _(c):
    c.options({'datasets.train.gt_size': 15})
    return train(c)


@case(
    'i22-last_checkpoint-with-a-NUL-byte',
    'train.py',
    ('last_checkpoint', 'NUL'),
    'checkpoint',
    may_write=RUN_LOGS,
)
def _(c):
    c.options()
    c.write('exp/iter_3.pth', b'not read')
    c.write('exp/last_checkpoint', b'iter_3\x00.pth')
    return train(c, '--auto-resume')


@case(
    'i22-unknown-arch-and-model_type',
    'train.py',
    ('network_g.type', 'RCAN', 'custom_imports', 'model_type', 'SRModell'),
    'options',
)
def _(c):
    c.options({'network_g.type': 'RCAN', 'model_type': 'SRModell'})
    return train(c)


@case('i22-options-broken-symlink', 'train.py', ('linked.yml', 'symbolic link'), 'options')
def _(c):
    os.symlink(c.path('moved_away.yml'), c.path('linked.yml'))
    return ['-opt', c.path('linked.yml')]


@case(
    'i22-dataroot-broken-symlink',
    'train.py',
    ('datasets.train.dataroot_gt', 'symbolic link'),
    'data',
    may_write=RUN_LOGS,
)
def _(c):
    os.symlink(c.path('unmounted_disk'), c.path('train_link'))
    c.options({'datasets.train.dataroot_gt': c.path('train_link')})
    return train(c)


@case('i22-val_partition-clips-missing', 'train.py', ('val_partition', 'REDS4'), 'options')
def _(c):
    for clip in ('005', '006'):
        os.makedirs(c.path('reds', clip))
    c.options(
        {
            'datasets.train': {
                'type': 'REDSDataset',
                'dataroot_gt': c.path('reds'),
                'num_frame': 3,
                'val_partition': 'REDS4',
                'batch_size_per_gpu': 1,
                'num_worker_per_gpu': 0,
            }
        }
    )
    return train(c)


@case(
    'i22-gt-meta_info-key-not-in-gt-lmdb',
    'train.py',
    ('ghost', 'GT', 'meta_info.txt'),
    'data',
    may_write=RUN_LOGS,
)
def _(c):
    import cv2

    from basicattn.data.lmdb_builder import build_lmdb_from_folder

    shutil.copytree(c.data('good.lmdb'), c.path('gt.lmdb'))
    os.makedirs(c.path('lq'))
    for name in sorted(os.listdir(c.data('train'))):
        img = cv2.imread(c.data('train', name))
        cv2.imwrite(c.path('lq', name), cv2.resize(img, (24, 24), interpolation=cv2.INTER_AREA))
    build_lmdb_from_folder(c.path('lq'), c.path('lq.lmdb'), num_workers=0, progress=False)
    with open(c.path('gt.lmdb', 'meta_info.txt'), 'a') as f:
        f.write('ghost.png (48,48,3) 1\n')
    c.options(
        {
            'datasets.train.io_backend': 'lmdb',
            'datasets.train.dataroot_gt': c.path('gt.lmdb'),
            'datasets.train.dataroot_lq': c.path('lq.lmdb'),
        }
    )
    return train(c)


@case('i22-device-cuda-without-cuda', 'infer.py', '--device cuda', 'options')
def _(c):
    return _infer(c, c.data('lr'), '--device', 'cuda')


@case('i22-device-banana', 'infer.py', '--device banana', 'options')
def _(c):
    return _infer(c, c.data('lr'), '--device', 'banana')


@case('i22-negative-fps', 'infer.py', '--fps -3', 'options')
def _(c):
    return [
        c.data('lr'),
        c.path('result.mp4'),
        '--quiet',
        '--fps',
        '-3',
        '--checkpoint',
        c.data('edsr_x2.pth'),
    ]


@case('i22-input-broken-symlink', 'infer.py', ('frames_link', 'symbolic link'), 'data')
def _(c):
    os.symlink(c.path('frames_moved'), c.path('frames_link'))
    return _infer(c, c.path('frames_link'))


@case(
    'i22-checkpoint-broken-symlink',
    'test.py',
    ('best.pth', 'symbolic link'),
    'checkpoint',
    may_write=RUN_LOGS,
)
def _(c):
    os.symlink(c.path('deleted_run', 'iter_3.pth'), c.path('best.pth'))
    return _test(c, c.path('best.pth'))


@case(
    'i22-mana-source-on-a2n-weights',
    'convert_model.py',
    ('aan_x2.pt', 'mana_official', '--source a2n_official'),
    'checkpoint',
)
def _(c):
    shutil.copyfile(c.data('aan_x2_src.pt'), c.path('aan_x2.pt'))
    return _convert(c, c.path('aan_x2.pt'), source='mana_official')


I22_FLOPS_ARGS = {
    'EDSR': '{"upscale": 2, "num_feat": 8, "num_block": 1}',
    'DASAA': '{"num_feat": 16}',
}


for _name, _arch, _shape, _culprits in (
    ('video-rank-for-image-arch', 'EDSR', '5 3 8 8', ('image arch',)),
    ('image-rank-for-video-arch', 'DASAA', '3 8 8', ('video arch',)),
    ('negative', 'EDSR', '3 -8 8', ('at least 1',)),
    ('huge', 'EDSR', '3 100000 100000', ('4096',)),
):

    @case(f'i22-input-shape-{_name}', 'get_flops.py', ('--input-shape', *_culprits), 'options')
    def _(c, arch=_arch, shape=_shape):
        return [
            '--arch',
            arch,
            '--arch-args',
            I22_FLOPS_ARGS[arch],
            '--input-shape',
            *shape.split(),
        ]


@case('i22-arch-args-nested-too-deep', 'get_flops.py', ('--arch-args', 'too deep'), 'options')
def _(c):
    deep = '{"num_feat": ' + '[' * 20000 + ']' * 20000 + '}'
    return ['--arch', 'EDSR', '--arch-args', deep, '--input-shape', '3', '8', '8']


@case('i22-output-an-existing-folder', 'export.py', ('exports', '.onnx'), 'options')
def _(c):
    os.makedirs(c.path('exports'))
    return [c.path('exports'), '--checkpoint', c.data('edsr_x2.pth'), '--overwrite']


# --------------------------------------------------------------------------
# issue 22: non-finite weights and outputs
# --------------------------------------------------------------------------


def _edsr_weights(c, name, change):
    """The shared tiny EDSR x2 checkpoint with ``change(state)`` applied, as ``name``."""
    checkpoint = torch.load(c.data('edsr_x2.pth'), weights_only=True)
    change(checkpoint['state_dict'])
    path = c.path(name)
    torch.save(checkpoint, path)
    return path


def _nan_weights(c):
    def change(state):
        state['body.0.conv1.weight'][0, 0, 0, 0] = float('nan')

    return _edsr_weights(c, 'nan_weights.pth', change)


def _overflowing_weights(c):
    """Finite weights (1e20) whose output overflows to inf, then NaN."""

    def change(state):
        for value in state.values():
            value.fill_(1e20)

    return _edsr_weights(c, 'overflowing_weights.pth', change)


@case(
    'lr-1e6-diverges',
    'train.py',
    ('train.losses.pixel', 'at iteration 2', 'train.optim_g.lr', 'train.nan_policy'),
    'options',
    may_write=RUN_LOGS,
)
def _(c):
    c.options({'train.optim_g.lr': 1e6})  # the loss is inf at iteration 2, before any save
    return train(c)


@case(
    'resume-state-nan-weights',
    'train.py',
    ('nan_resume.pth', 'generator.body.0.conv1.weight'),
    'checkpoint',
    may_write=RUN_LOGS,
)
def _(c):
    checkpoint = torch.load(c.data('edsr_x2.pth'), weights_only=True)
    state = {f'generator.{k}': v for k, v in checkpoint['state_dict'].items()}
    state['generator.body.0.conv1.weight'][0, 0, 0, 0] = float('nan')
    path = c.path('nan_resume.pth')
    torch.save({'meta': {'iter': 3, 'epoch': 0}, 'message_hub': {}, 'state_dict': state}, path)
    c.options({'path.resume_state': path})
    return train(c)


@case(
    'checkpoint-nan-weights',
    'test.py',
    ('nan_weights.pth', 'body.0.conv1.weight'),
    'checkpoint',
    may_write=RUN_LOGS,
)
def _(c):
    return _test(c, _nan_weights(c))


@case(
    'output-not-finite',
    'test.py',
    ('overflowing_weights.pth', 'tinyval', 'im0'),
    'checkpoint',
    may_write=RUN_LOGS,
)
def _(c):
    return _test(c, _overflowing_weights(c))


@case(
    'checkpoint-nan-weights',
    'infer.py',
    ('nan_weights.pth', 'body.0.conv1.weight'),
    'checkpoint',
    may_write=OUT,
)
def _(c):
    return _infer(c, c.data('lr'), '--checkpoint', _nan_weights(c), ckpt=False)


@case(
    'output-not-finite',
    'infer.py',
    ('overflowing_weights.pth', 'a0.png'),
    'checkpoint',
    may_write=OUT,
)
def _(c):
    return _infer(c, c.data('lr'), '--checkpoint', _overflowing_weights(c), ckpt=False)


@case(
    'checkpoint-nan-weights', 'export.py', ('nan_weights.pth', 'body.0.conv1.weight'), 'checkpoint'
)
def _(c):
    return [c.path('out.onnx'), '--checkpoint', _nan_weights(c)]


# --------------------------------------------------------------------------
# the test
# --------------------------------------------------------------------------


def _repo_outputs():
    """Entries of the checkout's default output folders (nothing may appear there)."""
    return {
        top: sorted(os.listdir(osp.join(REPO_ROOT, top)))
        if osp.isdir(osp.join(REPO_ROOT, top))
        else None
        for top in ('experiments', 'results', 'tb_logger')
    }


def _blank(text, *roots):
    for root in roots:
        text = text.replace(osp.realpath(root), '<tmp>').replace(str(root), '<tmp>')
    return text


def _log_result(case, returncode, lines, problems):
    """Append the outcome to ``$BASICATTN_BAD_INPUTS_LOG`` (JSON lines), if set."""
    target = os.environ.get('BASICATTN_BAD_INPUTS_LOG')
    if not target:
        return
    import json

    record = dict(
        id=case.id,
        tool=case.tool,
        area=case.area,
        rc=returncode,
        lines=len(lines),
        first=lines[0] if lines else '',
        last=lines[-1] if lines else '',
        problems=problems,
    )
    with open(target, 'a') as f:
        f.write(json.dumps(record) + '\n')


# the first case of every tool runs in a fresh interpreter, the rest are forked
FRESH_PROCESS_CASES = {next(c.id for c in CASES if c.tool == t) for t in {c.tool for c in CASES}}


@pytest.mark.parametrize('case', CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_one_clean_line(case, tmp_path, shared, forked_tool):
    ctx = Ctx(tmp_path, shared)
    args = case.build(ctx)
    before = _tree_digest(str(tmp_path))
    repo_before = _repo_outputs()

    env = {'PYTHONDONTWRITEBYTECODE': '1', 'BASICATTN_DEBUG': '', 'CUDA_VISIBLE_DEVICES': ''}
    script = osp.join('tools', case.tool)
    runner = run_tool if case.id in FRESH_PROCESS_CASES else forked_tool
    out = runner(script, *args, timeout=case.timeout, env=env)
    stderr = out.stderr
    shown = _blank(stderr, tmp_path, shared)
    lines = stderr.splitlines()
    summary = (
        f'{case.tool} exit {out.returncode}, {len(lines)} stderr line(s); first: '
        f'{lines[0] if lines else ""!r}; last: {lines[-1] if lines else ""!r}'
    )
    problems = []
    if osp.lexists(ctx.marker):
        problems.append('the pickle payload ran (its marker folder exists)')
    if out.returncode != 2:
        problems.append(f'exit code {out.returncode}, expected 2')
    if len(lines) >= 10:
        problems.append(f'{len(lines)} lines on stderr, expected fewer than 10')
    if 'error:' not in stderr:
        problems.append("no 'error:' on stderr")
    missing = [
        name
        for name in case.culprits
        if not any(alt in shown for alt in (name if isinstance(name, tuple) else (name,)))
    ]
    if missing:
        problems.append(f'culprit(s) not named: {missing}')

    after = _tree_digest(str(tmp_path))
    changed = sorted(p for p in before if after.get(p) != before[p])
    if changed:
        problems.append(f'existing paths changed or removed: {changed}')
    new = sorted(set(after) - set(before))
    unexpected = [
        p
        for p in new
        if not any(fnmatchcase(p, g) for g in case.may_write)
        or any(fnmatchcase(p, g) for g in case.never)
    ]
    if unexpected:
        problems.append(
            f'written where it should not be: {unexpected[:8]}'
            + (f' (+{len(unexpected) - 8} more)' if len(unexpected) > 8 else '')
        )
    if _repo_outputs() != repo_before:
        problems.append(
            'something appeared under experiments/, results/ or tb_logger/ of the checkout'
        )
    _log_result(case, out.returncode, lines, problems)

    assert not problems, (
        f'[{case.area}] ' + '; '.join(problems) + f'\n{summary}\n'
        f'--- stderr (tail) ---\n{stderr[-3000:]}\n'
        f'--- stdout (tail) ---\n{out.stdout[-1000:]}'
    )


def test_the_table_is_large_enough():
    """Issue 12 asks for at least 40 bad inputs across these five tools."""
    per_tool = {}
    for c in CASES:
        per_tool[c.tool] = per_tool.get(c.tool, 0) + 1
    assert len(CASES) >= 45, per_tool
    for tool in ('train.py', 'test.py', 'infer.py', 'create_lmdb.py', 'convert_model.py'):
        assert per_tool.get(tool, 0) >= 5, per_tool
    assert len({c.id for c in CASES}) == len(CASES), 'case ids must be unique'
