"""ONNX export of every registered arch, checked with onnxruntime (issue 15, point 6).

The archs are those of ``tests/archs/arch_cases.py`` (``test_all_archs.py``
fails for a registered arch without a case). The per-arch exports here skip
onnxslim (``simplify=False``) to stay fast; the simplified and fp16 graphs
are checked in ``test_onnx_graph.py``.

Each arch is exported at its tiny case's LR size and run by onnxruntime on
two inputs; the archs whose class says ``ONNX_DYNAMIC_HW = True`` are
exported with dynamic batch, height and width and checked at a second size,
the others must say that they do not export with ``--dynamic``.
"""

import os
import sys

import pytest
import torch

from basicattn.archs.build import build_network
from basicattn.deploy.onnx_export import TOLERANCE, check_onnx, export_onnx
from basicattn.deploy.onnx_step import example_input
from basicattn.errors import UserError

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'archs'))
from arch_cases import ARCH_CASES  # noqa: E402

EXTRA = "onnx / onnxruntime not installed: pip install -e '.[export]' (tools/setup_env.sh does)"

pytest.importorskip('onnx', reason=EXTRA)
pytest.importorskip('onnxruntime', reason=EXTRA)


def _tiny(name):
    torch.manual_seed(0)
    case = ARCH_CASES[name]
    return build_network(dict(type=name, **case['kwargs'])).eval(), case['input'][-2:]


@pytest.mark.parametrize('name', sorted(ARCH_CASES))
def test_fixed_size_export_matches_pytorch(name, tmp_path):
    net, size = _tiny(name)
    path = str(tmp_path / f'{name}.onnx')
    result = export_onnx(net, path, size=size, opset=17, simplify=False)
    assert os.path.getsize(path) == result.size_bytes > 0
    assert len(result.max_abs_diffs) == 2 and max(result.max_abs_diffs) < TOLERANCE
    assert result.shapes[0] == result.shapes[1] == tuple(ARCH_CASES[name]['input'])
    import onnx

    model = onnx.load(path)
    onnx.checker.check_model(model)
    assert model.opset_import[0].version == 17


def test_every_registered_arch_says_whether_it_exports_dynamic_sizes():
    """``ONNX_DYNAMIC_HW`` is a fact on each arch class, read by tools/export.py."""
    from basicattn.registry import ARCHS

    ARCHS.import_from_location()  # every arch module
    shipped = {n: c for n, c in ARCHS.module_dict.items() if c.__module__.startswith('basicattn.')}
    assert set(shipped) == set(ARCH_CASES)
    for name, cls in shipped.items():
        assert isinstance(cls.__dict__.get('ONNX_DYNAMIC_HW'), bool), name


@pytest.mark.parametrize('name', sorted(ARCH_CASES))
def test_dynamic_export_or_a_clear_refusal(name, tmp_path):
    net, size = _tiny(name)
    path = str(tmp_path / f'{name}.onnx')
    if type(net).ONNX_DYNAMIC_HW:
        result = export_onnx(net, path, size=size, dynamic=True, simplify=False)
        h, w = size
        assert result.shapes[1][0] == 2 and result.shapes[1][-2:] == (h + 8, w + 16)
        assert max(result.max_abs_diffs) < TOLERANCE
    else:
        with pytest.raises(UserError, match=f'{name} does not export with --dynamic'):
            export_onnx(net, path, size=size, dynamic=True, simplify=False)
        assert not os.path.exists(path)  # nothing written when the check fails


def test_check_catches_a_different_network():
    from basicattn.deploy.onnx_export import _trace

    net, size = _tiny('EDSR')
    model = _trace(net, example_input(net, size), 17, False, 'EDSR')
    other = build_network(dict(type='EDSR', **ARCH_CASES['EDSR']['kwargs'])).eval()
    with pytest.raises(UserError, match='onnxruntime and PyTorch differ by'):
        check_onnx(model, other, [example_input(other, size)], 'EDSR')


def test_existing_file_is_kept_without_overwrite(tmp_path):
    net, size = _tiny('Bicubic')
    path = tmp_path / 'b.onnx'
    path.write_bytes(b'keep')
    with pytest.raises(UserError, match='exists; pass --overwrite'):
        export_onnx(net, str(path), size=size)
    assert path.read_bytes() == b'keep'
    export_onnx(net, str(path), size=size, overwrite=True)
    assert path.read_bytes() != b'keep'
    assert [p.name for p in tmp_path.iterdir()] == ['b.onnx']  # no temporary file left


def test_unsupported_opsets_are_refused(tmp_path):
    net, size = _tiny('DKSAN')
    with pytest.raises(UserError, match='at least 16 is needed'):
        export_onnx(net, str(tmp_path / 'd.onnx'), size=size, opset=15)
    with pytest.raises(UserError, match='--opset 99: this torch exports opsets 16 to'):
        export_onnx(net, str(tmp_path / 'd.onnx'), size=size, opset=99)


def test_video_input_layout():
    net, _ = _tiny('MANA')
    assert example_input(net, (5, 7), batch=2).shape == (2, net.num_frames, 3, 5, 7)
    edsr, _ = _tiny('EDSR')
    x = example_input(edsr, (5, 7))
    assert x.shape == (1, 3, 5, 7) and 0 <= x.min() and x.max() <= 1


def test_an_existing_folder_is_not_offered_overwrite(tmp_path):
    """Issue 22: OUT an existing folder suggested --overwrite, which then refused."""
    from basicattn.deploy.onnx_export import output_problem

    folder = tmp_path / 'exports'
    folder.mkdir()
    expected = f'{folder} is a folder; OUT is the .onnx file to write, e.g. {folder}/model.onnx'
    assert output_problem(str(folder), overwrite=False) == expected
    assert output_problem(str(folder), overwrite=True) == expected
    (tmp_path / 'a.onnx').write_bytes(b'old')
    assert output_problem(str(tmp_path / 'a.onnx'), False).endswith(
        'pass --overwrite to replace it'
    )
    assert output_problem(str(tmp_path / 'a.onnx'), True) == ''
    assert output_problem(str(tmp_path / 'new.onnx'), False) == ''
    net, size = _tiny('Bicubic')
    with pytest.raises(UserError, match='is a folder'):
        export_onnx(net, str(folder), size=size, overwrite=True)
