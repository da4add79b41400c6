"""tools/export.py: a checkpoint that records its arch becomes a checked ONNX file;
user mistakes are one ``error:`` line (issue 15, point 6)."""

import os

import numpy as np
import pytest
import torch
from conftest import tool_module

from basicattn.archs.build import build_network
from basicattn.checkpoint.state import save_weights_checkpoint

EXTRA = "onnx / onnxruntime not installed: pip install -e '.[export]' (tools/setup_env.sh does)"
pytest.importorskip('onnx', reason=EXTRA)
pytest.importorskip('onnxruntime', reason=EXTRA)
EDSR = {'type': 'EDSR', 'num_feat': 8, 'num_block': 1, 'upscale': 2}


@pytest.fixture(scope='module')
def export():
    return tool_module('export')


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    net = build_network(dict(EDSR))
    path = str(tmp_path / 'edsr.pth')
    save_weights_checkpoint(path, net.state_dict(), {'arch': dict(EDSR)})
    return path, net.eval()


def _run(export, capsys, *argv):
    rc = export.main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_checkpoint_to_dynamic_onnx(export, checkpoint, tmp_path, capsys):
    import onnxruntime as ort

    ckpt, net = checkpoint
    out_path = tmp_path / 'edsr.onnx'
    args = ('--checkpoint', ckpt, '--input-size', 8, 12, '--dynamic', out_path)
    rc, out, err = _run(export, capsys, *args)
    assert rc == 0, err
    lines = out.strip().splitlines()
    assert lines[-1] == str(out_path)
    assert 'EDSR: ONNX opset 17, dynamic batch, height, width' in out
    assert 'on 1x3x8x12: max abs difference' in out and 'on 2x3x16x28' in out
    # the file holds the checkpoint's weights and runs at yet another size
    x = torch.rand(1, 3, 5, 9)
    session = ort.InferenceSession(str(out_path), providers=['CPUExecutionProvider'])
    got = session.run(None, {'lq': x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, net(x).numpy(), atol=1e-4)

    before = out_path.read_bytes()
    rc, out, err = _run(export, capsys, *args)
    assert rc == 2 and err.strip() == f'error: {out_path} exists; pass --overwrite to replace it'
    assert out_path.read_bytes() == before
    rc, _, err = _run(export, capsys, *args, '--overwrite', '--opset', 18)
    assert rc == 0, err


def _error(export, capsys, *argv):
    rc, _, err = _run(export, capsys, *argv)
    assert rc == 2 and 'Traceback' not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ')
    return lines[0]


def test_user_mistakes_are_one_line(export, checkpoint, tmp_path, capsys):
    ckpt, _ = checkpoint
    out_path = tmp_path / 'x.onnx'
    missing = tmp_path / 'missing.pth'
    assert 'does not exist' in _error(export, capsys, '--checkpoint', missing, out_path)
    line = _error(export, capsys, '--checkpoint', ckpt, '--format', 'tflite', out_path)
    assert "--format tflite: unknown export format; choose one of ('onnx',)" in line
    line = _error(export, capsys, '--arch', 'EDSR', out_path)
    assert 'EDSR has parameters: pass --checkpoint' in line
    line = _error(export, capsys, '--checkpoint', ckpt, '--opset', 13, out_path)
    assert '--opset 13: at least 16 is needed' in line
    line = _error(export, capsys, '--checkpoint', ckpt, '--input-size', 0, 8, out_path)
    assert '--input-size [0, 8]: give two positive numbers H W' in line
    # --dynamic follows the arch class's ONNX_DYNAMIC_HW (True for every registered arch)
    from basicattn.archs.edsr_arch import EDSR as EDSRClass

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(EDSRClass, 'ONNX_DYNAMIC_HW', False)
        patch.setattr(EDSRClass, 'ONNX_DYNAMIC_HW_REASON', 'its class says so', raising=False)
        args = ('--checkpoint', ckpt, '--input-size', 8, 8, '--dynamic', out_path)
        line = _error(export, capsys, *args)
    assert line == (
        'error: EDSR does not export with --dynamic (its class says so); export a fixed size '
        'without --dynamic'
    )
    assert not os.path.exists(out_path)


def test_missing_onnx_names_the_extra(export, checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__('sys').modules, 'onnxruntime', None)
    line = _error(export, capsys, '--checkpoint', checkpoint[0], tmp_path / 'x.onnx')
    assert "onnxruntime is not installed): pip install -e '.[export]'" in line
