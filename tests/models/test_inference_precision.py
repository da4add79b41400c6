"""--precision's choice (basicattn/models/inference_precision.py): the CPU check, the
per-arch safety check, auto's fallbacks, and tools/test.py's val.amp."""

import pytest
import torch
from torch import nn

from basicattn.archs.edsr_arch import EDSR
from basicattn.archs.facts import arch_class
from basicattn.errors import OptionError
from basicattn.models import inference_precision as ip

CPUINFO = 'processor\t: 0\nflags\t\t: fpu sse avx2 avx512f {extra}\n\nprocessor\t: 1\n'


class UnsafeNet(nn.Module):
    """A network that (says it) loses too much in bf16; never registered."""

    BF16_PSNR_DB = 31.5

    def forward(self, x):
        return x


class UnmeasuredNet(nn.Module):
    """A network of one's own, never measured."""

    def forward(self, x):
        return x


@pytest.fixture
def native(monkeypatch):
    """Pretend the CPU has (True) or lacks (False) native bf16."""

    def set_flags(present):
        flags = ('avx512_bf16',) if present else ()
        monkeypatch.setattr(ip, 'cpu_bf16_flags', lambda: flags)

    return set_flags


@pytest.mark.parametrize(
    'extra, flags',
    [
        ('', ()),
        ('avx512_bf16', ('avx512_bf16',)),
        ('amx_bf16 avx512_bf16', ip.NATIVE_BF16_CPU_FLAGS),
    ],
)
def test_cpu_flags_are_read_from_cpuinfo(tmp_path, extra, flags):
    path = tmp_path / 'cpuinfo'
    path.write_text(CPUINFO.format(extra=extra))
    assert ip.cpu_bf16_flags(str(path)) == flags


def test_unreadable_cpuinfo_asks_pytorch(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cpu, '_is_avx512_bf16_supported', lambda: True, raising=False)
    monkeypatch.setattr(torch.cpu, '_is_amx_tile_supported', lambda: False, raising=False)
    assert ip.cpu_bf16_flags(str(tmp_path / 'absent')) == ('avx512_bf16',)


def test_auto_is_bf16_with_the_cpu_flag_and_fp32_without(native, capsys):
    native(True)
    chosen = ip.resolve_precision('auto', EDSR(num_feat=8, num_block=1), 'cpu')
    assert (chosen.name, chosen.amp) == ('bf16', 'bf16')
    assert chosen.describe().startswith('bf16 (auto: the CPU has avx512_bf16; EDSR:')
    native(False)
    chosen = ip.resolve_precision('auto', 'EDSR', 'cpu')
    assert (chosen.name, chosen.amp) == ('fp32', None)
    assert 'emulated' in chosen.describe()
    assert capsys.readouterr().err == ''  # a choice, not a problem


def test_explicit_precisions_ignore_the_cpu_flag(native):
    native(False)
    assert ip.resolve_precision('bf16', 'EDSR', 'cpu').name == 'bf16'  # slow, but asked for
    native(True)
    assert ip.resolve_precision('fp32', 'EDSR', 'cpu').amp is None


def test_fp16_on_the_cpu_is_one_error_line():
    with pytest.raises(OptionError) as err:
        ip.resolve_precision('fp16', 'EDSR', 'cpu')
    message = str(err.value)
    assert message.startswith('--precision fp16: float16 inference runs on CUDA only')
    assert '\n' not in message and 'bf16' in message


def test_an_unsafe_arch_refuses_bf16_and_auto_falls_back_with_a_warning(native, capsys):
    with pytest.raises(OptionError) as err:
        ip.resolve_precision('bf16', UnsafeNet(), 'cpu')
    message = str(err.value)
    assert message.startswith('--precision bf16: UnsafeNet measured 31.5 dB PSNR in bfloat16')
    assert message.endswith('use --precision fp32') and '\n' not in message
    native(True)
    chosen = ip.resolve_precision('auto', UnsafeNet, 'cpu')
    assert chosen.name == 'fp32'
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(
        'warning: --precision auto: UnsafeNet runs in float32'
    )
    assert '31.5 dB' in err[0]


def test_an_unmeasured_arch_runs_bf16_when_asked_and_fp32_under_auto(native, capsys):
    native(True)
    assert ip.resolve_precision('bf16', UnmeasuredNet(), 'cpu').name == 'bf16'
    assert ip.resolve_precision('auto', UnmeasuredNet(), 'cpu').name == 'fp32'
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all('has no bf16 measurement (BF16_PSNR_DB)' in e for e in err)


def test_a_compiled_network_is_judged_by_its_arch():
    net = EDSR(num_feat=8, num_block=1)
    wrapper = nn.Module()
    wrapper._orig_mod = net  # what torch.compile's OptimizedModule holds
    assert arch_class(wrapper) is EDSR and ip.arch_bf16_psnr(wrapper) == EDSR.BF16_PSNR_DB


def test_autocast_runs_bf16_and_fp32_is_plain():
    layer = nn.Linear(4, 4)
    with ip.InferencePrecision('bf16', 'bf16').autocast('cpu'):
        assert layer(torch.rand(2, 4)).dtype == torch.bfloat16
    with ip.InferencePrecision('fp32', 'auto', 'why').autocast('cpu'):
        assert layer(torch.rand(2, 4)).dtype == torch.float32


def test_set_test_precision_sets_val_amp(native, monkeypatch):
    from basicattn.engine import mixed_precision

    monkeypatch.setattr(mixed_precision, 'default_device_type', lambda: 'cpu')  # a GPU or not
    opt = {'network_g': {'type': 'EDSR'}, 'val': {'amp': 'bf16'}}
    assert ip.set_test_precision(opt, None) is None and opt['val']['amp'] == 'bf16'  # the file's
    assert ip.set_test_precision(opt, 'fp32').name == 'fp32' and opt['val']['amp'] is None
    native(True)
    assert ip.set_test_precision(opt, 'auto').name == 'bf16' and opt['val']['amp'] == 'bf16'
    opt = {'network_g': {'type': 'EDSR'}, 'val': None}
    ip.set_test_precision(opt, 'bf16')
    assert opt['val'] == {'amp': 'bf16'}
    with pytest.raises(OptionError, match='^--precision fp16: float16 inference runs on CUDA'):
        ip.set_test_precision({'network_g': {'type': 'EDSR'}}, 'fp16')
