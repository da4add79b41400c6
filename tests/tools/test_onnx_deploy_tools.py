"""tools/export.py's --precision, --no-simplify and --mode, and tools/infer.py
--backend onnxruntime, which runs the exported file (issue 28)."""

import os

import numpy as np
import pytest
import torch
from conftest import tool_module

from basicattn.archs.build import build_network
from basicattn.checkpoint.state import save_weights_checkpoint
from basicattn.utils.img_util import imread, imwrite

EXTRA = "onnx / onnxruntime not installed: pip install -e '.[export]' (tools/setup_env.sh does)"
pytest.importorskip('onnx', reason=EXTRA)
pytest.importorskip('onnxruntime', reason=EXTRA)
pytest.importorskip('onnxslim', reason=EXTRA)

DASAA = dict(
    type='DASAA', num_feat=8, num_rdb=1, rdb_layers=2, growth=4, reduction=2, pab_hidden=4,
    attn_chunk=16,
)  # fmt: skip
EDSR = {'type': 'EDSR', 'num_feat': 8, 'num_block': 1, 'upscale': 2}


@pytest.fixture(scope='module')
def tools():
    return tool_module('export'), tool_module('infer')


def _checkpoint(folder, cfg):
    torch.manual_seed(0)
    net = build_network(dict(cfg))
    path = str(folder / f'{cfg["type"].lower()}.pth')
    save_weights_checkpoint(path, net.state_dict(), {'arch': dict(cfg)})
    return path


def _run(module, capsys, *argv):
    rc = module.main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _error(module, capsys, *argv):
    rc, _, err = _run(module, capsys, *argv)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith('error: '), err
    return lines[0]


def _frames(folder, count=4, size=(8, 12)):
    rng = np.random.default_rng(0)
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        imwrite(os.path.join(folder, f'f{i}.png'), (rng.random((*size, 3)) * 255).astype(np.uint8))


def _images(folder):
    return [imread(os.path.join(folder, f)).astype(np.int16) for f in sorted(os.listdir(folder))]


def test_dasaa_step_graph_runs_in_infer_like_pytorch(tools, tmp_path, capsys):
    """The default export of DASAA is its step graph; infer.py carries its state."""
    export, infer = tools
    ckpt = _checkpoint(tmp_path, DASAA)
    graph = tmp_path / 'dasaa.onnx'
    rc, out, err = _run(export, capsys, '--checkpoint', ckpt, '--input-size', 8, 12, graph)
    assert rc == 0, err
    assert 'on 1x5x3x8x12 + state: max abs difference' in out
    assert 'DASAA: ONNX opset 17, fixed size, fp32, step graph' in out
    assert 'simplified (onnxslim)' in out and out.strip().splitlines()[-1] == str(graph)
    _frames(str(tmp_path / 'in'))
    for backend, weights, folder in (('onnxruntime', graph, 'onnx'), ('pytorch', ckpt, 'pt')):
        rc, out, err = _run(infer, capsys, tmp_path / 'in', tmp_path / folder, '--checkpoint',
                            weights, '--backend', backend, '--quiet')  # fmt: skip
        assert rc == 0, err
        assert 'DASAA (video, sequence): wrote 4 frame(s)' in out
    # 8-bit PNGs of float32 outputs within 1e-4: at most one level apart at a rounding edge
    for got, want in zip(_images(tmp_path / 'onnx'), _images(tmp_path / 'pt')):
        assert got.shape == want.shape == (32, 48, 3) and np.abs(got - want).max() <= 1


def test_precision_simplify_and_mode_flags(tools, tmp_path, capsys):
    import onnx

    export, _ = tools
    ckpt = _checkpoint(tmp_path, DASAA)
    path = tmp_path / 'w16.onnx'
    argv = ('--checkpoint', ckpt, '--input-size', 8, 8, '--mode', 'window', '--precision', 'fp16',
            '--no-simplify', path)  # fmt: skip
    rc, out, err = _run(export, capsys, *argv)
    assert rc == 0, err
    assert 'onnxruntime vs PyTorch on 1x5x3x8x8: max abs difference' in out
    assert 'onnxruntime (fp16) vs PyTorch on 1x5x3x8x8: max abs difference' in out
    assert 'DASAA: ONNX opset 17, fixed size, fp16, not simplified' in out
    model = onnx.load(str(path))
    assert [i.name for i in model.graph.input] == ['lq']  # window: no state
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta['basicattn.graph'] == 'window' and meta['basicattn.precision'] == 'fp16'
    assert meta['basicattn.scale'] == '4' and meta['basicattn.num_frames'] == '5'
    edsr = _checkpoint(tmp_path, EDSR)
    line = _error(export, capsys, '--checkpoint', edsr, '--mode', 'sequence', tmp_path / 'e.onnx')
    assert line == (
        'error: --mode sequence: EDSR has no recurrent state; export it with --mode window '
        '(or auto)'
    )
    assert not (tmp_path / 'e.onnx').exists()


def test_infer_backend_mistakes_are_one_line(tools, tmp_path, capsys):
    export, infer = tools
    ckpt = _checkpoint(tmp_path, EDSR)
    graph = tmp_path / 'edsr.onnx'
    assert _run(export, capsys, '--checkpoint', ckpt, '--input-size', 8, 12, '--no-simplify',
                graph)[0] == 0  # fmt: skip
    _frames(str(tmp_path / 'in'), count=1)
    _frames(str(tmp_path / 'big'), count=1, size=(10, 12))
    base = (tmp_path / 'in', tmp_path / 'out', '--backend', 'onnxruntime')
    line = _error(infer, capsys, *base)
    assert 'give the exported graph as --checkpoint X.onnx' in line
    line = _error(infer, capsys, *base, '--checkpoint', graph, '--arch', 'EDSR')
    assert '--backend onnxruntime: --arch only apply to a PyTorch network' in line
    line = _error(infer, capsys, *base, '--checkpoint', ckpt)
    assert f'{ckpt}: onnxruntime cannot load it' in line
    line = _error(infer, capsys, tmp_path / 'big', tmp_path / 'out', '--backend', 'onnxruntime',
                  '--checkpoint', graph, '--quiet')  # fmt: skip
    assert 'was exported for LR frames of 8x12 (a fixed size); these are 10x12' in line
    assert not (tmp_path / 'out').exists()  # nothing written
    rc, out, err = _run(infer, capsys, *base, '--checkpoint', graph, '--quiet')
    assert rc == 0, err
    assert 'EDSR (image): wrote 1 frame(s)' in out
