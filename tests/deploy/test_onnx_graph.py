"""Graph passes of the ONNX export: onnxslim simplification and float16 (issue 28).

The simplified graph is checked against PyTorch within the float32 tolerance
and must be smaller than the traced one; the float16 file keeps float32
inputs and outputs, holds float16 weights, and is checked within
``FP16_TOLERANCE`` (half an 8-bit level: see its comment).
"""

import pytest
import torch
from onnx_cases import EXTRA, tiny

from basicattn.deploy.onnx_export import (
    FP16_TOLERANCE,
    METADATA_KEYS,
    TOLERANCE,
    _trace,
    check_onnx,
    example_input,
    export_onnx,
)
from basicattn.errors import UserError

onnx = pytest.importorskip('onnx', reason=EXTRA)
pytest.importorskip('onnxruntime', reason=EXTRA)
pytest.importorskip('onnxslim', reason=EXTRA)


def _nodes(graph):
    """Nodes of ``graph`` and of every subgraph (Loop bodies)."""
    count = 0
    for node in graph.node:
        count += 1
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                count += _nodes(attr.g)
    return count


@pytest.mark.parametrize('name', ['EDSR', 'DASAA', 'MANA'])
def test_simplified_graph_is_smaller_and_still_matches(name):
    from basicattn.deploy.onnx_graph import simplify_graph

    net, size = tiny(name)
    x = example_input(net, size)
    raw = _trace(net, x, 17, True, name)
    slim = simplify_graph(raw, name)
    assert _nodes(onnx.load_from_string(slim).graph) < _nodes(onnx.load_from_string(raw).graph)
    h, w = size
    inputs = [x, example_input(net, (h + 4, w + 8), batch=2, seed=1)]  # DASAA, MANA: Loops
    assert max(check_onnx(slim, net, inputs, name)) < TOLERANCE


@pytest.mark.parametrize(
    'name, simplify',
    [('EDSR', True), ('A2N', True), ('DASAA', True), ('MANA', True), ('DKSAN', False)],
)
def test_fp16_export_is_float16_inside_and_float32_outside(name, simplify, tmp_path):
    net, size = tiny(name)
    path = str(tmp_path / f'{name}.onnx')
    result = export_onnx(net, path, size=size, precision='fp16', simplify=simplify)
    assert result.precision == 'fp16' and len(result.fp16_max_abs_diffs) == 2
    assert max(result.max_abs_diffs) < TOLERANCE  # the float32 graph was checked first
    # really float16: rounding shows, but within half an 8-bit level
    assert 1e-6 < max(result.fp16_max_abs_diffs) < FP16_TOLERANCE
    model = onnx.load(path)
    floats = [i for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT]
    halves = [i for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT16]
    assert halves and sum(i.ByteSize() for i in halves) > sum(i.ByteSize() for i in floats)
    for value in list(model.graph.input) + list(model.graph.output):
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta[METADATA_KEYS['precision']] == 'fp16' and meta[METADATA_KEYS['arch']] == name


def test_fp16_check_uses_its_own_tolerance():
    from basicattn.deploy.onnx_graph import to_float16

    net, size = tiny('EDSR')
    x = example_input(net, size)
    half = to_float16(_trace(net, x, 17, False, 'EDSR'), 'EDSR')
    with pytest.raises(UserError, match=r'onnxruntime \(fp16 graph\) and PyTorch differ by'):
        check_onnx(half, net, [x], 'EDSR', tolerance=1e-7, label='fp16 graph')
    assert check_onnx(half, net, [x], 'EDSR', tolerance=FP16_TOLERANCE)[0] < FP16_TOLERANCE


def test_subgraph_initializers_get_unique_names():
    """onnxslim copies constants into Loop bodies under their outer names; fp16 needs unique."""
    from basicattn.deploy.onnx_graph import simplify_graph, unique_initializer_names

    net, size = tiny('MANA')
    model = onnx.load_from_string(
        simplify_graph(_trace(net, example_input(net, size), 17, True, 'MANA'), 'MANA')
    )

    def names(graph, found):
        found += [i.name for i in graph.initializer]
        for node in graph.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    names(attr.g, found)
        return found

    unique_initializer_names(model)
    found = names(model.graph, [])
    assert len(found) == len(set(found))
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=['CPUExecutionProvider'])
    x = example_input(net, size)
    with torch.no_grad():
        want = net(x)
    got = torch.from_numpy(session.run(None, {'lq': x.numpy()})[0])
    assert (got - want).abs().max().item() < TOLERANCE


def test_missing_onnxslim_names_the_flag(monkeypatch, tmp_path):
    net, size = tiny('Bicubic')
    monkeypatch.setitem(__import__('sys').modules, 'onnxslim', None)
    with pytest.raises(
        UserError, match=r"pip install -e '\.\[export\]', or export with --no-simpl"
    ):
        export_onnx(net, str(tmp_path / 'b.onnx'), size=size)
    export_onnx(net, str(tmp_path / 'b.onnx'), size=size, simplify=False)  # works without


def test_unknown_precision_is_refused(tmp_path):
    net, size = tiny('Bicubic')
    with pytest.raises(UserError, match=r"--precision bf16: choose one of \('fp32', 'fp16'\)"):
        export_onnx(net, str(tmp_path / 'b.onnx'), size=size, precision='bf16')
