"""Tests of basicattn.data.lmdb_io: meta_info parsing and the lazy reader."""

import os
import pickle

import lmdb
import pytest

from basicattn.data.lmdb_io import (
    LmdbReader,
    check_unique_keys,
    is_lmdb,
    read_meta_info,
    scan_images,
)


def _make_db(path, records, meta=True):
    env = lmdb.open(str(path), map_size=1 << 20)
    with env.begin(write=True) as txn:
        for key, value in records.items():
            txn.put(key.encode(), value)
    env.close()
    if meta:
        with open(os.path.join(path, 'meta_info.txt'), 'w') as f:
            for key in records:
                f.write(f'{key}.png (2,3,3) 1\n')
    return str(path)


def test_read_meta_info_keeps_dots_and_slashes(tmp_path):
    meta = tmp_path / 'meta_info.txt'
    meta.write_text(
        '0801x2.png (24,32,3) 1\n\na.b/c.d.png (1,2,3) 0\n00001/0001/im4.png (256, 448, 3) 9\n'
    )
    assert read_meta_info(meta) == [
        ('0801x2', (24, 32, 3), 1),
        ('a.b/c.d', (1, 2, 3), 0),
        ('00001/0001/im4', (256, 448, 3), 9),
    ]
    # The folder holding the file is accepted too.
    assert read_meta_info(tmp_path)[0][0] == '0801x2'


@pytest.mark.parametrize(
    'line', ['img.png (24,32) 1', 'img.png 24,32,3 1', 'img.png (24,32,3)', 'img.png (a,32,3) 1']
)
def test_read_meta_info_malformed_names_file_and_line(tmp_path, line):
    meta = tmp_path / 'meta_info.txt'
    meta.write_text(f'ok.png (1,1,3) 1\n{line}\n')
    with pytest.raises(ValueError, match=r'meta_info\.txt, line 2'):
        read_meta_info(meta)


def test_read_meta_info_duplicate_and_missing(tmp_path):
    meta = tmp_path / 'meta_info.txt'
    meta.write_text('x.png (1,1,3) 1\nx.png (1,1,3) 1\n')
    with pytest.raises(ValueError, match="line 2: key 'x' already listed"):
        read_meta_info(meta)
    with pytest.raises(FileNotFoundError, match='nothere'):
        read_meta_info(tmp_path / 'nothere.txt')


def test_is_lmdb(tmp_path):
    assert is_lmdb(tmp_path / 'anything.lmdb')
    assert not is_lmdb(tmp_path)
    db = _make_db(tmp_path / 'plain_folder', {'a': b'1'})
    assert is_lmdb(db)


def test_scan_images_keys(tmp_path):
    for rel in ['b/2.png', 'a.b/c.d.png', 'a.b/x.JPG', 'top.bmp', 'notes.txt']:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b'')
    keys = [key for key, _ in scan_images(tmp_path)]
    assert keys == ['a.b/c.d', 'a.b/x', 'b/2', 'top']
    (tmp_path / 'top.png').write_bytes(b'')
    with pytest.raises(ValueError, match=r'top\.bmp and .*top\.png'):
        check_unique_keys(scan_images(tmp_path))
    with pytest.raises(FileNotFoundError, match='missing'):
        scan_images(tmp_path / 'missing')


def _touch(root, *rels):
    for rel in rels:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b'')


def test_scan_images_skips_folder_loops_with_one_line_each(tmp_path, capsys):
    hr = tmp_path / 'HR'
    _touch(hr, 'a.png', 'sub/b.png')
    os.symlink('..', hr / 'sub' / 'loop')  # holds the tree: would never end
    os.symlink('.', hr / 'self')  # the tree again: every image a second time
    os.symlink('sub', hr / 'alias')  # a folder inside the tree, listed as sub/
    keys = [key for key, _ in scan_images(hr)]
    assert keys == ['a', 'sub/b']
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and all(line.startswith('warning: ') for line in lines)
    assert {line.split()[1] for line in lines} == {
        str(hr / 'alias'),
        str(hr / 'self'),
        str(hr / 'sub' / 'loop'),
    }


