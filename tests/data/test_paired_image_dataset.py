"""Tests of PairedImageDataset: backends agree, seeds, BI LR, workers."""

import os
import os.path as osp
import shutil

import pytest
import torch
from torch.utils.data import DataLoader

from basicattn.data.lmdb_builder import build_lmdb_from_folder
from basicattn.data.paired_image_dataset import PairedImageDataset
from basicattn.registry import DATASETS
from basicattn.utils.img_util import img2tensor, imread, mod_crop
from basicattn.utils.matlab_imresize import imresize


@pytest.fixture
def paired(tiny_image_folder, tmp_path):
    """Disk folders, a meta info file and LMDBs of the tiny x2 pairs."""
    hr, lr = tiny_image_folder
    hr_db = str(tmp_path / 'HR.lmdb')
    lr_db = str(tmp_path / 'LR.lmdb')
    build_lmdb_from_folder(hr, hr_db, progress=False, num_workers=0)
    build_lmdb_from_folder(lr, lr_db, progress=False, num_workers=0)
    meta = tmp_path / 'meta_info_train.txt'
    meta.write_text(''.join(f'img_{i:03d}.png (24,32,3)\n' for i in range(4)))
    return dict(hr=hr, lr=lr, hr_db=hr_db, lr_db=lr_db, meta=str(meta))


TRAIN = dict(scale=2, gt_size=8, use_hflip=True, use_rot=True)


def _assert_same(a, b):
    assert a['key'] == b['key']
    torch.testing.assert_close(a['gt'], b['gt'], rtol=0, atol=0)
    torch.testing.assert_close(a['lq'], b['lq'], rtol=0, atol=0)


def test_backends_identical_for_index_and_seed(paired):
    disk = PairedImageDataset(paired['hr'], paired['lr'], **TRAIN)
    meta = PairedImageDataset(paired['hr'], paired['lr'], meta_info_file=paired['meta'], **TRAIN)
    db = PairedImageDataset(paired['hr_db'], paired['lr_db'], io_backend='lmdb', **TRAIN)
    assert len(disk) == len(meta) == len(db) == 4
    for index in range(4):
        for seed in (0, 7, 123):
            sample = disk[index, seed]
            _assert_same(sample, meta[index, seed])
            _assert_same(sample, db[index, seed])
            _assert_same(sample, disk[(index, seed)])  # pure function
    sample = disk[1, 5]
    assert sample['key'] == 'img_001'
    assert sample['gt'].dtype == torch.float32
    assert sample['gt'].shape == (3, 8, 8)
    assert sample['lq'].shape == (3, 4, 4)
    assert 0 <= sample['lq'].min() and sample['lq'].max() <= 1
    assert sample['gt_path'] == osp.join(paired['hr'], 'img_001.png')
    assert sample['lq_path'] == osp.join(paired['lr'], 'img_001.png')
    assert disk.metainfo == dict(name='HR', scale=2)
    assert db.metainfo == dict(name='HR.lmdb', scale=2)


def test_crop_pairs_and_seeds_vary(paired):
    ds = PairedImageDataset(paired['hr'], paired['lr'], **TRAIN)
    gts = {ds[0, seed]['gt'].numpy().tobytes() for seed in range(8)}
    assert len(gts) > 1  # the seed drives crop / flips
    plain = ds[0]  # an int index uses numpy's global RNG
    assert plain['gt'].shape == (3, 8, 8)
    # Without crop or flips the sample is the whole pair.
    whole = PairedImageDataset(paired['hr'], paired['lr'], scale=2)[2]
    torch.testing.assert_close(
        whole['gt'], img2tensor(imread(osp.join(paired['hr'], 'img_002.png')))
    )


def test_on_the_fly_bi_equals_imresize(paired):
    # scale 3 on 24x32 GT: mod-crop to 24x30, LR 8x10.
    ds = PairedImageDataset(paired['hr'], scale=3)
    sample = ds[1]
    gt = mod_crop(imread(osp.join(paired['hr'], 'img_001.png')), 3)
    expected = imresize(gt, scale=1 / 3)
    assert expected.shape == (8, 10, 3)
    torch.testing.assert_close(sample['gt'], img2tensor(gt))
    torch.testing.assert_close(sample['lq'], img2tensor(expected))
    db = PairedImageDataset(paired['hr_db'], io_backend='lmdb', scale=3)
    _assert_same(sample, db[1])
    cropped = PairedImageDataset(paired['hr'], scale=3, gt_size=6, use_hflip=True)[1, 3]
    assert cropped['lq'].shape == (3, 2, 2)
    assert cropped['gt'].shape == (3, 6, 6)


