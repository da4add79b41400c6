"""The one module that knows where the weights sit in a checkpoint (issue 13, 2)."""

import pytest
import torch
from mmengine.model import ExponentialMovingAverage

from basicattn.checkpoint.state import (
    check_finite_weights,
    extract_state_dict,
    load_network_weights,
    load_weights,
    read_state_dict,
    read_weights_checkpoint,
    recorded_arch,
    save_weights_checkpoint,
    strip_wrapper_prefixes,
)
from basicattn.errors import CheckpointError


class Holder(torch.nn.Module):
    """Stands in for SRModel: the network is its ``generator``."""

    def __init__(self):
        super().__init__()
        self.generator = torch.nn.Conv2d(3, 4, 3)


def _net_state():
    torch.manual_seed(0)
    return Holder().generator.state_dict()


@pytest.mark.parametrize(
    'prefix', ['', 'module.', 'generator.', '_orig_mod.', 'module._orig_mod.', '_orig_mod.module.']
)
def test_wrapper_prefixes_are_removed(prefix):
    state = {prefix + k: v for k, v in _net_state().items()}
    assert set(strip_wrapper_prefixes(state)) == {'weight', 'bias'}


def test_a_prefix_on_some_keys_only_stays():
    state = {'module.weight': torch.ones(1), 'bias': torch.ones(1)}
    assert set(strip_wrapper_prefixes(state)) == {'module.weight', 'bias'}


def test_training_checkpoint_and_its_ema_weights():
    holder = Holder()
    ema = ExponentialMovingAverage(holder)  # mmengine's EMAHook keeps one
    checkpoint = {
        'meta': {'iter': 3},
        'state_dict': holder.state_dict(),
        'ema_state_dict': ema.state_dict(),  # steps + module.generator.*
    }
    assert 'steps' in checkpoint['ema_state_dict']
    for key in ('state_dict', 'ema_state_dict', None):
        state = extract_state_dict(checkpoint, key, 'iter_3.pth')
        assert set(state) == {'weight', 'bias'}, key
    net = torch.nn.Conv2d(3, 4, 3)
    load_weights(net, checkpoint, 'ema_state_dict', 'iter_3.pth')
    torch.testing.assert_close(net.weight, holder.generator.weight)


def test_basicsr_files_prefer_the_ema_weights():
    plain, ema = _net_state(), {k: v + 1 for k, v in _net_state().items()}
    state = extract_state_dict({'params': plain, 'params_ema': ema}, None, 'x.pth')
    torch.testing.assert_close(state['weight'], ema['weight'])
    assert extract_state_dict({'params': plain}, 'params', 'x.pth').keys() == plain.keys()
    assert extract_state_dict(plain, '', 'x.pth').keys() == plain.keys()


def test_missing_key_names_the_file_and_the_option():
    with pytest.raises(
        CheckpointError, match=r"w.pth: no 'params_ema' in checkpoint .*--param-key"
    ):
        extract_state_dict({'state_dict': _net_state()}, 'params_ema', 'w.pth')
    with pytest.raises(CheckpointError, match=r'w.pth: expected a state_dict.*--key'):
        extract_state_dict({'iter': 3}, None, 'w.pth', key_option='--key')


def test_weights_checkpoint_roundtrip(tmp_path):
    path = str(tmp_path / 'w.pth')
    meta = {'arch': {'type': 'EDSR', 'upscale': 2}, 'scale': 2}
    save_weights_checkpoint(path, _net_state(), meta)
    with pytest.raises(FileExistsError, match='overwrite'):
        save_weights_checkpoint(path, _net_state(), meta)
    state, meta2 = read_weights_checkpoint(path)
    assert set(state) == {'weight', 'bias'} and meta2 == meta
    assert recorded_arch(read_state_dict(path)[1], path) == meta['arch']
    torch.save({'state_dict': _net_state()}, path)
    with pytest.raises(CheckpointError, match=r"w.pth: meta\['arch'\] .* missing; .*; use --arch$"):
        recorded_arch(read_state_dict(path)[1], path, 'use --arch')


def test_conversion_error_is_a_checkpoint_error_and_a_value_error():
    from basicattn.converters.base import ConversionError

    assert issubclass(ConversionError, CheckpointError)
    assert issubclass(ConversionError, ValueError)


def test_non_finite_weights_are_refused_naming_the_file_and_tensor():
    net = torch.nn.Conv2d(3, 4, 3)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    check_finite_weights(state, 'good.pth')
    state['bias'][2] = float('nan')
    state['weight'][0, 0, 0, 0] = float('inf')  # the first non-finite tensor is named
    with pytest.raises(CheckpointError, match=r'^bad\.pth: .*\(weight holds inf \(1 of 108'):
        load_network_weights(net, state, True, 'bad.pth')
    assert bool(torch.isfinite(net.weight).all())  # nothing was loaded
