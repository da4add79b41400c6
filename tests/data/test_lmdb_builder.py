"""Tests of basicattn.data.lmdb_builder: build, verify, never damage dst."""

import glob
import hashlib
import os
import os.path as osp

import numpy as np
import pytest

from basicattn.data import lmdb_builder
from basicattn.data.lmdb_builder import (
    LmdbBuildError,
    LmdbVerifyError,
    build_lmdb_from_folder,
    verify_lmdb,
)
from basicattn.data.lmdb_io import LmdbReader, read_meta_info
from basicattn.utils.img_util import imfrombytes, imread, imwrite


def _tree_digest(folder):
    """Hash of every file's relative path and content under ``folder``."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(folder)):
        dirnames.sort()
        for name in sorted(filenames):
            path = osp.join(dirpath, name)
            digest.update(osp.relpath(path, folder).encode())
            with open(path, 'rb') as f:
                digest.update(f.read())
    return digest.hexdigest()


def _leftovers(dst):
    return glob.glob(dst + '.tmp-*') + glob.glob(dst + '.old-*')


@pytest.fixture
def nested_folder(tmp_path, rng):
    """Images with dots in names and nested (Vimeo / REDS style) folders."""
    src = tmp_path / 'src'
    rels = [
        '0801x2.png',
        'a.b/c.d.png',
        'sequences/00001/0001/im4.png',
        'sequences/00001/0002/im4.jpg',
        '000/00000000.bmp',
    ]
    images = {}
    for i, rel in enumerate(rels):
        img = (rng.random((6 + i, 5 + 2 * i, 3)) * 255).astype(np.uint8)
        imwrite(str(src / rel), img)
        images[osp.splitext(rel)[0]] = imread(str(src / rel))  # jpg is lossy
    return str(src), images


def test_build_verify_read_back(nested_folder, tmp_path):
    src, images = nested_folder
    dst = str(tmp_path / 'out.lmdb')
    info = build_lmdb_from_folder(src, dst, progress=False, num_workers=0)
    assert info['num_images'] == len(images)
    assert info['path'] == osp.abspath(dst)
    assert sorted(os.listdir(dst)) == ['data.mdb', 'lock.mdb', 'meta_info.txt']
    meta = read_meta_info(dst)
    assert [key for key, _, _ in meta] == sorted(images, key=lambda k: k)
    reader = LmdbReader(dst)
    for key, shape, level in meta:
        img = imfrombytes(reader.get(key), key)
        assert level == 1 and shape == img.shape
        np.testing.assert_array_equal(img, images[key])
    assert set(reader.scan_keys()) == set(images)
    reader.close()
    summary = verify_lmdb(dst, progress=False)
    assert summary['num_images'] == len(images)
    assert summary['num_bytes'] == info['num_bytes']
    assert not _leftovers(dst)


def test_meta_info_format(tiny_image_folder, tmp_path):
    hr, _ = tiny_image_folder
    dst = str(tmp_path / 'hr.lmdb')
    build_lmdb_from_folder(hr, dst, progress=False, compress_level=3, num_workers=0)
    with open(osp.join(dst, 'meta_info.txt')) as f:
        lines = f.read().splitlines()
    assert lines == [f'img_{i:03d}.png (24,32,3) 3' for i in range(4)]


def test_build_with_worker_pool(tiny_image_folder, tmp_path):
    hr, _ = tiny_image_folder
    a = str(tmp_path / 'a.lmdb')
    b = str(tmp_path / 'b.lmdb')
    build_lmdb_from_folder(hr, a, progress=False, num_workers=2)
    build_lmdb_from_folder(hr, b, progress=False, num_workers=0)
    ra, rb = LmdbReader(a), LmdbReader(b)
    assert ra.keys() == rb.keys()
    for key in ra.keys():
        assert ra.get(key) == rb.get(key)  # deterministic, in order


def test_refuse_overwrite_leaves_db_identical(tiny_image_folder, tmp_path):
    hr, lr = tiny_image_folder
    dst = str(tmp_path / 'hr.lmdb')
    build_lmdb_from_folder(hr, dst, progress=False, num_workers=0)
    before = _tree_digest(dst)
    with pytest.raises(FileExistsError, match='--overwrite'):
        build_lmdb_from_folder(lr, dst, progress=False, num_workers=0)
    assert _tree_digest(dst) == before
    assert not _leftovers(dst)


def test_overwrite_swaps_in(tiny_image_folder, tmp_path):
    hr, lr = tiny_image_folder
    dst = str(tmp_path / 'x.lmdb')
    build_lmdb_from_folder(hr, dst, progress=False, num_workers=0)
    old_reader = LmdbReader(dst)
    old_reader.get('img_000')  # an open reader must not block the swap
    build_lmdb_from_folder(lr, dst, overwrite=True, progress=False, num_workers=0)
    assert read_meta_info(dst)[0][1] == (12, 16, 3)
    assert imfrombytes(LmdbReader(dst).get('img_000')).shape == (12, 16, 3)
    assert not _leftovers(dst)
    assert sorted(os.listdir(tmp_path)) == ['HR', 'LR', 'x.lmdb']


def test_overwrite_refuses_non_lmdb_and_source(tiny_image_folder, tmp_path):
    hr, _ = tiny_image_folder
    other = tmp_path / 'precious'
    other.mkdir()
    (other / 'thesis.txt').write_text('keep me')
    with pytest.raises(FileExistsError, match='not an LMDB'):
        build_lmdb_from_folder(hr, str(other), overwrite=True, progress=False)
    assert (other / 'thesis.txt').read_text() == 'keep me'
    with pytest.raises(ValueError, match='source folder'):
        build_lmdb_from_folder(hr, hr, overwrite=True, progress=False)
    with pytest.raises(ValueError, match='source folder'):
        build_lmdb_from_folder(hr, str(tmp_path), overwrite=True, progress=False)
    assert len(os.listdir(hr)) == 4


@pytest.mark.parametrize('existing', [False, True])
def test_unreadable_images_listed_dst_untouched(tiny_image_folder, tmp_path, existing):
    hr, _ = tiny_image_folder
    bad1 = osp.join(hr, 'img_001.png')
    bad2 = osp.join(hr, 'zz_empty.png')
    with open(bad1, 'wb') as f:
        f.write(b'this is not a png')
    open(bad2, 'wb').close()
    dst = str(tmp_path / 'hr.lmdb')
    if existing:
        good = tmp_path / 'good'
        good.mkdir()
        imwrite(str(good / 'a.png'), np.zeros((4, 4, 3), np.uint8))
        build_lmdb_from_folder(str(good), dst, progress=False, num_workers=0)
        before = _tree_digest(dst)
    with pytest.raises(LmdbBuildError) as info:
        build_lmdb_from_folder(hr, dst, overwrite=True, progress=False, num_workers=2)
    message = str(info.value)
    assert bad1 in message and bad2 in message
    assert [p for p, _ in info.value.bad_paths] == [bad1, bad2]
    if existing:
        assert _tree_digest(dst) == before
    else:
        assert not osp.exists(dst)
    assert not _leftovers(dst)


def test_duplicate_keys_and_empty(tmp_path):
    src = tmp_path / 'dup'
    imwrite(str(src / 'x.png'), np.zeros((4, 4, 3), np.uint8))
    imwrite(str(src / 'x.jpg'), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match=r'x\.jpg and .*x\.png'):
        build_lmdb_from_folder(str(src), str(tmp_path / 'o.lmdb'), progress=False)
    long_name = tmp_path / 'long'
    imwrite(
        str(long_name / ('n' * 200) / ('m' * 200) / ('o' * 200 + '.png')),
        np.zeros((2, 2, 3), np.uint8),
    )
    with pytest.raises(ValueError, match='longer than LMDB allows'):
        build_lmdb_from_folder(str(long_name), str(tmp_path / 'l.lmdb'), progress=False)
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ValueError, match='no images'):
        build_lmdb_from_folder(str(empty), str(tmp_path / 'e.lmdb'), progress=False)
    with pytest.raises(FileNotFoundError, match='missing'):
        build_lmdb_from_folder(str(tmp_path / 'missing'), str(tmp_path / 'm.lmdb'), progress=False)
    assert sorted(os.listdir(tmp_path)) == ['dup', 'empty', 'long']


def _random_folder(folder, rng, count=12, size=40):
    for i in range(count):
        # Noise does not compress: each PNG is ~size*size*3 bytes.
        imwrite(str(folder / f'{i:02d}.png'), (rng.random((size, size, 3)) * 255).astype(np.uint8))


class _RecordingWriter:
    """Patch the builder's writer class to keep its instances."""

    def __init__(self, monkeypatch):
        self.writers = []
        writers = self.writers

        class Recording(lmdb_builder._GrowingWriter):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                writers.append(self)

        monkeypatch.setattr(lmdb_builder, '_GrowingWriter', Recording)


