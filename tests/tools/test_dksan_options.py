"""The DKSAN option files: the full file builds the default model, the Table 3
ablations differ from it only in their switches, test and training files agree
(values are guarded by tests/config/test_option_inheritance.py's fixture and
validated by tests/test_shipped_options.py), and a tiny DKSAN x16 trains two
iterations through tools/train.py on generated REDS-like clips, then
tools/test.py evaluates it."""

import glob
import json
import os
import os.path as osp

import numpy as np
import pytest
from conftest import REPO_ROOT

from basicattn.config import read_options
from basicattn.config.options import load_option_file

OPTIONS = osp.join(REPO_ROOT, 'options')
MAIN = osp.join(OPTIONS, 'train', 'dksan_x16.yml')
ALIAS = osp.join(OPTIONS, 'dksan_x16.yml')
ABLATIONS = {'backbone': 'backbone', 'wo_align_dksa': 'wo_align_dksa', 'wo_dksa': 'wo_dksa'}
TINY_NET = [
    'network_g.num_feat=8',
    'network_g.num_extract_blocks=1',
    'network_g.num_rcab=[1, 1, 1, 1]',
    'network_g.dksa_layers=[1, 1, 1, 1]',
    'network_g.reduction=4',
    'network_g.align_dkc=1',
    'network_g.deform_groups=2',
]


def dksan_files():
    files = sorted(glob.glob(osp.join(OPTIONS, '**', 'dksan*.yml'), recursive=True))
    return [osp.relpath(f, REPO_ROOT) for f in files]


def merged(path):
    """The option file with its bases merged, not yet validated."""
    return load_option_file(path)[0]


def test_the_expected_files_exist():
    names = set(dksan_files())
    assert {
        'options/dksan_x16.yml',
        'options/train/dksan_x16.yml',
        'options/test/dksan_x16.yml',
        'options/train/dksan_x4_vimeo_tiny.yml',
        'options/test/dksan_x4_vimeo_tiny_bicubic.yml',
    } <= names
    for row in ABLATIONS:
        assert f'options/train/dksan_x16_ablation_{row}.yml' in names


def test_alias_is_the_same_file():
    assert osp.islink(ALIAS)  # tracked by git as a symlink
    assert osp.samefile(ALIAS, MAIN)
    with open(MAIN, encoding='utf-8') as f:
        assert 'tools/dist_train.sh 4 options/dksan_x16.yml' in f.read()


def test_main_file_builds_the_default_model():
    """The file spells out every default, so it builds the 30,297,600-
    parameter model of test_dksan_arch.py."""
    import inspect

    from basicattn.archs import dksan_arch
    from basicattn.archs.dksan_arch import DKSAN

    net = dict(merged(MAIN)['network_g'])
    net.pop('type')
    defaults = {k: p.default for k, p in inspect.signature(DKSAN).parameters.items()}
    paper_lists = {
        'num_rcab': list(dksan_arch.PAPER_NUM_RCAB),
        'dksa_layers': list(dksan_arch.PAPER_DKSA_LAYERS),
    }
    for key, value in net.items():
        default = defaults[key] if defaults[key] is not None else paper_lists[key]
        assert value == default, key


@pytest.mark.parametrize('row', sorted(ABLATIONS))
def test_ablation_files_differ_only_in_switches(row):
    """Merged, an ablation file is the full recipe with Table 3's switches
    (DKSAN_VARIANTS) and its own name and experiment folder."""
    from basicattn.archs.dksan_arch import DKSAN_VARIANTS

    main = merged(MAIN)
    abl = merged(osp.join(OPTIONS, 'train', f'dksan_x16_ablation_{row}.yml'))
    assert abl['name'] == f'dksan_x16_ablation_{row}'
    assert abl['path']['experiments_root'] == f'experiments/{abl["name"]}'
    switches = {k: v for k, v in abl['network_g'].items() if main['network_g'][k] != v}
    assert switches == DKSAN_VARIANTS[ABLATIONS[row]]
    for key in ('name', 'path', 'network_g'):
        main.pop(key), abl.pop(key)
    assert abl == main


def test_test_file_matches_training():
    test = read_options(osp.join(OPTIONS, 'test', 'dksan_x16.yml'), purpose='test')
    train = read_options(MAIN, purpose='train')
    assert test['network_g'] == train['network_g']
    assert test['val']['metrics'] == train['val']['metrics']


# -- two iterations on tiny REDS-like clips ------------------------------
def _write_clips(root, clips, frames, size, rng):
    """HR clips <root>/HR/<clip>/<8 digits>.png (a moving smooth pattern)
    and their MATLAB-bicubic x16 LR under <root>/LR/."""
    import cv2

    from basicattn.data.degradation_transform import BIDegradation
    from basicattn.utils.img_util import imwrite

    deg = BIDegradation(16)
    for c in range(clips):
        base = cv2.GaussianBlur(
            (rng.random((size + 8, size + 8, 3)) * 255).astype(np.uint8), (9, 9), 3
        )
        for f in range(frames):
            img = np.ascontiguousarray(base[f : f + size, f : f + size])
            name = f'{c:03d}/{f:08d}.png'
            imwrite(osp.join(root, 'HR', name), img)
            imwrite(osp.join(root, 'LR', name), deg.degrade(img))


