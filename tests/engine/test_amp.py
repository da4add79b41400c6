"""Mixed precision: ``train.amp`` (MixedPrecisionOptimWrapper) and ``val.amp``.

On the CPU with bfloat16 autocast, for every arch of tests/archs/arch_cases.py:
two training steps give finite losses and change the weights, and the bf16
forward stays within 40 dB PSNR of the float32 one. fp16 runs on the CPU
where PyTorch can (its GradScaler on 'cpu'); where it cannot, the option is
refused with one line naming it.
"""

import copy
import math
import os.path as osp
import sys

import pytest
import torch

from basicattn.engine.mixed_precision import MixedPrecisionOptimWrapper
from basicattn.errors import OptionError
from basicattn.models.autocast import check_amp
from basicattn.models.sr_model import SRModel
from basicattn.models.video_sr_model import VideoSRModel
from basicattn.registry import ARCHS

sys.path.insert(0, osp.join(osp.dirname(__file__), '..', 'archs'))
from arch_cases import ARCH_CASES  # noqa: E402


def _model(name, **test_cfg):
    case = ARCH_CASES[name]
    torch.manual_seed(0)
    generator = ARCHS.build(dict(type=name, **case['kwargs']))
    cls = VideoSRModel if len(case['input']) == 5 else SRModel
    losses = {'pixel': {'type': 'L1Loss'}}
    return cls(generator, losses=losses, test_cfg=dict(clamp=False, **test_cfg)), case


def _batch(case, seed=1):
    gen = torch.Generator().manual_seed(seed)
    lq = torch.rand(*case['input'], generator=gen)
    gt = torch.rand(*case['output'], generator=gen)
    return dict(lq=lq, gt=gt)


