"""ONNX files run frame after frame (basicattn/deploy/onnx_stream.py, issue 28).

DASAA's step graph carries the ConvLSTM state in onnxruntime and must equal
PyTorch's sequence mode (``DASAA.forward_sequence``). Tolerance 1e-4, the
export check's: both sides compute in float32 with other kernels and
summation orders, which move results by about 1e-7 per operation (measured
below 1e-6 here), while a dropped or stale state moves them by far more
(checked: the stateless outputs differ from the sequence by more than 1e-3).
"""

import pytest
import torch
from onnx_cases import EXTRA, random_clip, tiny

from basicattn.data.frame_io import sliding_windows
from basicattn.deploy.onnx_export import TOLERANCE, export_onnx
from basicattn.errors import UserError

pytest.importorskip('onnx', reason=EXTRA)
pytest.importorskip('onnxruntime', reason=EXTRA)


def _windows(frames, num_frames):
    """``(1, L, T, 3, h, w)``: the reflection-padded windows of ``frames``, as infer.py makes."""
    return torch.stack([torch.stack(w) for _, w in sliding_windows(iter(frames), num_frames)])[None]


@pytest.fixture(scope='module')
def dasaa_step(tmp_path_factory):
    net, size = tiny('DASAA')
    path = str(tmp_path_factory.mktemp('onnx') / 'dasaa_step.onnx')
    result = export_onnx(net, path, size=size, dynamic=True, recurrent=True, simplify=False)
    assert result.graph == 'step' and result.scale == 4
    return net, path


def test_streamed_dasaa_equals_pytorch_sequence_mode(dasaa_step):
    from basicattn.deploy.onnx_stream import OnnxRecurrentNetwork, OnnxStream

    net, path = dasaa_step
    clip = random_clip(6, (6, 10))  # another size than the export's 8x8: a dynamic graph
    with torch.no_grad():
        want = net.forward_sequence(_windows(clip, net.num_frames))[0]
        stateless = torch.stack([net(w[None])[0] for w in _windows(clip, net.num_frames)[0]])
    stream = OnnxStream(path)
    assert isinstance(stream.net, OnnxRecurrentNetwork) and stream.net.num_frames == 5
    got = torch.stack(list(stream.run(clip)))
    assert got.shape == want.shape == (6, 3, 24, 40)
    assert (got - want).abs().max().item() < TOLERANCE
    assert (stateless[1:] - want[1:]).abs().max().item() > 1e-3  # the state matters
    # run() starts a new clip: the same frames give the same outputs again
    again = torch.stack(list(stream.run(clip)))
    assert (again - got).abs().max().item() == 0


def test_recurrent_module_interface_matches_dasaa(dasaa_step):
    from basicattn.deploy.onnx_stream import load_onnx_network

    net, path = dasaa_step
    onnx_net, cfg = load_onnx_network(path)
    assert cfg == {'type': 'DASAA'}
    windows = _windows(random_clip(3, (8, 8), seed=1), net.num_frames)[0]
    state = onnx_state = None
    with torch.no_grad():
        for window in windows:
            want, state = net(window[None], state, return_state=True)
            got, onnx_state = onnx_net(window[None], onnx_state, return_state=True)
            assert (got - want).abs().max().item() < TOLERANCE
            for a, b in zip(onnx_state, state):
                assert a.shape == b.shape and (a - b).abs().max().item() < TOLERANCE
        # forward(x) alone is one step from the zero state, as DASAA's
        assert (onnx_net(windows[:1]) - net(windows[:1])).abs().max().item() < TOLERANCE


@pytest.mark.parametrize('name', ['EDVR', 'EDSR'])
def test_stateless_graphs_stream_like_pytorch(name, tmp_path):
    from basicattn.deploy.onnx_stream import OnnxNetwork, OnnxStream

    net, size = tiny(name)
    path = str(tmp_path / f'{name}.onnx')
    result = export_onnx(net, path, size=size, dynamic=True, simplify=False)
    video = hasattr(net, 'num_frames') or hasattr(net, 'num_frame')
    assert result.graph == ('window' if video else 'image')
    clip = random_clip(4, (8, 12))  # EDVR: sizes divisible by 4 (its pyramid)
    stream = OnnxStream(path)
    assert type(stream.net) is OnnxNetwork
    got = torch.stack(list(stream.run(clip)))
    with torch.no_grad():
        if video:
            frames = stream.net.num_frames
            want = torch.stack([net(w[None])[0] for w in _windows(clip, frames)[0]])
        else:
            want = torch.stack([net(f[None])[0] for f in clip])
    assert got.shape == want.shape and (got - want).abs().max().item() < TOLERANCE


def test_dasaa_window_graph_has_no_state(tmp_path):
    from basicattn.deploy.onnx_stream import load_onnx_network

    net, size = tiny('DASAA')
    path = str(tmp_path / 'dasaa_window.onnx')
    assert export_onnx(net, path, size=size, simplify=False).graph == 'window'
    onnx_net, _ = load_onnx_network(path)
    assert not hasattr(onnx_net, 'zero_state') and onnx_net.num_frames == 5


def test_a_fixed_size_graph_names_its_size(tmp_path):
    from basicattn.deploy.onnx_stream import OnnxStream

    net, size = tiny('EDSR')
    path = str(tmp_path / 'edsr.onnx')
    export_onnx(net, path, size=size, simplify=False)
    stream = OnnxStream(path)
    assert stream(torch.rand(1, 3, 8, 8)).shape == (1, 3, 16, 16)
    expected = (
        f'{path} was exported for LR frames of 8x8 (a fixed size); these are 6x10: export '
        'with --dynamic, or with --input-size 6 10'
    )
    with pytest.raises(UserError) as info:
        stream(torch.rand(1, 3, 6, 10))
    assert str(info.value) == expected


def test_files_that_are_not_graphs_are_one_line_errors(tmp_path):
    from basicattn.deploy.onnx_stream import load_onnx_network

    with pytest.raises(UserError, match='does not exist; give the .onnx file to run'):
        load_onnx_network(str(tmp_path / 'missing.onnx'))
    bad = tmp_path / 'weights.pth'
    bad.write_bytes(b'not an onnx file')
    with pytest.raises(UserError, match=r'weights.pth: onnxruntime cannot load it \('):
        load_onnx_network(str(bad))


def test_cuda_without_its_provider_is_refused():
    import onnxruntime

    from basicattn.deploy.onnx_stream import providers

    assert providers('cpu') == ['CPUExecutionProvider']
    if 'CUDAExecutionProvider' in onnxruntime.get_available_providers():
        pytest.skip('this onnxruntime has CUDA')
    with pytest.raises(UserError, match='--device cuda:0: .*install onnxruntime-gpu for CUDA'):
        providers('cuda:0')
