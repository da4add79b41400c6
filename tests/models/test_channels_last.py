"""channels_last memory format (``train.channels_last`` / ``val.channels_last``).

Every arch of tests/archs/arch_cases.py gives the NCHW forward and gradients
in channels_last within float rounding; inference defaults to the arch's
``preferred_memory_format``; a tiny training run with
``train.channels_last`` matches the NCHW run and saves the same keys.
"""

import copy
import os.path as osp
import sys

import pytest
import torch

from basicattn.errors import OptionError
from basicattn.models import acceleration
from basicattn.models.sr_model import SRModel
from basicattn.models.video_sr_model import VideoSRModel
from basicattn.registry import ARCHS

sys.path.insert(0, osp.join(osp.dirname(__file__), '..', 'archs'))
sys.path.insert(0, osp.join(osp.dirname(__file__), '..', 'engine'))
from arch_cases import ARCH_CASES  # noqa: E402

CL = torch.channels_last


def _net(name):
    torch.manual_seed(0)
    return ARCHS.build(dict(type=name, **ARCH_CASES[name]['kwargs']))


def _weights_4d(net):
    return [p for p in net.parameters() if p.dim() == 4]


@pytest.mark.parametrize('name', sorted(ARCH_CASES))
def test_every_arch_equals_nchw_in_channels_last(name):
    net = _net(name)
    fast = acceleration.apply_memory_format(copy.deepcopy(net), True)
    assert all(p.is_contiguous(memory_format=CL) for p in _weights_4d(fast))
    torch.manual_seed(1)
    x = torch.rand(ARCH_CASES[name]['input'])
    x_fast = acceleration.input_memory_format(x, True)
    assert x_fast.dim() == 5 or x_fast.is_contiguous(memory_format=CL)
    out, out_fast = net(x), fast(x_fast)
    torch.testing.assert_close(out_fast, out, atol=1e-5, rtol=1e-4)
    if _weights_4d(net):  # a convolutional arch runs NHWC inside, video archs too
        assert out_fast.is_contiguous(memory_format=CL)
        out.square().mean().backward()
        out_fast.square().mean().backward()
        for (key, p), p_fast in zip(net.named_parameters(), fast.parameters()):
            if p.grad is not None:
                torch.testing.assert_close(p_fast.grad, p.grad, atol=1e-5, rtol=1e-3, msg=key)


def test_inference_takes_the_arch_preference():
    preferred = {name for name in ARCH_CASES if acceleration.prefers_channels_last(_net(name))}
    assert preferred == {'A2N', 'DAN', 'EDSR'}  # measured faster, docs/ops.md
    for name, model_class in (('A2N', SRModel), ('DASAA', VideoSRModel)):
        model = model_class(_net(name)).eval()
        assert model.channels_last is (name in preferred)
    seen = []
    model = SRModel(_net('A2N')).eval()
    model.generator.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].is_contiguous(memory_format=CL))
    )
    x = torch.rand(ARCH_CASES['A2N']['input'])
    out = model.inference(x)
    assert seen == [True] and out.is_contiguous()  # NCHW out, as before
    forced = SRModel(_net('A2N'), test_cfg=dict(channels_last=False)).eval()
    assert not forced.channels_last
    assert all(p.is_contiguous() for p in _weights_4d(forced.generator))
    torch.testing.assert_close(out, forced.inference(x), atol=1e-5, rtol=1e-4)
    assert SRModel(_net('EDSR'), test_cfg=dict(channels_last=True)).channels_last


def test_bad_values_name_the_key():
    with pytest.raises(OptionError, match=r'test_cfg.channels_last: must be true, false or null'):
        SRModel(_net('EDSR'), test_cfg=dict(channels_last='yes'))
    with pytest.raises(OptionError, match=r'train_cfg.channels_last: must be true or false'):
        SRModel(_net('EDSR'), train_cfg=dict(channels_last=None))
    with pytest.raises(OptionError, match='contradicts train_cfg.channels_last'):
        SRModel(_net('EDSR'), test_cfg=dict(channels_last=True), train_cfg={})
    with pytest.raises(OptionError, match='unknown train_cfg key'):
        SRModel(_net('EDSR'), train_cfg=dict(channel_last=True))


def test_training_run_in_channels_last_matches_nchw(tmp_path):
    from tiny_runs import checkpoint, options, train, write_images

    from basicattn.config.options import validate_options

    write_images(str(tmp_path / 'images'))
    sgd = {'type': 'SGD', 'lr': 0.05}
    runs = {}
    for channels_last in (False, True):
        opt = options(
            str(tmp_path),
            f'cl_{channels_last}',
            total_iter=2,
            optim_g=sgd,
            channels_last=channels_last,
            ema_decay=0.5,
        )
        runs[channels_last] = checkpoint(train(str(tmp_path), opt), 2)
    for key in ('state_dict', 'ema_state_dict'):
        base, fast = runs[False][key], runs[True][key]
        assert list(base) == list(fast)
        for name in base:
            torch.testing.assert_close(fast[name], base[name], atol=1e-5, rtol=1e-4, msg=name)
    conv = runs[True]['state_dict']['generator.conv_first.weight']
    assert conv.is_contiguous(memory_format=CL)  # the weights trained channels_last
    opt = options(str(tmp_path), 'clash', channels_last=True)
    opt['val'] = {'channels_last': False}
    with pytest.raises(OptionError, match='val.channels_last: False contradicts'):
        from basicattn.engine.builder import model_cfg

        model_cfg(validate_options(opt), 'train')
