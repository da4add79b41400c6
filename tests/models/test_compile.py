"""``torch.compile`` of the generator (``train.compile`` / ``val.compile``).

* EDSR and A2N: a training iteration compiled with inductor (the default
  backend, C++ code generation) equals the eager one within float rounding.
* DKSAN and MANA: compiled forwards run, with their graph breaks counted in
  one log line; every other arch (Bicubic, DAN, DASAA) likewise equals
  eager. They use the ``aot_eager`` backend (dynamo and AOTAutograd without
  code generation): on a 2-core CPU inductor takes minutes for them.
* A tiny training run with ``train.compile`` (``aot_eager``), EMA, a frozen
  stage and a resume matches the eager run and saves the same keys.
* Without a C++ compiler inductor is refused in one line naming the option.
"""

import copy
import os.path as osp
import sys

import pytest
import torch

from basicattn.config.compile_settings import CompileSettings, compile_settings
from basicattn.errors import OptionError
from basicattn.models import acceleration
from basicattn.models.sr_model import SRModel
from basicattn.models.video_sr_model import VideoSRModel
from basicattn.registry import ARCHS

sys.path.insert(0, osp.join(osp.dirname(__file__), '..', 'archs'))
sys.path.insert(0, osp.join(osp.dirname(__file__), '..', 'engine'))
from arch_cases import ARCH_CASES  # noqa: E402

PIXEL = {'pixel': {'type': 'L1Loss'}}


@pytest.fixture
def logged(monkeypatch):
    lines = []
    monkeypatch.setattr(acceleration, '_print_log', lines.append)
    return lines


def _net(name):
    torch.manual_seed(0)
    return ARCHS.build(dict(type=name, **ARCH_CASES[name]['kwargs']))


def _batch(name):
    torch.manual_seed(1)
    return torch.rand(ARCH_CASES[name]['input']), torch.rand(ARCH_CASES[name]['output'])


def _train_step(model, lq, gt):
    loss = model(lq, gt, mode='loss')['loss_pixel']
    loss.backward()
    return loss.detach(), {k: p.grad.clone() for k, p in model.named_parameters()}


@pytest.mark.parametrize('name', ['EDSR', 'A2N'])
def test_compiled_training_iteration_equals_eager(name, logged):
    net = _net(name)
    eager = SRModel(copy.deepcopy(net), losses=PIXEL, train_cfg={}).train()
    compiled = SRModel(net, losses=PIXEL, train_cfg=dict(compile=True)).train()
    lq, gt = _batch(name)
    loss, grads = _train_step(eager, lq, gt)
    loss_c, grads_c = _train_step(compiled, lq, gt)
    torch.testing.assert_close(loss_c, loss, atol=1e-6, rtol=1e-5)
    assert list(grads_c) == list(grads)
    for key in grads:
        torch.testing.assert_close(grads_c[key], grads[key], atol=1e-5, rtol=1e-3, msg=key)
    assert logged == [f'compiled {name} (training): 0 graph breaks']
    assert list(compiled.state_dict()) == list(eager.state_dict())  # no _orig_mod.
    assert copy.deepcopy(compiled).generator._compiled_call_impl is None  # EMA copies: eager


@pytest.mark.parametrize('name', ['DKSAN', 'MANA'])
def test_compiled_video_forward_runs_and_logs_graph_breaks(name, logged):
    net = _net(name).eval()
    lq, _ = _batch(name)
    with torch.no_grad():
        expected = net(lq).clamp(0, 1)
    model = VideoSRModel(net, test_cfg=dict(compile={'backend': 'aot_eager'})).eval()
    out = model.inference(lq)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)
    model.inference(lq)  # compiled already: no second line
    assert len(logged) == 1 and logged[0].startswith(f'compiled {name} (eval): ')
    count = int(logged[0].split(': ')[1].split()[0])
    assert count > 0 and '(' in logged[0]  # the reasons, first line of each
    model.train()
    with torch.no_grad():
        model.generator(lq)  # training mode is not compiled: eager, nothing logged
    assert len(logged) == 1


#: The archs of the two tests above; every other registered arch is covered below.
COVERED_ABOVE = ('EDSR', 'A2N', 'DKSAN', 'MANA')


