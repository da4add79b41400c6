"""Atomic checkpoint writes and weights_only reads."""

import collections
import io
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

from basicattn.checkpoint import io as checkpoint_io
from basicattn.checkpoint.io import (
    AtomicLocalBackend,
    atomic_write_bytes,
    decode_plain,
    encode_plain,
    safe_load,
)


def _leftovers(folder):
    return sorted(name for name in os.listdir(folder) if name.endswith('.tmp'))


# -- atomic writes --------------------------------------------------------------
def test_atomic_write_creates_folder_and_leaves_no_temp(tmp_path):
    path = tmp_path / 'sub' / 'dir' / 'ckpt.pth'
    atomic_write_bytes(b'payload', str(path))
    assert path.read_bytes() == b'payload'
    assert _leftovers(path.parent) == []
    atomic_write_bytes(b'second', str(path))
    assert path.read_bytes() == b'second'
    assert os.listdir(path.parent) == ['ckpt.pth']


def test_atomic_write_uses_the_usual_mode(tmp_path):
    path = tmp_path / 'mode.bin'
    atomic_write_bytes(b'x', str(path))
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~umask)


def test_failed_rename_keeps_old_content(tmp_path, monkeypatch):
    path = tmp_path / 'ckpt.pth'
    path.write_bytes(b'old')

    def broken_replace(src, dst):
        raise OSError('disk gone')

    monkeypatch.setattr(checkpoint_io.os, 'replace', broken_replace)
    with pytest.raises(OSError, match='disk gone'):
        atomic_write_bytes(b'new content', str(path))
    monkeypatch.undo()
    assert path.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['ckpt.pth']


def test_failed_write_midway_keeps_old_content(tmp_path, monkeypatch):
    path = tmp_path / 'ckpt.pth'
    path.write_bytes(b'old')
    real_fdopen = os.fdopen

    class HalfWriter:
        """Writes the first half, then 'crashes'."""

        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            raise KeyboardInterrupt  # a BaseException, like a killed job

    monkeypatch.setattr(
        checkpoint_io.os, 'fdopen', lambda fd, mode: HalfWriter(real_fdopen(fd, mode))
    )
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(b'0123456789', str(path))
    monkeypatch.undo()
    assert path.read_bytes() == b'old'
    assert _leftovers(tmp_path) == []


def test_backend_put_and_put_text(tmp_path):
    backend = AtomicLocalBackend()
    target = tmp_path / 'a' / 'weights.bin'
    backend.put(b'\x00\x01', target)  # a pathlib path is accepted
    assert target.read_bytes() == b'\x00\x01'
    pointer = tmp_path / 'last_checkpoint'
    backend.put_text('iter_3.pth', str(pointer))
    assert pointer.read_text() == 'iter_3.pth'
    backend.put_text('\u00e9', str(pointer), encoding='latin-1')
    assert pointer.read_bytes() == b'\xe9'
    assert _leftovers(tmp_path) == [] and _leftovers(target.parent) == []


@pytest.fixture
def restore_mmengine_io(monkeypatch):
    """Undo install(): mmengine's backend and loader tables are process-wide
    (and imported by name elsewhere, so they are restored in place)."""
    from mmengine.fileio.backends import registry_utils
    from mmengine.runner.checkpoint import CheckpointLoader

    tables = [registry_utils.backends, registry_utils.prefix_to_backends]
    saved = [table.copy() for table in tables]
    # register_scheme replaces the class attribute: restore it by setattr
    monkeypatch.setattr(CheckpointLoader, '_schemes', CheckpointLoader._schemes.copy())
    yield
    for table, copy in zip(tables, saved):
        table.clear()
        table.update(copy)


def test_install_routes_mmengine_io(tmp_path, restore_mmengine_io):
    from mmengine.fileio import get_file_backend
    from mmengine.runner.checkpoint import CheckpointLoader

    checkpoint_io.install()
    checkpoint_io.install()  # idempotent
    backend = get_file_backend(str(tmp_path))
    assert isinstance(backend, AtomicLocalBackend)
    backend.put_text('x', str(tmp_path / 'p'))
    assert (tmp_path / 'p').read_text() == 'x'
    # local checkpoint reads go through safe_load
    evil = tmp_path / 'evil.pth'
    torch.save({'d': SneakyDict()}, evil)
    with pytest.raises(RuntimeError, match='weights_only'):
        CheckpointLoader.load_checkpoint(str(evil))
    good = tmp_path / 'good.pth'
    torch.save({'w': torch.ones(1)}, good)
    assert torch.equal(CheckpointLoader.load_checkpoint(str(good))['w'], torch.ones(1))


# -- weights_only reads ----------------------------------------------------------
class SneakyDict(collections.OrderedDict):
    """A dict subclass defined here: unpickling it would run arbitrary code."""