def test_scan_images_follows_a_link_out_of_the_tree_once(tmp_path, capsys):
    _touch(tmp_path / 'store', 'x.png')
    os.symlink(tmp_path / 'store', tmp_path / 'store' / 'again')  # a loop outside the tree
    hr = tmp_path / 'HR'
    _touch(hr, 'a.png', 'link_to_file_target.png')
    os.symlink(tmp_path / 'store', hr / 'one')
    os.symlink(tmp_path / 'store', hr / 'two')  # the same real folder: listed once
    os.symlink(hr / 'a.png', hr / 'repeated.png')  # links to files stay keys of their own
    keys = [key for key, _ in scan_images(hr)]
    assert keys == ['a', 'link_to_file_target', 'one/x', 'repeated']
    err = capsys.readouterr().err
    assert str(hr / 'two') in err and str(hr / 'one' / 'again') in err


def test_reader_get_keys_contains(tmp_path):
    db = _make_db(tmp_path / 'x.lmdb', {'a.b/c': b'abc', 'z': b'zz'})
    reader = LmdbReader(db)
    assert reader._env is None  # lazy
    assert reader.keys() == ['a.b/c', 'z']
    assert reader._env is None  # keys came from meta_info.txt
    assert reader.get('a.b/c') == b'abc'
    assert isinstance(reader.get('z'), bytes)
    assert 'z' in reader and 'nope' not in reader
    with pytest.raises(KeyError) as info:
        reader.get('nope')
    assert 'nope' in str(info.value) and db in str(info.value)
    assert len(reader) == 2
    reader.close()


def test_reader_keys_by_cursor_without_meta(tmp_path):
    db = _make_db(tmp_path / 'y.lmdb', {'b': b'2', 'a': b'1'}, meta=False)
    assert LmdbReader(db).keys() == ['a', 'b']


def test_reader_pickles_and_reopens_after_pid_change(tmp_path, monkeypatch):
    db = _make_db(tmp_path / 'x.lmdb', {'k': b'v'})
    reader = LmdbReader(db)
    clone = pickle.loads(pickle.dumps(reader))  # before first use
    assert clone.get('k') == b'v'
    # After use it still pickles, without its environment.
    clone2 = pickle.loads(pickle.dumps(clone))
    assert clone2._env is None and clone2.get('k') == b'v'
    # Readers of one database in one process share one environment
    # (py-lmdb refuses to open an environment twice in a process).
    assert clone2._env is clone._env
    clone2.close()
    # A new process id (as in a forked DataLoader worker) opens a new env.
    first_env = clone._env
    monkeypatch.setattr(os, 'getpid', lambda: -12345)
    assert clone.get('k') == b'v'
    assert clone._env is not first_env and clone._pid == -12345
    clone.close()


def test_reader_in_forked_child(tmp_path):
    db = _make_db(tmp_path / 'x.lmdb', {'k': b'v'})
    reader = LmdbReader(db)
    assert reader.get('k') == b'v'  # opened in the parent
    if not hasattr(os, 'fork'):
        pytest.skip('needs os.fork')
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: must open its own env despite the inherited one
        try:
            ok = reader.get('k') == b'v' and LmdbReader(db).get('k') == b'v'
            os.write(write_fd, b'1' if ok else b'0')
        except BaseException as err:  # noqa: BLE001
            os.write(write_fd, repr(err).encode()[:200])
        finally:
            os._exit(0)
    os.close(write_fd)
    os.waitpid(pid, 0)
    answer = os.read(read_fd, 256)
    os.close(read_fd)
    assert answer == b'1'
    assert reader.get('k') == b'v'  # the parent's env is unaffected


def test_reader_missing_database(tmp_path):
    reader = LmdbReader(tmp_path / 'missing.lmdb')
    with pytest.raises(FileNotFoundError, match='missing.lmdb'):
        reader.get('k')
