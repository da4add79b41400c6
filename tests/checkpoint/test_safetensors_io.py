"""safetensors weights files: written atomically, read by the one loader like .pth."""

import io
import os.path as osp
import sys

import pytest
import torch

from basicattn.archs.build import network_from_checkpoint
from basicattn.checkpoint.io import safe_load
from basicattn.checkpoint.safetensors_io import META_KEY, encode_safetensors, is_safetensors
from basicattn.checkpoint.state import read_weights_checkpoint, save_weights_file
from basicattn.errors import CheckpointError
from basicattn.registry import ARCHS

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', 'archs'))
from arch_cases import ARCH_CASES  # noqa: E402

ARCH = {'type': 'EDSR', 'num_feat': 8, 'num_block': 1, 'upscale': 2}


def _weights():
    torch.manual_seed(0)
    net = ARCHS.build(dict(ARCH))
    state = net.state_dict()
    state['int_buffer'] = torch.arange(5, dtype=torch.int64)
    state['half'] = torch.randn(3, dtype=torch.float16)
    return state


def test_round_trip_equals_pth(tmp_path):
    state = _weights()
    meta = {'arch': ARCH, 'scale': 2, 'converted_from': 'x:y.pt', 'ratio': 0.5, 'flag': None}
    save_weights_file(str(tmp_path / 'w.pth'), state, meta)
    save_weights_file(str(tmp_path / 'w.safetensors'), state, meta)
    pth_state, pth_meta = read_weights_checkpoint(str(tmp_path / 'w.pth'))
    st_state, st_meta = read_weights_checkpoint(str(tmp_path / 'w.safetensors'))
    assert st_meta == pth_meta == meta
    assert set(st_state) == set(pth_state) == set(state)
    for key, value in state.items():
        assert st_state[key].dtype == value.dtype and torch.equal(st_state[key], value)
    assert safe_load(str(tmp_path / 'w.safetensors')).keys() == {'state_dict', 'meta'}


def test_recognised_by_header_and_from_a_stream(tmp_path):
    data = encode_safetensors(_weights(), {'arch': ARCH})
    renamed = tmp_path / 'weights.bin'
    renamed.write_bytes(data)
    assert is_safetensors(str(renamed))
    assert safe_load(str(renamed))['meta'] == {'arch': ARCH}
    assert safe_load(io.BytesIO(data))['meta'] == {'arch': ARCH}
    pth = tmp_path / 'w.pth'
    torch.save({'a': torch.zeros(1)}, str(pth))
    assert not is_safetensors(str(pth))


def test_builds_the_recorded_network(tmp_path):
    state = ARCHS.build(dict(ARCH)).state_dict()
    path = str(tmp_path / 'net.safetensors')
    save_weights_file(path, state, {'arch': ARCH})
    net = network_from_checkpoint(path)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in state.items())


@pytest.mark.parametrize('name', sorted(ARCH_CASES))
def test_every_arch_loads_itself_from_safetensors(name, tmp_path):
    """Every registered arch: a safetensors file with its recorded arch is all
    ``network_from_arguments`` (tools/infer.py, tools/export.py) needs."""
    from basicattn.converters.network_loading import network_from_arguments

    case = ARCH_CASES[name]
    arch = dict(type=name, **case['kwargs'])
    torch.manual_seed(0)
    net = ARCHS.build(dict(arch)).eval()
    path = str(tmp_path / f'{name}.safetensors')
    save_weights_file(path, net.state_dict(), {'arch': arch})
    lines = []
    loaded, cfg = network_from_arguments(checkpoint_path=path, report=lines.append)
    assert cfg == arch and len(lines) == 1 and name in lines[0]
    x = torch.rand(case['input'])
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))


def test_foreign_file_is_a_bare_state_dict(tmp_path):
    from safetensors.torch import save_file

    path = str(tmp_path / 'other.safetensors')
    save_file({'w': torch.ones(2)}, path, metadata={'format': 'pt'})
    loaded = safe_load(path)
    assert set(loaded) == {'w'} and torch.equal(loaded['w'], torch.ones(2))


def test_truncated_or_bad_files_are_one_error(tmp_path):
    data = encode_safetensors(_weights(), {'arch': ARCH})
    cut = tmp_path / 'cut.safetensors'
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match='cut.safetensors: not a complete safetensors'):
        safe_load(str(cut))
    text = tmp_path / 'notes.safetensors'
    text.write_text('not weights')
    with pytest.raises(CheckpointError, match='notes.safetensors'):
        safe_load(str(text))


def test_meta_must_be_plain_and_existing_files_are_kept(tmp_path):
    path = str(tmp_path / 'w.safetensors')
    with pytest.raises(CheckpointError, match='plain data'):
        save_weights_file(path, _weights(), {'arch': object()})
    assert not (tmp_path / 'w.safetensors').exists()
    save_weights_file(path, _weights(), {'arch': ARCH})
    with pytest.raises(FileExistsError):
        save_weights_file(path, _weights(), {'arch': ARCH})
    from safetensors import safe_open

    with safe_open(path, 'pt') as f:
        assert META_KEY in f.metadata()