def test_filename_tmpl_and_nested_keys(tmp_path, tiny_image_folder):
    hr, lr = tiny_image_folder
    gt_root = tmp_path / 'gt'
    lq_root = tmp_path / 'lq'
    for i, name in enumerate(sorted(os.listdir(hr))):
        sub = f'clip{i % 2}'
        os.makedirs(gt_root / sub, exist_ok=True)
        os.makedirs(lq_root / sub, exist_ok=True)
        shutil.copy(osp.join(hr, name), gt_root / sub / name)
        stem = osp.splitext(name)[0]
        shutil.copy(osp.join(lr, name), lq_root / sub / f'{stem}x2.png')
    ds = PairedImageDataset(
        str(gt_root), str(lq_root), scale=2, filename_tmpl='{}x2', name='nested'
    )
    assert [ds[i]['key'] for i in range(4)] == [
        'clip0/img_000',
        'clip0/img_002',
        'clip1/img_001',
        'clip1/img_003',
    ]
    assert ds[0]['lq_path'] == osp.join(str(lq_root), 'clip0', 'img_000x2.png')
    assert ds.metainfo['name'] == 'nested'
    gt_db, lq_db = str(tmp_path / 'g.lmdb'), str(tmp_path / 'l.lmdb')
    build_lmdb_from_folder(str(gt_root), gt_db, progress=False, num_workers=0)
    build_lmdb_from_folder(str(lq_root), lq_db, progress=False, num_workers=0)
    db = PairedImageDataset(gt_db, lq_db, io_backend='lmdb', scale=2, filename_tmpl='{}x2')
    for i in range(4):
        _assert_same(ds[i, 1], db[i, 1])


def test_repeat_and_index_range(paired):
    ds = PairedImageDataset(paired['hr'], paired['lr'], scale=2, repeat=3)
    assert len(ds) == 12
    assert ds[5]['key'] == 'img_001'
    assert ds[-1]['key'] == 'img_003'
    with pytest.raises(IndexError, match='12'):
        ds[12]


class _SeededSampler(torch.utils.data.Sampler):
    """Yields (index, seed) items, as the resumable sampler does."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter([(i, 100 + i) for i in range(self.n)])

    def __len__(self):
        return self.n


def test_dataloader_workers_lmdb(paired):
    ds = PairedImageDataset(paired['hr_db'], paired['lr_db'], io_backend='lmdb', **TRAIN)
    ds[0]  # open the environments in the parent before forking
    loader = DataLoader(ds, batch_size=2, num_workers=2, sampler=_SeededSampler(4))
    batches = list(loader)
    assert [k for b in batches for k in b['key']] == [f'img_{i:03d}' for i in range(4)]
    assert batches[0]['gt'].shape == (2, 3, 8, 8)
    for i in range(4):
        expected = ds[i, 100 + i]
        torch.testing.assert_close(batches[i // 2]['gt'][i % 2], expected['gt'])
    plain = list(DataLoader(ds, batch_size=4, num_workers=2))
    assert plain[0]['lq'].shape == (4, 3, 4, 4)


def test_registered():
    assert DATASETS.get('PairedImageDataset') is PairedImageDataset


def test_errors(paired, tmp_path):
    hr, lr = paired['hr'], paired['lr']
    with pytest.raises(ValueError, match="'BX'.*supported: BI, BD, DN"):
        PairedImageDataset(hr, degradation='BX')
    with pytest.raises(ValueError, match='io_backend'):
        PairedImageDataset(hr, io_backend='ceph')
    with pytest.raises(ValueError, match='gt_size'):
        PairedImageDataset(hr, lr, scale=2, gt_size=7)
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ValueError, match='empty'):
        PairedImageDataset(str(empty))
    with pytest.raises(FileNotFoundError, match='missing_gt'):
        PairedImageDataset(str(tmp_path / 'missing_gt'))
    # Missing LQ: the error names the expected path.
    with pytest.raises(FileNotFoundError) as info:
        PairedImageDataset(hr, lr, scale=2, filename_tmpl='{}x2')
    assert osp.join(lr, 'img_000x2.png') in str(info.value)
    # GT / LQ size mismatch names both paths and shapes.
    ds = PairedImageDataset(hr, lr, scale=3)
    with pytest.raises(ValueError) as info:
        ds[0]
    message = str(info.value)
    assert osp.join(hr, 'img_000.png') in message
    assert osp.join(lr, 'img_000.png') in message
    assert '(24, 32, 3)' in message and '(12, 16, 3)' in message
    # An LMDB folder with the disk backend, a meta file with LMDB.
    with pytest.raises(ValueError, match="io_backend='lmdb'"):
        PairedImageDataset(paired['hr_db'])
    with pytest.raises(ValueError, match='meta_info_file'):
        PairedImageDataset(paired['hr_db'], io_backend='lmdb', meta_info_file=paired['meta'])
    bad_meta = tmp_path / 'bad_meta.txt'
    bad_meta.write_text('img_000.png\nnope.png\n')
    with pytest.raises(FileNotFoundError, match=r'line 2.*nope\.png'):
        PairedImageDataset(hr, meta_info_file=str(bad_meta))
    with pytest.raises(KeyError, match='img_000x4'):
        PairedImageDataset(
            paired['hr_db'], paired['lr_db'], io_backend='lmdb', filename_tmpl='{}x4'
        )


def test_gt_meta_info_key_missing_from_the_gt_lmdb_blames_gt(paired):
    """Issue 22: a GT meta_info line without a GT record was blamed on the LQ LMDB."""
    with open(osp.join(paired['hr_db'], 'meta_info.txt'), 'a') as f:
        f.write('ghost.png (24,32,3) 1\n')
    with pytest.raises(KeyError) as info:
        PairedImageDataset(paired['hr_db'], paired['lr_db'], io_backend='lmdb', scale=2)
    assert info.value.args[0] == (
        f"GT key 'ghost' is listed in {paired['hr_db']}/meta_info.txt but not stored in the "
        f'GT LMDB {paired["hr_db"]}; rebuild the LMDB (tools/create_lmdb.py) or remove that line'
    )