def test_safe_load_plain_checkpoint(tmp_path):
    path = tmp_path / 'ok.pth'
    state = {
        'state_dict': collections.OrderedDict(w=torch.arange(4.0)),
        'meta': {'iter': 3},
        'arr': np.arange(3),
        'scalar': np.float64(2.5),
        'ints': np.int64(7),
    }
    torch.save(state, path)
    loaded = safe_load(str(path))
    assert torch.equal(loaded['state_dict']['w'], torch.arange(4.0))
    assert loaded['meta'] == {'iter': 3}
    np.testing.assert_array_equal(loaded['arr'], np.arange(3))
    assert loaded['scalar'] == 2.5 and loaded['ints'] == 7
    assert safe_load(path)['meta'] == {'iter': 3}  # os.PathLike too


@pytest.mark.parametrize(
    'payload',
    [
        lambda: {'state_dict': SneakyDict(w=torch.zeros(1))},
        lambda: {'buffer': HistoryBuffer([1.0], [1])},  # pickles methods via getattr
        lambda: {'fn': os.getcwd},
    ],
)
def test_safe_load_refuses_arbitrary_objects(tmp_path, payload):
    path = tmp_path / 'evil.pth'
    torch.save(payload(), path)
    with pytest.raises(RuntimeError) as info:
        safe_load(str(path))
    assert str(path) in str(info.value)
    assert 'weights_only' in str(info.value)


def test_safe_load_missing_path(tmp_path):
    missing = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        safe_load(missing)


def test_safe_load_relative_missing_path_names_the_absolute_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as info:
        safe_load('weights/nope.pth', option='path.pretrain_network_g')
    assert str(info.value) == (
        f'path.pretrain_network_g weights/nope.pth (= {tmp_path}/weights/nope.pth; '
        'relative to the current directory) does not exist'
    )


def test_safe_load_file_object():
    buffer = io.BytesIO()
    torch.save({'x': torch.ones(2)}, buffer)
    buffer.seek(0)
    assert torch.equal(safe_load(buffer)['x'], torch.ones(2))


def test_allow_list_is_scoped_to_safe_load():
    buffer = io.BytesIO()
    torch.save({'arr': np.arange(2)}, buffer)
    safe_load(io.BytesIO(buffer.getvalue()))
    with pytest.raises(pickle.UnpicklingError):
        torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)


# -- encode_plain / decode_plain ------------------------------------------------
@pytest.fixture
def hub_state():
    hub = MessageHub.get_instance('test_checkpoint_io_hub')
    hub.update_scalar('train/loss', 0.5)
    hub.update_scalar('train/loss', np.float32(0.25), count=2)
    hub.update_scalar('train/lr', 1e-4)
    hub.update_info('iter', 3)
    hub.update_info('seen', np.arange(6, dtype=np.int32).reshape(2, 3))
    hub.update_info('best', np.float64(31.5))
    hub.update_info('flags', (np.bool_(True), [np.int64(2)]))
    return hub.state_dict()


def test_encoded_hub_loads_without_allow_list(hub_state):
    encoded = encode_plain(hub_state)
    buffer = io.BytesIO()
    torch.save({'message_hub': encoded}, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)  # no safe_globals at all
    decoded = decode_plain(loaded['message_hub'])

    for name, original in hub_state['log_scalars'].items():
        rebuilt = decoded['log_scalars'][name]
        assert isinstance(rebuilt, HistoryBuffer)
        np.testing.assert_allclose(rebuilt.data[0], original.data[0])
        np.testing.assert_allclose(rebuilt.data[1], original.data[1])
        assert rebuilt.max_length == original.max_length
        assert rebuilt.current() == pytest.approx(original.current())
    info = decoded['runtime_info']
    assert info['iter'] == 3
    assert isinstance(info['seen'], np.ndarray) and info['seen'].dtype == np.int32
    np.testing.assert_array_equal(info['seen'], np.arange(6).reshape(2, 3))
    assert info['best'] == 31.5 and type(info['best']) is float
    assert info['flags'] == (True, [2]) and isinstance(info['flags'], tuple)
    assert decoded['resumed_keys'] == dict(hub_state['resumed_keys'])

    hub = MessageHub.get_instance('test_checkpoint_io_hub_restored')
    hub.load_state_dict(decoded)
    assert hub.get_scalar('train/loss').current() == pytest.approx(0.25)
    assert hub.get_info('iter') == 3


def test_raw_hub_state_is_refused_by_weights_only(hub_state):
    buffer = io.BytesIO()
    torch.save(hub_state, buffer)
    buffer.seek(0)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(buffer, weights_only=True)


def test_encode_leaves_plain_values_alone():
    data = {'a': [1, 2.5, 'x', None, True], 't': torch.ones(2), 'n': {'m': (1,)}}
    encoded = encode_plain(data)
    assert encoded['a'] == data['a'] and encoded['n'] == {'m': (1,)}
    assert encoded['t'] is data['t']
    assert decode_plain(encoded)['a'] == data['a']


def test_empty_history_buffer_roundtrip():
    decoded = decode_plain(encode_plain(HistoryBuffer(max_length=5)))
    assert isinstance(decoded, HistoryBuffer)
    assert len(decoded.data[0]) == 0 and decoded.max_length == 5