def test_tiny_initial_map_size_grows(tmp_path, rng, monkeypatch):
    src = tmp_path / 'noise'
    _random_folder(src, rng)
    recorder = _RecordingWriter(monkeypatch)
    monkeypatch.setattr(lmdb_builder, '_BATCH_ITEMS', 5)
    dst = str(tmp_path / 'n.lmdb')
    info = build_lmdb_from_folder(
        str(src), dst, progress=False, num_workers=0, _initial_map_size=8192
    )
    assert info['map_size'] > 8192
    # The estimate grew the map in time: MDB_MAP_FULL was never hit.
    assert recorder.writers[0].num_retries == 0
    assert recorder.writers[0].num_grows > 0
    assert verify_lmdb(dst, progress=False)['num_images'] == 12


def test_map_full_last_resort(tmp_path, rng, monkeypatch):
    # With no estimate and no margin the pre-emptive growth never triggers,
    # so the writer must recover from MDB_MAP_FULL: abort, grow, redo.
    src = tmp_path / 'noise'
    _random_folder(src, rng)
    recorder = _RecordingWriter(monkeypatch)
    monkeypatch.setattr(lmdb_builder, '_MARGIN_PAGES', 0)
    monkeypatch.setattr(lmdb_builder, '_BATCH_ITEMS', 5)
    dst = str(tmp_path / 'n.lmdb')
    info = build_lmdb_from_folder(
        str(src),
        dst,
        progress=False,
        num_workers=0,
        _initial_map_size=8192,
        _estimate=lambda key, value, page: 0,
    )
    assert recorder.writers[0].num_retries > 0
    assert info['map_size'] > 8192
    assert verify_lmdb(dst, progress=False)['num_images'] == 12


def test_verify_reports_bad_keys(tiny_image_folder, tmp_path):
    hr, _ = tiny_image_folder
    dst = str(tmp_path / 'hr.lmdb')
    build_lmdb_from_folder(hr, dst, progress=False, num_workers=0)
    meta = osp.join(dst, 'meta_info.txt')
    with open(meta) as f:
        lines = f.read().splitlines()
    lines[1] = 'img_001.png (24,31,3) 1'  # wrong shape
    lines[2] = 'ghost.png (24,32,3) 1'  # missing; img_002 now unlisted
    with open(meta, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    with pytest.raises(LmdbVerifyError) as info:
        verify_lmdb(dst, progress=False)
    bad = dict(info.value.bad_keys)
    assert set(bad) == {'img_001', 'ghost', 'img_002'}
    for key in bad:
        assert key in str(info.value)
    with pytest.raises(FileNotFoundError, match='data.mdb'):
        verify_lmdb(str(tmp_path / 'nothing.lmdb'), progress=False)