def _psnr(a, b):
    mse = float(((a.double() - b.double()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


@pytest.mark.parametrize('name', sorted(ARCH_CASES))
def test_bf16_training_steps_are_finite_and_update(name):
    model, case = _model(name)
    model.train()
    if not list(model.parameters()):  # Bicubic: nothing to train, the loss is finite
        with torch.autocast('cpu', dtype=torch.bfloat16):
            losses = model(**_batch(case), mode='loss')
        assert all(torch.isfinite(v) for v in losses.values())
        return
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    wrapper = MixedPrecisionOptimWrapper(amp='bf16', device_type='cpu', optimizer=optimizer)
    for step in range(2):
        logs = model.train_step(_batch(case, seed=step), wrapper)
        assert all(torch.isfinite(v) for v in logs.values()), logs
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed
    # weights and optimizer state stay float32
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize('name', sorted(ARCH_CASES))
def test_bf16_inference_within_40db_of_float32(name):
    model, case = _model(name)
    model.eval()
    lq = _batch(case)['lq']
    full = model.inference(lq)
    model.test_cfg.amp = 'bf16'
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=False):
        half = model.inference(lq)
    assert half.dtype == torch.float32
    assert half.shape == full.shape
    psnr = _psnr(half, full)
    assert psnr >= 40, f'{name}: bf16 vs float32 PSNR {psnr:.1f} dB'
    if name != 'Bicubic':  # something ran in bfloat16
        assert not torch.equal(half, full)


def test_bf16_wrapper_has_no_loss_scaling_and_autocasts():
    layer = torch.nn.Linear(4, 4)
    wrapper = MixedPrecisionOptimWrapper(
        amp='bf16', device_type='cpu', optimizer=torch.optim.SGD(layer.parameters(), lr=0.1)
    )
    with wrapper.optim_context(layer):
        out = layer(torch.rand(2, 4))
    assert out.dtype == torch.bfloat16
    loss = out.float().sum()
    assert torch.equal(wrapper.loss_scaler.scale(loss), loss)
    assert wrapper.state_dict()['loss_scaler'] == {}


@pytest.mark.parametrize('name', sorted(n for n in ARCH_CASES if n != 'Bicubic'))
def test_fp16_on_cpu_scales_the_loss_and_saves_the_scale(name):
    try:
        check_amp('fp16', 'train.amp', 'cpu')
    except OptionError as err:
        pytest.skip(f'this PyTorch cannot train fp16 on the CPU: {err}')
    model, case = _model(name)
    model.train()
    before = copy.deepcopy(model.state_dict())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    wrapper = MixedPrecisionOptimWrapper(amp='fp16', device_type='cpu', optimizer=optimizer)
    conv = next(m for m in model.generator.modules() if isinstance(m, torch.nn.Conv2d))
    dtypes = []
    handle = conv.register_forward_hook(lambda m, i, out: dtypes.append(out.dtype))
    with wrapper.optim_context(model):
        model.generator(_batch(case)['lq'])  # the convolutions run in float16
    handle.remove()
    assert dtypes and set(dtypes) == {torch.float16}
    for step in range(2):
        logs = model.train_step(_batch(case, seed=step), wrapper)
        assert all(torch.isfinite(v) for v in logs.values())
    assert any(not torch.equal(v, before[k]) for k, v in model.state_dict().items())
    state = wrapper.state_dict()['loss_scaler']
    assert state['scale'] > 1
    other = MixedPrecisionOptimWrapper(
        amp='fp16', device_type='cpu', optimizer=torch.optim.Adam(model.parameters())
    )
    other.load_state_dict(wrapper.state_dict())
    assert other.loss_scaler.get_scale() == wrapper.loss_scaler.get_scale()


def test_fp16_without_a_cpu_loss_scaler_is_one_clear_error(monkeypatch):
    """A PyTorch without ``torch.amp.GradScaler('cpu')`` (before 2.3) refuses fp16."""

    def no_cpu_scaler(device, enabled=True):
        raise TypeError('__init__() takes 1 positional argument but 2 were given')

    monkeypatch.setattr(torch.amp, 'GradScaler', no_cpu_scaler)
    with pytest.raises(OptionError) as err:
        check_amp('fp16', 'train.amp', 'cpu')
    message = str(err.value)
    assert message.startswith('train.amp: fp16 needs a loss scaler on cpu')
    assert message.endswith('use bf16') and '\n' not in message
    check_amp('bf16', 'train.amp', 'cpu')  # bf16 needs no scaler


def test_autocast_dtype_the_device_lacks_is_one_clear_error(monkeypatch):
    real = torch.autocast

    def warns(device_type, dtype=None, enabled=True):
        import warnings

        warnings.warn('CPU autocast: the target dtype is not supported', stacklevel=2)
        return real(device_type, dtype=dtype, enabled=False)

    monkeypatch.setattr(torch, 'autocast', warns)
    with pytest.raises(OptionError, match=r'^val\.amp: fp16 autocast is not available on cpu'):
        check_amp('fp16', 'val.amp', 'cpu')


def test_amp_options_build_the_wrapper(tmp_path):
    from test_builder import load

    from basicattn.engine.builder import runner_cfg

    opt = load(tmp_path, overrides=['train.amp=bf16', 'val.amp=bf16'])
    cfg = runner_cfg(opt, 'train')
    assert cfg['optim_wrapper']['type'] == 'MixedPrecisionOptimWrapper'
    assert cfg['optim_wrapper']['amp'] == 'bf16'
    assert cfg['model']['test_cfg']['amp'] == 'bf16'
    plain = runner_cfg(load(tmp_path), 'train')
    assert plain['optim_wrapper']['type'] == 'OptimWrapper'
    assert plain['model']['test_cfg']['amp'] is None


def test_bad_amp_values_are_refused(tmp_path):
    from test_builder import load

    with pytest.raises(OptionError, match='train.amp'):
        load(tmp_path, overrides=['train.amp=fp32'])
    with pytest.raises(OptionError, match='val.amp'):
        load(tmp_path, overrides=['val.amp=half'])
    with pytest.raises(OptionError, match=r"test_cfg\.amp: must be one of 'bf16', 'fp16', null"):
        SRModel(torch.nn.Identity(), test_cfg=dict(amp=True))


def test_bf16_checkpoint_resumes_bit_exactly(tmp_path):
    """4 bf16 iterations straight == 3, stop, resume to 4 (weights and optimizer)."""
    import tiny_runs

    root = str(tmp_path)
    tiny_runs.write_images(f'{root}/images')
    straight = tiny_runs.train(root, tiny_runs.options(root, 'bf16', amp='bf16'))
    opt = tiny_runs.options(root, 'bf16_resumed', amp='bf16')
    resumed = tiny_runs.train(root, opt, stop_at=3)
    tiny_runs.train(root, opt, auto_resume=True)
    a, b = tiny_runs.checkpoint(straight, 4), tiny_runs.checkpoint(resumed, 4)
    assert 'loss_scaler' in a['optimizer']
    for key in a['state_dict']:
        assert torch.equal(a['state_dict'][key], b['state_dict'][key]), key
    for index, state in a['optimizer']['state'].items():
        assert all(torch.equal(v, b['optimizer']['state'][index][k]) for k, v in state.items())
