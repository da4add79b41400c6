"""convert_model records the scale and refuses one the file contradicts (issue 12, 3).

x2 and x3 A2N weights have the same shapes: a wrong ``--scale`` used to convert
cleanly ("strict=True: ok") and score 1 dB lower.
"""

import importlib.util
import os.path as osp

import pytest
import torch
from test_a2n_converter import official_state_dict

from basicattn.checkpoint.state import read_weights_checkpoint
from basicattn.converters.base import (
    ConversionError,
    check_scale,
    scale_from_name,
    scale_hints,
)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def convert_tool():
    spec = importlib.util.spec_from_file_location(
        'convert_model_tool_scale', osp.join(ROOT, 'tools', 'convert_model.py')
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool.main


@pytest.mark.parametrize(
    'name, scale',
    [
        ('aan_x2.pt', 2),
        ('aan_x3.pt', 3),
        ('EDSR_X4.pth', 4),
        ('model-x3-final.pth', 3),
        ('x2.pth', 2),
        ('weights.pth', None),
        ('x264.pth', None),
        ('SRx4.pth', None),
        ('/some/dir_x3/net.pth', None),
    ],
)
def test_scale_from_name(name, scale):
    assert scale_from_name(name) == scale


def test_name_with_two_scales_is_refused():
    with pytest.raises(ConversionError, match='several scales'):
        scale_from_name('a2n_x2_to_x3.pth')


def test_check_scale_sources():
    hints = [(2, 'file name aan_x2.pt')]
    assert check_scale(None, hints, 'aan_x2.pt') == (2, 'file name aan_x2.pt')
    assert check_scale(2, hints, 'aan_x2.pt') == (
        2,
        '--scale (agrees with the file name aan_x2.pt)',
    )
    assert check_scale(3, [], 'w.pt') == (3, '--scale')
    assert check_scale(None, [], 'w.pt') == (None, 'not known')
    with pytest.raises(ConversionError, match=r'--scale 3 contradicts the file name aan_x2.pt'):
        check_scale(3, hints, 'aan_x2.pt')


def test_metadata_and_name_must_agree(tmp_path):
    raw = {'state_dict': official_state_dict(scale=2), 'meta': {'scale': 3}}
    assert scale_hints(str(tmp_path / 'w.pth'), raw) == [(3, "metadata meta['scale']")]
    with pytest.raises(ConversionError, match='disagree'):
        scale_hints(str(tmp_path / 'aan_x2.pth'), raw)


def test_x2_file_as_x3_is_refused(tmp_path, convert_tool, capsys):
    src = tmp_path / 'aan_x2.pt'
    torch.save(official_state_dict(scale=2), src)
    out = tmp_path / 'a2n_x3.pth'
    code = convert_tool(['--source', 'a2n_official', '--scale', '3', str(src), str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith('error: ') and len(err.strip().splitlines()) == 1, err
    assert '--scale 3' in err and 'aan_x2.pt' in err and 'x2' in err
    assert not out.exists()


def test_scale_is_recorded_with_its_source(tmp_path, convert_tool, capsys):
    src = tmp_path / 'aan_x3.pt'
    torch.save(official_state_dict(scale=3), src)
    out = tmp_path / 'from_name.pth'
    assert convert_tool(['--source', 'a2n_official', str(src), str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'x3 (from file name aan_x3.pt)' in printed
    _, meta = read_weights_checkpoint(str(out))
    assert meta['scale'] == 3 and meta['arch']['upscale'] == 3
    assert meta['scale_source'] == 'file name aan_x3.pt'

    plain = tmp_path / 'weights.pt'
    torch.save(official_state_dict(scale=2), plain)
    out = tmp_path / 'from_flag.pth'
    assert convert_tool(['--source', 'a2n_official', '--scale', '2', str(plain), str(out)]) == 0
    assert 'x2 (from --scale)' in capsys.readouterr().out
    _, meta = read_weights_checkpoint(str(out))
    assert (meta['scale'], meta['scale_source'], meta['arch']['upscale']) == (2, '--scale', 2)


def test_metadata_contradicting_scale_is_refused(tmp_path, convert_tool, capsys):
    src = tmp_path / 'weights.pth'
    torch.save({'state_dict': official_state_dict(scale=2), 'meta': {'scale': 2}}, src)
    code = convert_tool(
        ['--source', 'a2n_official', '--scale', '3', str(src), str(tmp_path / 'out.pth')]
    )
    assert code == 2
    assert "metadata meta['scale'] (x2)" in capsys.readouterr().err


def test_truncated_input_is_one_line(tmp_path, convert_tool, capsys):
    src = tmp_path / 'aan_x2.pt'
    torch.save(official_state_dict(scale=2), src)
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 3])
    code = convert_tool(
        ['--source', 'a2n_official', '--scale', '2', str(src), str(tmp_path / 'out.pth')]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert str(src) in err and 'truncated' in err


@pytest.mark.slow
def test_official_x2_file_as_x3_is_refused(testdata, tmp_path, convert_tool, capsys):
    src = testdata('weights', 'a2n_official', 'aan_x2.pt')
    code = convert_tool(
        ['--source', 'a2n_official', '--scale', '3', src, str(tmp_path / 'out.pth')]
    )
    assert code == 2 and 'contradicts the file name aan_x2.pt' in capsys.readouterr().err


def test_weights_with_nan_are_refused_before_anything_is_written(tmp_path, convert_tool, capsys):
    state = official_state_dict(scale=2)
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first] = torch.full_like(state[first], float('nan'))
    src = tmp_path / 'aan_x2.pt'
    torch.save(state, src)
    out = tmp_path / 'a2n_x2.pth'
    assert convert_tool(['--source', 'a2n_official', str(src), str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'aan_x2.pt' in err and 'not finite' in err, err
    assert not out.exists()
