"""Bad data files raise DataError / FileNotFoundError naming the path, from
the library code that opens them."""

import os.path as osp

import numpy as np
import pytest

from basicattn.data.lmdb_builder import build_lmdb_from_folder
from basicattn.data.lmdb_io import LmdbKeyError, LmdbReader, read_meta_info
from basicattn.data.paired_image_dataset import PairedImageDataset
from basicattn.data.video_test_dataset import VideoTestDataset
from basicattn.errors import DataError
from basicattn.utils.img_util import imread, imwrite
from basicattn.utils.tool_runner import describe


@pytest.fixture
def folder(tmp_path, rng):
    root = tmp_path / 'GT'
    for i in range(3):
        imwrite(str(root / f'im{i}.png'), (rng.random((8, 8, 3)) * 255).astype(np.uint8))
    return str(root)


def test_unreadable_image_names_file(folder):
    bad = osp.join(folder, 'im1.png')
    with open(bad, 'wb') as f:
        f.write(b'garbage')
    dataset = PairedImageDataset(folder, scale=2)
    dataset[0]
    with pytest.raises(DataError) as info:
        dataset[1]
    assert bad in str(info.value) and describe(info.value)
    with pytest.raises(DataError, match=bad):
        imread(bad)


def test_missing_and_empty_folders(tmp_path, folder):
    missing = str(tmp_path / 'nope')
    with pytest.raises(FileNotFoundError, match=missing):
        PairedImageDataset(missing, scale=2)
    with pytest.raises(FileNotFoundError, match=missing):
        PairedImageDataset(folder, dataroot_lq=missing, scale=2)
    with pytest.raises(FileNotFoundError, match=missing):
        PairedImageDataset(missing, io_backend='lmdb', scale=2)
    with pytest.raises(FileNotFoundError, match=missing):
        VideoTestDataset(missing, scale=2, num_frame=1)
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(DataError, match='empty') as info:
        PairedImageDataset(str(empty), scale=2)
    assert str(empty) in str(info.value)
    with pytest.raises(DataError, match='empty'):
        VideoTestDataset(str(empty), scale=2, num_frame=1)


def test_lmdb_errors_are_data_errors(tmp_path, folder):
    db = str(tmp_path / 'gt.lmdb')
    build_lmdb_from_folder(folder, db, progress=False, num_workers=0)
    with pytest.raises(LmdbKeyError, match='ghost') as info:
        LmdbReader(db).get('ghost')
    assert isinstance(info.value, KeyError) and isinstance(info.value, DataError)
    assert db in str(info.value) and not str(info.value).startswith("'")
    meta = osp.join(db, 'meta_info.txt')
    with open(meta, 'a') as f:
        f.write('broken line\n')
    with pytest.raises(DataError, match='line 4'):
        read_meta_info(meta)


def test_frames_of_different_sizes_name_the_clip(tmp_path, rng):
    root = str(tmp_path / 'GT')
    for i, size in enumerate((8, 8, 10)):
        imwrite(
            osp.join(root, 'clip', f'{i}.png'), (rng.random((size, size, 3)) * 255).astype(np.uint8)
        )
    dataset = VideoTestDataset(root, scale=2, num_frame=3)
    with pytest.raises(DataError, match='clip'):
        for i in range(len(dataset)):
            dataset[i]