@pytest.fixture(scope='module')
def reds_like(tmp_path_factory):
    root = tmp_path_factory.mktemp('dksan_reds')
    rng = np.random.default_rng(0)
    _write_clips(str(root / 'train'), 2, 7, 64, rng)  # >= num_frame
    _write_clips(str(root / 'val'), 1, 7, 64, rng)
    return str(root)


@pytest.mark.slow
def test_train_two_iterations_then_test(reds_like, tmp_path, tool):
    """options/dksan_x16.yml itself (data and width overridden): two
    iterations with the offset-lr / clipping helpers its header suggests,
    validation at the end, then options/test/dksan_x16.yml on the result."""
    work = str(tmp_path / 'train')
    out = tool(
        'tools/train.py',
        '-opt',
        ALIAS,
        '--set',
        *TINY_NET,
        f'datasets.train.dataroot_gt={reds_like}/train/HR',
        f'datasets.train.dataroot_lq={reds_like}/train/LR',
        'datasets.train.gt_size=64',
        'datasets.train.batch_size_per_gpu=2',
        'datasets.train.num_worker_per_gpu=0',
        'datasets.train.pin_memory=false',
        f'datasets.val.dataroot_gt={reds_like}/val/HR',
        'datasets.val.dataroot_lq=null',
        'datasets.val.gt_size=null',
        'train.total_iter=2',
        'train.scheduler.T_max=2',
        'train.paramwise_cfg={custom_keys: {conv_offset: {lr_mult: 0.25}, '
        'conv_kernel_offset: {lr_mult: 0.25}}}',
        'train.clip_grad_norm=1.0',
        'val.val_freq=2',
        'logger.save_checkpoint_freq=2',
        'logger.print_freq=1',
        'logger.use_tb_logger=false',
        f'path.experiments_root={work}',
    )
    assert out.returncode == 0, out.stderr[-3000:]
    log = out.stdout + out.stderr
    assert 'Vid3oC_val/psnr_y_crop16' in log
    # the offset lr (4e-4 x 0.25) reached the alignment head and the DKC layers
    for name in (
        'align.conv_offset.weight',
        'dksa.dkc.0.conv_offset.bias',
        'dksa.dkc.0.conv_kernel_offset.weight',
    ):
        assert f'{name}:lr=0.0001' in log, name
    assert 'align.dcn.weight:lr' not in log
    checkpoint = osp.join(work, 'iter_2.pth')
    assert osp.isfile(checkpoint)

    clips = osp.join(reds_like, 'val', 'HR')
    test = tool(
        'tools/test.py',
        '-opt',
        osp.join(OPTIONS, 'test', 'dksan_x16.yml'),
        '--checkpoint',
        checkpoint,
        '--set',
        *TINY_NET,
        f'datasets.test_vid3oc.dataroot_gt={clips}',
        f'datasets.test_vid3oc.dataroot_lq={reds_like}/val/LR',
        f'datasets.test_intvid.dataroot_gt={clips}',
        "datasets.test_intvid.clips=['000']",
        'logger.use_tb_logger=false',
        f'path.experiments_root={tmp_path}/test',
    )
    assert test.returncode == 0, test.stderr[-3000:]
    metrics = json.load(open(test.stdout.strip().splitlines()[-1]))['metrics']
    assert set(metrics) == {'Vid3oC_val', 'IntVID'}
    for values in metrics.values():
        assert np.isfinite(values['psnr_y_crop16'])
    # the same LR frames (stored vs made on the fly): the same numbers
    assert metrics['Vid3oC_val'] == pytest.approx(metrics['IntVID'])


@pytest.mark.slow
def test_tiny_vimeo_demo_runs(testdata, tmp_path, tool):
    """The learning-evidence file, two iterations on the shared sample."""
    sequences = testdata('vimeo90k_sample', 'sequences')
    opt = merged(osp.join(OPTIONS, 'train', 'dksan_x4_vimeo_tiny.yml'))
    assert opt['datasets']['train']['dataroot_gt'] == 'datasets/vimeo90k/sequences'
    (tmp_path / 'train.txt').write_text('00001/0001\n00002/0006\n')
    (tmp_path / 'heldout.txt').write_text('00002/0007\n')
    out = tool(
        'tools/train.py',
        '-opt',
        osp.join(OPTIONS, 'train', 'dksan_x4_vimeo_tiny.yml'),
        '--set',
        f'datasets.train.dataroot_gt={sequences}',
        f'datasets.train.meta_info_file={tmp_path}/train.txt',
        'datasets.train.num_worker_per_gpu=0',
        'train.total_iter=2',
        'logger.save_checkpoint_freq=2',
        f'path.experiments_root={tmp_path}/exp',
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert os.path.isfile(tmp_path / 'exp' / 'iter_2.pth')
