"""tools/infer.py runs the arch's preferred memory format without flags
(``--channels-last`` / ``--no-channels-last`` force one) and ``--compile``
without a C++ compiler ends in one ``error:`` line."""

import os

import numpy as np
import pytest
import torch
from conftest import tool_module

from basicattn.registry import ARCHS
from basicattn.utils.img_util import imwrite

A2N_TINY = dict(type='A2N', num_feat=8, unf=8, num_block=1, upscale=2)


@pytest.fixture
def infer_run(tmp_path, monkeypatch):
    """Run tools/infer.py in this process; return (exit code, channels_last of each call)."""
    infer = tool_module('infer')
    rng = np.random.default_rng(0)
    os.makedirs(tmp_path / 'in')
    for i in range(2):
        imwrite(str(tmp_path / 'in' / f'f{i}.png'), (rng.random((6, 8, 3)) * 255).astype(np.uint8))
    torch.manual_seed(0)
    weights = str(tmp_path / 'a2n.pth')
    net = ARCHS.build(dict(A2N_TINY))
    torch.save({'state_dict': net.state_dict(), 'meta': {'arch': dict(A2N_TINY)}}, weights)
    seen = []
    load = infer.load_network

    def load_and_watch(args):
        net, cfg = load(args)
        net.register_forward_pre_hook(
            lambda module, inputs: seen.append(
                inputs[0].is_contiguous(memory_format=torch.channels_last)
                and module.conv_first.weight.is_contiguous(memory_format=torch.channels_last)
            )
        )
        return net, cfg

    monkeypatch.setattr(infer, 'load_network', load_and_watch)

    def run(*flags):
        seen.clear()
        out = str(tmp_path / f'out{len(os.listdir(tmp_path))}')
        code = infer.main([str(tmp_path / 'in'), out, '--checkpoint', weights, '--quiet', *flags])
        assert code != 0 or len(os.listdir(out)) == 2
        return code, list(seen)

    return run


def test_infer_runs_the_preferred_memory_format(infer_run):
    assert infer_run() == (0, [True, True])  # A2N: measured faster channels_last
    assert infer_run('--no-channels-last') == (0, [False, False])
    assert infer_run('--channels-last') == (0, [True, True])


def test_infer_compile_without_a_compiler_is_one_line(infer_run, monkeypatch, capsys):
    from torch._inductor import cpp_builder, exc

    def missing():
        raise exc.InvalidCxxCompiler()

    monkeypatch.setattr(cpp_builder, 'get_cpp_compiler', missing)
    assert infer_run('--compile') == (2, [])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: --compile: ')
    assert 'no working C++ compiler' in err[0] and 'turn --compile off' in err[0]
