"""``--device`` checked before a tool reads or writes anything (issue 22)."""

import pytest
import torch

from basicattn.errors import UserError
from basicattn.utils.devices import resolve_device


def test_cpu_is_a_device():
    assert resolve_device('cpu') == torch.device('cpu')


@pytest.mark.parametrize('text', ['banana', 'cuda:x', '', 'gpu'])
def test_not_a_device_is_one_line(text):
    with pytest.raises(UserError) as info:
        resolve_device(text)
    assert str(info.value) == (
        f'--device {text}: not a device; use cpu, cuda or cuda:N (an NVIDIA GPU) or mps'
    )


def test_a_type_the_tools_do_not_run_on():
    with pytest.raises(UserError, match=r'^--device meta: the tools run on cpu, cuda, mps only$'):
        resolve_device('meta')


def test_cuda_on_a_torch_built_without_it(monkeypatch):
    monkeypatch.setattr(torch.version, 'cuda', None)
    monkeypatch.setattr(torch.version, 'hip', None)
    with pytest.raises(UserError, match=r'^--device cuda: this torch .* is built without CUDA'):
        resolve_device('cuda')


def test_cuda_without_a_visible_gpu_and_a_missing_index(monkeypatch):
    monkeypatch.setattr(torch.version, 'cuda', '12.8')
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 0)
    with pytest.raises(UserError, match='no CUDA GPU is visible'):
        resolve_device('cuda')
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    assert resolve_device('cuda:1') == torch.device('cuda:1')
    with pytest.raises(UserError, match=r'--device cuda:2: only 2 CUDA GPU\(s\) are visible'):
        resolve_device('cuda:2')
