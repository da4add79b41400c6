"""benchmarks/infer_speed.py stays runnable: --quick on one tiny arch, and a size for every arch."""

import importlib.util
import os.path as osp

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def infer_speed():
    path = osp.join(REPO_ROOT, 'benchmarks', 'infer_speed.py')
    spec = importlib.util.spec_from_file_location('infer_speed', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run_prints_the_ratio_table(infer_speed, tmp_path, capsys):
    table = tmp_path / 'table.md'
    code = infer_speed.main(
        ['--quick', '--archs', 'EDSR', '--bf16-weights', '--markdown', str(table)]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    text = table.read_text()
    assert '| arch | LR input | fp32 eager ms/frame | bf16 autocast / fp32 (PSNR) |' in text
    row = next(line for line in text.splitlines() if line.startswith('| EDSR | 8x8 |'))
    cells = [c.strip() for c in row.strip('|').split('|')]
    ratio, psnr = cells[3].split(' (')
    assert float(ratio) > 0 and float(psnr.rstrip(' dB)')) >= 40  # bf16 within 40 dB of fp32
    assert float(cells[4].split(' (')[0]) > 0  # bf16 weights
    onnx = cells[5]  # a ratio where onnxruntime is installed, else says it is not
    assert onnx == 'not installed' or float(onnx) > 0, onnx
    assert 'image archs (Bicubic aside): bf16 at most' in text


def test_every_registered_arch_has_a_full_size(infer_speed):
    from basicattn.registry import ARCHS

    ARCHS.import_from_location()
    assert sorted(ARCHS.module_dict) == sorted(infer_speed.FULL_ARCHS)


def test_unknown_arch_is_one_error_line(infer_speed, capsys):
    assert infer_speed.main(['--quick', '--archs', 'Nope']) == 2
    assert capsys.readouterr().out.startswith("error: --archs: unknown arch(s) ['Nope']")
