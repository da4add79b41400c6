"""--precision of tools/infer.py and tools/test.py (basicattn/models/inference_precision.py):
bf16 stays within 40 dB of float32, fp16 on the CPU and bf16 for an unsafe arch are one
``error:`` line, auto follows the CPU flag (monkeypatched) and the arch's measurement,
and tools/test.py stays float32 unless asked."""

import json
import os

import numpy as np
import pytest
import torch
from conftest import tool_module

from basicattn.archs.a2n_arch import A2N
from basicattn.metrics.psnr_ssim import calculate_psnr
from basicattn.models import inference_precision
from basicattn.registry import ARCHS
from basicattn.utils.img_util import imread, imwrite

A2N_TINY = dict(type='A2N', num_feat=8, unf=8, num_block=1, upscale=2)


@pytest.fixture
def infer(tmp_path, capsys):
    """Run tools/infer.py in this process on two 12x16 images with a tiny A2N.

    Returns ``run(out_name, *flags) -> (exit code, stdout, stderr, {name: image})``.
    """
    tool = tool_module('infer')
    rng = np.random.default_rng(0)
    os.makedirs(tmp_path / 'in')
    for i in range(2):
        imwrite(
            str(tmp_path / 'in' / f'f{i}.png'), (rng.random((12, 16, 3)) * 255).astype(np.uint8)
        )
    torch.manual_seed(0)
    weights = str(tmp_path / 'a2n.pth')
    net = ARCHS.build(dict(A2N_TINY))
    torch.save({'state_dict': net.state_dict(), 'meta': {'arch': dict(A2N_TINY)}}, weights)

    def run(name, *flags):
        out = str(tmp_path / name)
        code = tool.main([str(tmp_path / 'in'), out, '--checkpoint', weights, '--quiet', *flags])
        captured = capsys.readouterr()
        images = (
            {f: imread(os.path.join(out, f)) for f in sorted(os.listdir(out))} if code == 0 else {}
        )
        return code, captured.out, captured.err, images

    run.root = tmp_path
    return run


def _cpu_flag(monkeypatch, present):
    flags = ('avx512_bf16',) if present else ()
    monkeypatch.setattr(inference_precision, 'cpu_bf16_flags', lambda: flags)


def test_bf16_output_is_within_40db_of_fp32(infer):
    code, out32, _, fp32 = infer('fp32', '--precision', 'fp32')
    assert code == 0 and 'in fp32' in out32
    code, out16, _, bf16 = infer('bf16', '--precision', 'bf16')
    assert code == 0 and 'in bf16' in out16
    assert sorted(bf16) == sorted(fp32) == ['f0.png', 'f1.png']
    for name in fp32:
        assert calculate_psnr(bf16[name], fp32[name], crop_border=0) >= 40, name


def test_fp16_on_the_cpu_is_one_error_line(infer):
    code, _, err, _ = infer('fp16', '--precision', 'fp16')
    assert code == 2
    assert err.startswith('error: --precision fp16: float16 inference runs on CUDA only')
    assert err.count('\n') == 1 and 'Traceback' not in err
    assert not os.path.exists(infer.root / 'fp16')


@pytest.mark.parametrize('flag', [True, False])
def test_auto_follows_the_cpu_flag(infer, monkeypatch, flag):
    want = 'bf16' if flag else 'fp32'
    _, _, _, explicit = infer('explicit', '--precision', want)
    _cpu_flag(monkeypatch, flag)
    code, out, err, auto = infer('auto')  # the default
    assert code == 0 and err == ''
    summary = out.splitlines()[-2]
    if flag:
        assert 'in bf16 (auto: the CPU has avx512_bf16; A2N: 60 dB of float32 in bf16)' in summary
    else:
        assert 'in fp32 (auto: the CPU has neither avx512_bf16 nor amx_bf16' in summary
    assert all(np.array_equal(auto[n], explicit[n]) for n in explicit)  # the same code path


def test_an_unsafe_arch_refuses_bf16_and_auto_runs_fp32(infer, monkeypatch):
    monkeypatch.setattr(A2N, 'BF16_PSNR_DB', 30.0)
    code, _, err, _ = infer('bf16', '--precision', 'bf16')
    assert code == 2 and err.count('\n') == 1
    assert err.startswith('error: --precision bf16: A2N measured 30.0 dB PSNR in bfloat16')
    assert not os.path.exists(infer.root / 'bf16')
    _cpu_flag(monkeypatch, True)
    code, out, err, auto = infer('auto', '--precision', 'auto')
    assert code == 0 and err.count('\n') == 1
    assert err.startswith('warning: --precision auto: A2N runs in float32: it measured 30.0 dB')
    assert 'in fp32 (auto: A2N measured 30.0 dB' in out
    _, _, _, fp32 = infer('fp32', '--precision', 'fp32')
    assert all(np.array_equal(auto[n], fp32[n]) for n in fp32)


def _test_run(forked_tool, opt, *flags):
    """tools/test.py's metrics.json and its saved SR images."""
    result = forked_tool('tools/test.py', '-opt', opt, *flags)
    assert result.returncode == 0, result.stderr[-3000:]
    path = result.stdout.strip().splitlines()[-1]
    results = os.path.join(os.path.dirname(path), 'results', 'tinyval')
    images = {f: imread(os.path.join(results, f)) for f in sorted(os.listdir(results))}
    return json.load(open(path)), images


def test_test_tool_is_fp32_by_default_and_bf16_when_asked(tiny_experiment, forked_tool):
    plain, fp32 = _test_run(forked_tool, tiny_experiment('plain'))
    assert plain['test_cfg']['amp'] is None and plain['label'] == 'EDSR (plain)'
    bf16, half = _test_run(forked_tool, tiny_experiment('bf16'), '--precision', 'bf16')
    assert bf16['test_cfg']['amp'] == 'bf16' and bf16['label'] == 'EDSR (bf16, bf16)'
    assert sorted(half) == sorted(fp32) == ['im0.png', 'im1.png']  # the same seeded weights
    for name in fp32:
        assert calculate_psnr(half[name], fp32[name], crop_border=0) >= 40, name
    refused = forked_tool('tools/test.py', '-opt', tiny_experiment('fp16'), '--precision', 'fp16')
    assert refused.returncode == 2 and refused.stderr.count('\n') == 1
    assert refused.stderr.startswith('error: --precision fp16: float16 inference runs on CUDA')
