"""benchmarks/gpu_check.py stays runnable: its quick mode on the CPU (issue 15, point 7).

The real check needs a CUDA device (never in CI); here every check runs at
tiny sizes on the CPU, so that a change in an arch, the DCN op or the
network builder that would break the script is caught before a GPU is lent.
"""

import importlib.util
import os.path as osp

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def gpu_check():
    path = osp.join(REPO_ROOT, 'benchmarks', 'gpu_check.py')
    spec = importlib.util.spec_from_file_location('gpu_check', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_cpu_run_prints_every_check(gpu_check, tmp_path, capsys):
    table = tmp_path / 'table.md'
    code = gpu_check.main(['--device', 'cpu', '--quick', '--markdown', str(table)])
    out = capsys.readouterr().out
    assert code == 0, out
    text = table.read_text()
    for check in gpu_check.CHECKS:
        assert f'| {check} |' in text, check
    from basicattn.registry import ARCHS

    ARCHS.import_from_location()
    for name in ARCHS.module_dict:  # every registered arch in float32 and bf16
        assert f'| {name} float32 fwd+bwd |' in text and f'| {name} bf16 fwd+bwd |' in text
    assert 'FAIL' not in text


def test_every_registered_arch_has_a_full_size_case(gpu_check):
    from basicattn.registry import ARCHS

    ARCHS.import_from_location()
    assert sorted(ARCHS.module_dict) == sorted(gpu_check.FULL_ARCHS)


def test_cuda_without_a_device_is_one_error_line(gpu_check, capsys, monkeypatch):
    monkeypatch.setattr(gpu_check.torch.cuda, 'is_available', lambda: False)
    assert gpu_check.main(['--device', 'cuda']) == 2
    assert capsys.readouterr().out.startswith('error: --device cuda: no CUDA device')


def test_unknown_check_is_refused(gpu_check):
    with pytest.raises(SystemExit):
        gpu_check.parse_args(['--only', 'arch,nope'])


def test_relative_difference_and_psnr(gpu_check):
    import math

    import torch

    a = [torch.ones(4)]
    assert gpu_check.relative_difference(a, a) == 0
    assert gpu_check.relative_difference([torch.full((4,), 1.1)], a) == pytest.approx(0.1)
    assert gpu_check.psnr(torch.zeros(4), torch.zeros(4)) == math.inf
    assert gpu_check.psnr(torch.full((4,), 0.1), torch.zeros(4)) == pytest.approx(20.0)
