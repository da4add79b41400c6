"""tools/create_lmdb.py on video layouts, read back by the video datasets.

The tool keys records by path relative to SRC without extension, so the
Vimeo-90K (``00001/0001/im4``) and REDS (``000/00000000``) layouts need no
special handling; these tests show it, and that every video dataset reads
the same samples from the folders and from their LMDBs.
"""

import importlib.util
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from basicattn.data.lmdb_io import read_meta_info
from basicattn.data.video_reds_dataset import REDSClipDataset
from basicattn.data.video_test_dataset import VideoTestDataset
from basicattn.data.video_vimeo_dataset import VimeoSeptupletDataset
from basicattn.utils.img_util import imwrite

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO_ROOT, 'tools', 'create_lmdb.py')


def run_cli(*args):
    """Run the script as users do, in a fresh interpreter."""
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    return subprocess.run(
        [sys.executable, SCRIPT, *map(str, args)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope='module')
def cli():
    spec = importlib.util.spec_from_file_location('create_lmdb_cli', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _write_tree(root, clips, frames, rng, size=(8, 12), scale=2):
    """GT frames under root/GT and x``scale`` LQ frames under root/LQ."""
    h, w = size
    for clip in clips:
        for frame in frames:
            gt = (rng.random((h, w, 3)) * 255).astype(np.uint8)
            lq = np.ascontiguousarray(gt[::scale, ::scale])
            imwrite(osp.join(root, 'GT', clip, f'{frame}.png'), gt)
            imwrite(osp.join(root, 'LQ', clip, f'{frame}.png'), lq)


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key, value in a.items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(value, b[key], rtol=0, atol=0)
        elif key not in ('gt_path', 'lq_path'):
            assert value == b[key], key


def test_video_layouts_build_verify_and_read_back(tmp_path, cli, capsys):
    rng = np.random.default_rng(0)
    vimeo, reds = str(tmp_path / 'vimeo'), str(tmp_path / 'reds')
    _write_tree(
        vimeo, ['00001/0001', '00001/0002', '00002/0001'], [f'im{i}' for i in range(1, 8)], rng
    )
    _write_tree(reds, ['000', '001'], [f'{i:08d}' for i in range(5)], rng)

    # One build as users run it (a fresh process, with --verify) ...
    dst = osp.join(vimeo, 'GT.lmdb')
    result = run_cli(osp.join(vimeo, 'GT'), dst, '--verify', '--no-progress', '--workers', '0')
    assert result.returncode == 0, result.stderr
    assert 'wrote 21 images' in result.stdout
    assert 'verified 21 images' in result.stdout
    # ... the others in-process.
    for root, role in ((vimeo, 'LQ'), (reds, 'GT'), (reds, 'LQ')):
        assert (
            cli(
                [
                    osp.join(root, role),
                    osp.join(root, f'{role}.lmdb'),
                    '--verify',
                    '--no-progress',
                    '--workers',
                    '0',
                ]
            )
            == 0
        )
    assert 'verified 10 images' in capsys.readouterr().out

    keys = [k for k, _, _ in read_meta_info(dst)]
    assert keys[:2] == ['00001/0001/im1', '00001/0001/im2']
    assert '00002/0001/im7' in keys and len(keys) == 21
    assert read_meta_info(osp.join(reds, 'LQ.lmdb'))[0] == ('000/00000000', (4, 6, 3), 1)

    # Same safety as for images: an existing database is never replaced
    # without --overwrite.
    with open(osp.join(dst, 'data.mdb'), 'rb') as f:
        before = f.read()
    assert cli([osp.join(vimeo, 'GT'), dst, '--no-progress']) == 2
    assert '--overwrite' in capsys.readouterr().err
    with open(osp.join(dst, 'data.mdb'), 'rb') as f:
        assert f.read() == before

    def pair(root, backend, lq=True):
        if backend == 'lmdb':
            return dict(
                dataroot_gt=osp.join(root, 'GT.lmdb'),
                dataroot_lq=osp.join(root, 'LQ.lmdb') if lq else None,
                io_backend='lmdb',
            )
        return dict(
            dataroot_gt=osp.join(root, 'GT'), dataroot_lq=osp.join(root, 'LQ') if lq else None
        )

    train = dict(scale=2, gt_size=4, use_hflip=True, use_rot=True, random_reverse=True)
    cases = [
        (VimeoSeptupletDataset, vimeo, True, dict(num_frame=5, **train)),
        (
            VimeoSeptupletDataset,
            vimeo,
            False,
            dict(
                num_frame=3,
                degradation={'type': 'DN', 'noise_level': 10},
                return_all_gt=True,
                **train,
            ),
        ),
        (REDSClipDataset, reds, True, dict(num_frame=3, interval_list=[1, 2], **train)),
        (
            REDSClipDataset,
            reds,
            False,
            dict(num_frame=5, exclude_clips=['001'], degradation='BD', **train),
        ),
        (VideoTestDataset, reds, True, dict(scale=2, num_frame=5)),
        (VideoTestDataset, vimeo, False, dict(scale=2, num_frame=7, padding='replicate')),
    ]
    for cls, root, lq, opts in cases:
        disk = cls(**pair(root, 'disk', lq), **opts)
        db = cls(**pair(root, 'lmdb', lq), **opts)
        assert len(disk) == len(db) > 0
        for index in range(0, len(disk), 3):
            _assert_same(disk[index, index + 7], db[index, index + 7])
        assert db[0]['gt_path'].startswith(osp.join(root, 'GT.lmdb'))


@pytest.mark.slow
def test_real_vimeo_sample_lmdb_via_cli(tmp_path, testdata):
    src = testdata('vimeo90k_sample', 'sequences')
    dst = str(tmp_path / 'vimeo_sample_GT.lmdb')
    result = run_cli(src, dst, '--verify', '--no-progress', '--workers', '2')
    assert result.returncode == 0, result.stderr
    assert 'wrote 112 images' in result.stdout
    assert 'verified 112 images' in result.stdout
    meta = read_meta_info(dst)
    assert meta[3] == ('00001/0001/im4', (256, 448, 3), 1)

    listfile = tmp_path / 'sep_testlist.txt'
    listfile.write_text('00001/0003\n00002/0008\n')
    opts = dict(
        scale=4, num_frame=5, gt_size=64, use_hflip=True, use_rot=True, meta_info_file=str(listfile)
    )
    disk = VimeoSeptupletDataset(src, **opts)
    db = VimeoSeptupletDataset(dst, io_backend='lmdb', **opts)
    for index, seed in ((0, 1), (1, 2)):
        a, b = disk[index, seed], db[index, seed]
        _assert_same(a, b)
        assert a['lq'].shape == (5, 3, 16, 16) and a['gt'].shape == (3, 64, 64)
    assert b['key'] == '00002/0008/im4'