@pytest.mark.parametrize('name', sorted(set(ARCH_CASES) - set(COVERED_ABOVE)))
def test_every_other_arch_compiles_and_equals_eager(name, logged):
    """Bicubic, DAN, DASAA ... (``aot_eager``): the compiled eval forward equals eager."""
    net = _net(name).eval()
    lq, _ = _batch(name)
    with torch.no_grad():
        expected = net(lq).clamp(0, 1)
    video = getattr(net, 'num_frames', None) is not None
    model_type = VideoSRModel if video else SRModel
    model = model_type(net, test_cfg=dict(compile={'backend': 'aot_eager'})).eval()
    torch.testing.assert_close(model.inference(lq), expected, atol=1e-5, rtol=1e-4)
    assert len(logged) == 1 and logged[0].startswith(f'compiled {name} (eval): ')


def test_compiled_training_run_matches_eager(tmp_path, logged):
    """aot_eager through the Runner: EMA, a frozen stage, stop and resume."""
    from tiny_runs import checkpoint, options, train, write_images

    write_images(str(tmp_path / 'images'))
    stages = [
        {'until_iter': 2, 'frozen': ['conv_first.*']},
        {'until_iter': 4},
    ]
    common = dict(optim_g={'type': 'SGD', 'lr': 0.05}, ema_decay=0.5, stages=stages)
    base = options(str(tmp_path), 'eager', **common)
    fast = options(str(tmp_path), 'compiled', compile={'backend': 'aot_eager'}, **common)
    eager = checkpoint(train(str(tmp_path), base), 4)
    train(str(tmp_path), fast, stop_at=2)
    compiled = checkpoint(train(str(tmp_path), fast, auto_resume=True), 4)
    assert any(line.startswith('compiled EDSR (training): ') for line in logged)
    for key in ('state_dict', 'ema_state_dict'):
        assert list(compiled[key]) == list(eager[key])
        assert not any('_orig_mod' in k for k in compiled[key])
        for name in eager[key]:
            torch.testing.assert_close(
                compiled[key][name], eager[key][name], atol=1e-5, rtol=1e-4, msg=name
            )


def test_compile_values_are_checked():
    assert compile_settings(False, 'k') is None
    assert compile_settings(True, 'k') == CompileSettings()
    settings = compile_settings({'mode': 'max-autotune', 'dynamic': True}, 'k')
    assert (settings.mode, settings.dynamic, settings.backend) == ('max-autotune', True, 'inductor')
    for value, message in (
        ('yes', 'must be true, false or a mapping'),
        ({'mod': 'default'}, r"unknown key\(s\) \['mod'\]"),
        ({'mode': 'fast'}, "mode: 'fast' is not one of"),
        ({'dynamic': 1}, 'dynamic: must be true, false or null'),
        ({'backend': 'nope'}, "backend: 'nope' is not a torch.compile backend"),
    ):
        with pytest.raises(OptionError, match=f'^val.compile: {message}'):
            compile_settings(value, 'val.compile')
    with pytest.raises(OptionError, match='test_cfg.compile: mode'):
        SRModel(_net('EDSR'), test_cfg=dict(compile={'mode': 'fast'}))


def _no_compiler(monkeypatch):
    from torch._inductor import cpp_builder, exc

    def missing():
        raise exc.InvalidCxxCompiler()

    monkeypatch.setattr(cpp_builder, 'get_cpp_compiler', missing)


def test_no_cpp_compiler_is_one_line(monkeypatch, tmp_path):
    from tiny_runs import options

    from basicattn.config.options import validate_options
    from basicattn.engine.builder import model_cfg

    _no_compiler(monkeypatch)
    with pytest.raises(OptionError) as err:
        model_cfg(validate_options(options(str(tmp_path), 'nocc', compile=True)), 'train')
    message = str(err.value)
    assert '\n' not in message and message.startswith('train.compile: ')
    assert 'no working C++ compiler' in message and 'apt install g++' in message
    with pytest.raises(OptionError, match='^test_cfg.compile: .*no working C'):
        SRModel(_net('EDSR'), test_cfg=dict(compile=True))
    SRModel(_net('EDSR'), test_cfg=dict(compile={'backend': 'aot_eager'}))  # needs none
