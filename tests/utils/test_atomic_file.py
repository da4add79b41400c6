"""atomic_file and imwrite on a full disk: the error names the destination,
the previous file is intact and no temporary file is left."""

import errno
import os
import os.path as osp

import numpy as np
import pytest

from basicattn.utils import atomic_file
from basicattn.utils.atomic_file import atomic_open, atomic_write_bytes
from basicattn.utils.img_util import imread, imwrite
from basicattn.utils.tool_runner import describe


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _assert_names(err, path):
    assert err.errno == errno.ENOSPC and err.filename == path
    line = describe(err)
    assert line.startswith(f'{path}: ') and 'free some space' in line


@pytest.fixture
def previous(tmp_path):
    path = str(tmp_path / 'iter_4.pth')
    with open(path, 'wb') as f:
        f.write(b'the previous checkpoint')
    return path


@pytest.mark.parametrize('where', ['write', 'fsync', 'replace', 'open'])
def test_full_disk_names_target_keeps_previous(previous, monkeypatch, where):
    if where == 'fsync':
        monkeypatch.setattr(atomic_file.os, 'fsync', _enospc)
    elif where == 'replace':
        monkeypatch.setattr(atomic_file.os, 'replace', _enospc)
    elif where == 'open':
        monkeypatch.setattr(atomic_file.os, 'open', _enospc)
    with pytest.raises(OSError) as info:
        with atomic_open(previous) as f:
            if where == 'write':
                _enospc()  # e.g. torch.save writing into the file
            f.write(b'new')
    _assert_names(info.value, previous)
    with open(previous, 'rb') as f:
        assert f.read() == b'the previous checkpoint'
    assert os.listdir(osp.dirname(previous)) == ['iter_4.pth']


def test_other_errors_pass_unchanged(previous):
    with pytest.raises(ZeroDivisionError):
        with atomic_open(previous) as f:
            f.write(b'x')
            raise ZeroDivisionError
    other = OSError(errno.EIO, 'I/O error', '/somewhere/else')
    with pytest.raises(OSError) as info:
        with atomic_open(previous):
            raise other
    assert info.value is other
    assert os.listdir(osp.dirname(previous)) == ['iter_4.pth']


def test_imwrite_full_disk_names_image(tmp_path, monkeypatch, rng):
    path = str(tmp_path / 'out' / 'im.png')
    first = (rng.random((6, 6, 3)) * 255).astype(np.uint8)
    imwrite(path, first)
    monkeypatch.setattr(atomic_file.os, 'fsync', _enospc)
    with pytest.raises(OSError) as info:
        imwrite(path, np.zeros((6, 6, 3), np.uint8))
    _assert_names(info.value, path)
    assert np.array_equal(imread(path), first)
    assert os.listdir(osp.dirname(path)) == ['im.png']


@pytest.fixture
def tiny_disk(small_disk):
    """A 64 KiB tmpfs (skipped where mounting is not allowed)."""
    return small_disk('64k')


def test_real_full_disk(tiny_disk, rng):
    path = osp.join(tiny_disk, 'metrics.json')
    atomic_write_bytes(b'{"psnr": 30}', path)
    with pytest.raises(OSError) as info:
        atomic_write_bytes(b'x' * (256 * 1024), path)
    _assert_names(info.value, path)
    with open(path, 'rb') as f:
        assert f.read() == b'{"psnr": 30}'
    image = osp.join(tiny_disk, 'sr.png')
    small = (rng.random((4, 4, 3)) * 255).astype(np.uint8)
    imwrite(image, small)
    noise = (rng.random((160, 160, 3)) * 255).astype(np.uint8)  # ~75 KiB PNG
    with pytest.raises(OSError) as info:
        imwrite(image, noise)
    _assert_names(info.value, image)
    assert np.array_equal(imread(image), small)
    assert sorted(os.listdir(tiny_disk)) == ['metrics.json', 'sr.png']


def test_lmdb_build_on_full_disk_names_database(tiny_disk, tmp_path, rng):
    from basicattn.data.lmdb_builder import build_lmdb_from_folder

    src = tmp_path / 'src'
    for i in range(4):
        imwrite(str(src / f'{i}.png'), (rng.random((100, 100, 3)) * 255).astype(np.uint8))
    dst = osp.join(tiny_disk, 'x.lmdb')
    with pytest.raises(OSError) as info:
        build_lmdb_from_folder(str(src), dst, progress=False, num_workers=0)
    assert info.value.filename == dst
    assert describe(info.value).startswith(f'{dst}: ')
    assert os.listdir(tiny_disk) == []  # the temporary build is removed
