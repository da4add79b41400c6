"""BasicSR's Vimeo-90K LMDBs, built here in its exact layout, read like the folders.

BasicSR's ``scripts/data_preparation/create_lmdb.py`` (``create_lmdb_for_vimeo90k``)
writes the GT LMDB with only the centre frame of each septuplet (keys
``00001/0001/im4``) and the LQ LMDB with all seven (``00001/0001/im1`` ..
``im7``): PNG bytes at compression level 1, and a ``meta_info.txt`` of lines
``00001/0001/im4.png (256,448,3) 1``. Its datasets take the clip list from a
meta info file of lines ``00001/0001 7 (256,448,3)``. The LMDBs are written
below with the ``lmdb`` package directly, not with basicattn's builder, so
that the layout is BasicSR's and not ours.
"""

import os.path as osp

import cv2
import lmdb
import numpy as np
import pytest
import torch

from basicattn.config.options import validate_options
from basicattn.engine.builder import eval_dataloader_cfg, train_dataloader_cfg
from basicattn.registry import DATASETS
from basicattn.utils.img_util import img2tensor, imread, imwrite

H, W, SCALE = 16, 24, 4
CLIPS = ('00001/0001', '00001/0002', '00003/0010')


def _basicsr_lmdb(db_path, root, keys):
    """Write ``root/<key>.png`` under ``<key>`` as BasicSR's make_lmdb_from_imgs does."""
    env = lmdb.open(db_path, map_size=1 << 24)
    lines = []
    with env.begin(write=True) as txn:
        for key in keys:
            img = cv2.imread(osp.join(root, f'{key}.png'), cv2.IMREAD_UNCHANGED)
            ok, buf = cv2.imencode('.png', img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
            assert ok
            txn.put(key.encode('ascii'), buf.tobytes())
            h, w, c = img.shape
            lines.append(f'{key}.png ({h},{w},{c}) 1\n')
    env.close()
    with open(osp.join(db_path, 'meta_info.txt'), 'w') as f:
        f.writelines(lines)


@pytest.fixture(scope='module')
def vimeo(tmp_path_factory):
    """Septuplet folders (GT, x4 LQ), BasicSR's two LMDBs of them, its meta info file."""
    root = tmp_path_factory.mktemp('vimeo_basicsr')
    rng = np.random.default_rng(0)
    gt, lq = str(root / 'sequences'), str(root / 'BIx4')
    for clip in CLIPS:
        for i in range(1, 8):
            img = (rng.random((H, W, 3)) * 255).astype(np.uint8)
            imwrite(osp.join(gt, clip, f'im{i}.png'), img)
            small = cv2.resize(img, (W // SCALE, H // SCALE), interpolation=cv2.INTER_AREA)
            imwrite(osp.join(lq, clip, f'im{i}.png'), small)
    gt_db, lq_db = str(root / 'vimeo90k_GT_only4th.lmdb'), str(root / 'vimeo90k_LR7frames.lmdb')
    _basicsr_lmdb(gt_db, gt, [f'{c}/im4' for c in CLIPS])
    _basicsr_lmdb(lq_db, lq, [f'{c}/im{i}' for c in CLIPS for i in range(1, 8)])
    meta = root / 'meta_info_Vimeo90K_test_GT.txt'
    meta.write_text(''.join(f'{c} 7 ({H},{W},3)\n' for c in CLIPS))
    return dict(gt=gt, lq=lq, gt_db=gt_db, lq_db=lq_db, meta=str(meta))


def _validated_set(block, purpose):
    """The dataset built from a BasicSR ``datasets`` block, by the path the tools take."""
    key = 'train' if purpose == 'train' else 'test_vimeo'
    opt = {
        'name': 'basicsr_vimeo',
        'model_type': 'VideoBaseModel',
        'scale': SCALE,
        'datasets': {key: dict(block)},
        'network_g': {'type': 'Bicubic'},
    }
    if purpose == 'train':
        opt['train'] = {
            'optim_g': {'type': 'Adam', 'lr': 1e-4},
            'total_iter': 1,
            'pixel_opt': {'type': 'L1Loss'},
        }
    opt = validate_options(opt, source='basicsr_vimeo.yml', purpose=purpose)
    assert opt['model_type'] == 'VideoSRModel'
    loader = (train_dataloader_cfg if purpose == 'train' else eval_dataloader_cfg)(
        opt['datasets'][key]
    )
    return DATASETS.build(loader['dataset'])


def _frames(root, clip, names):
    return torch.stack([img2tensor(imread(osp.join(root, clip, f'{n}.png'))) for n in names])


@pytest.mark.parametrize('num_frame, first', [(7, 1), (5, 2)])
def test_video_test_vimeo90k_reads_basicsr_lmdbs(vimeo, capsys, num_frame, first):
    """BasicSR's VideoTestVimeo90KDataset block on its LMDBs: the middle ``num_frame`` LQ
    frames and the one GT ``im4`` per septuplet, as in the folders."""
    block = {
        'name': 'Vimeo90K',
        'type': 'VideoTestVimeo90KDataset',
        'dataroot_gt': vimeo['gt_db'],
        'dataroot_lq': vimeo['lq_db'],
        'meta_info_file': vimeo['meta'],
        'io_backend': {'type': 'lmdb'},
        'cache_data': False,
        'num_frame': num_frame,
        'padding': 'reflection_circle',
    }
    ds = _validated_set(block, 'test')
    warned = [line.split(':')[1].strip() for line in capsys.readouterr().err.splitlines()]
    assert sorted(warned) == ['datasets.test_vimeo.cache_data', 'datasets.test_vimeo.padding']
    disk = _validated_set(
        dict(block, dataroot_gt=vimeo['gt'], dataroot_lq=vimeo['lq'], io_backend={'type': 'disk'}),
        'test',
    )
    assert type(ds).__name__ == 'VimeoSeptupletDataset' and len(ds) == len(disk) == len(CLIPS)
    names = [f'im{i}' for i in range(first, first + num_frame)]
    for index, clip in enumerate(CLIPS):
        item, from_disk = ds[index], disk[index]
        assert item['lq'].shape == (num_frame, 3, H // SCALE, W // SCALE)
        assert item['gt'].shape == (3, H, W)
        torch.testing.assert_close(item['lq'], _frames(vimeo['lq'], clip, names), rtol=0, atol=0)
        torch.testing.assert_close(
            item['gt'], _frames(vimeo['gt'], clip, ['im4'])[0], rtol=0, atol=0
        )
        for key in ('lq', 'gt'):
            torch.testing.assert_close(item[key], from_disk[key], rtol=0, atol=0)
        assert item['key'] == from_disk['key'] == f'{clip}/im4'


def test_vimeo90k_train_reads_basicsr_gt_only4th_lmdb(vimeo):
    """BasicSR's Vimeo90KDataset block (train) on ``vimeo90k_train_GT_only4th.lmdb``:
    the same crops and flips as the folders for the same ``(index, seed)``."""
    block = {
        'name': 'Vimeo90K',
        'type': 'Vimeo90KDataset',
        'dataroot_gt': vimeo['gt_db'],
        'dataroot_lq': vimeo['lq_db'],
        'meta_info_file': vimeo['meta'],
        'io_backend': {'type': 'lmdb'},
        'num_frame': 7,
        'gt_size': 8,
        'random_reverse': True,
        'use_flip': True,
        'use_rot': True,
        'use_shuffle': True,
        'num_worker_per_gpu': 0,
        'batch_size_per_gpu': 2,
        'dataset_enlarge_ratio': 2,
    }
    ds = _validated_set(block, 'train')
    disk = _validated_set(
        dict(block, dataroot_gt=vimeo['gt'], dataroot_lq=vimeo['lq'], io_backend={'type': 'disk'}),
        'train',
    )
    assert len(ds) == len(disk) == 2 * len(CLIPS)
    for item in [(0, 3), (4, 11), (5, 0)]:
        a, b = ds[item], disk[item]
        assert a['lq'].shape == (7, 3, 2, 2) and a['gt'].shape == (3, 8, 8)
        for key in ('lq', 'gt'):
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
