"""Format detection: which network a weights file belongs to, from the file alone."""

import pytest
import torch
from test_a2n_converter import official_state_dict
from test_mana_converter import author_state_dict

from basicattn.checkpoint.io import safe_load
from basicattn.converters.detect import detect_format, generator_state, known_formats
from basicattn.converters.network_loading import network_from_weights
from basicattn.errors import CheckpointError
from basicattn.registry import ARCHS


@pytest.mark.parametrize('scale', [2, 3])
def test_a2n_x2_x3_scale_from_the_file_name(scale):
    sd = official_state_dict(scale=scale, nb=2, nf=8, unf=6)
    found = detect_format(sd, f'/w/aan_x{scale}.pt')
    assert found.name == 'a2n_official'
    assert found.scale == scale and 'file name' in found.scale_source
    assert found.arch['type'] == 'A2N' and found.arch['upscale'] == scale
    assert (found.arch['num_block'], found.arch['num_feat'], found.arch['unf']) == (2, 8, 6)
    ARCHS.build(dict(found.arch)).load_state_dict(found.state_dict, strict=True)


def test_a2n_x4_scale_from_the_upsampler_shapes():
    found = detect_format(official_state_dict(scale=4), 'weights.pt')
    assert found.scale == 4 and 'shapes' in found.scale_source
    assert found.arch['upscale'] == 4


def test_a2n_x2_x3_without_a_stated_scale_asks_for_one():
    sd = official_state_dict(scale=2)
    with pytest.raises(CheckpointError, match='pass --scale'):
        detect_format(sd, 'weights.pt')
    assert detect_format(sd, 'weights.pt', scale=3).arch['upscale'] == 3
    with pytest.raises(CheckpointError, match='contradicts'):
        detect_format(sd, 'aan_x2.pt', scale=3)
    with pytest.raises(CheckpointError, match='disagree'):
        detect_format(official_state_dict(scale=4), 'aan_x2.pt')


def test_a2n_1x1_variant_and_wrapped_keys():
    sd = official_state_dict(scale=2, na_kernel=1)
    found = detect_format({'state_dict': {f'module.{k}': v for k, v in sd.items()}}, 'a_x2.pth')
    assert found.arch['non_attention'] == '1x1'


def test_mana_is_x4_with_its_widths():
    found = detect_format(author_state_dict(), 'mana_best.pth')
    assert found.name == 'mana_official' and found.scale == 4
    assert found.arch['type'] == 'MANA'
    net = ARCHS.build(dict(found.arch))
    net.load_state_dict(found.state_dict, strict=True)


def test_recorded_arch_wins(tmp_path):
    arch = {'type': 'EDSR', 'num_feat': 8, 'num_block': 1, 'upscale': 3}
    net = ARCHS.build(dict(arch))
    ckpt = {'state_dict': {f'generator.{k}': v for k, v in net.state_dict().items()}}
    ckpt['meta'] = {'arch': arch, 'scale': 3, 'iter': 2}
    found = detect_format(ckpt, 'iter_2.pth')
    assert (found.name, found.arch, found.scale) == ('basicattn', arch, 3)
    assert set(found.state_dict) == set(net.state_dict())
    with pytest.raises(CheckpointError, match='--scale 2 contradicts the recorded scale x3'):
        detect_format(ckpt, 'iter_2.pth', scale=2)


def test_unknown_file_is_one_line_listing_the_formats():
    with pytest.raises(CheckpointError) as err:
        detect_format({'body.0.weight': torch.zeros(2)}, 'mystery.pth')
    text = str(err.value)
    assert '\n' not in text and text.startswith('mystery.pth: unknown weights format')
    for name in ('basicattn', 'a2n_official', 'mana_official'):
        assert f'{name} = ' in text
    assert known_formats() in text
    with pytest.raises(CheckpointError, match='unknown weights format'):
        detect_format({'not': 'weights'}, 'odd.pth')


def test_generator_state_renames_authors_layout():
    sd = official_state_dict(scale=2)
    renamed = generator_state(sd, '', 'aan_x2.pt')
    assert 'conv_body.weight' in renamed and 'trunk_conv.weight' not in renamed
    ours = {'conv_body.weight': torch.zeros(1)}
    assert generator_state(ours, '', 'w.pth') == ours


@pytest.mark.parametrize('scale', [2, 3])
def test_real_a2n_weights_are_detected(scale, testdata):
    path = testdata('weights', 'a2n_official', f'aan_x{scale}.pt')
    net, found = network_from_weights(safe_load(path), path)
    assert found.name == 'a2n_official' and found.scale == scale
    assert found.arch['upscale'] == scale and found.arch['num_block'] == 16
    with torch.no_grad():
        out = net(torch.rand(1, 3, 6, 5))
    assert out.shape == (1, 3, 6 * scale, 5 * scale)


def test_named_format_that_does_not_fit_says_which_format_it_is():
    """Issue 22: --source mana_official on A2N weights said "MANA is x4 only"."""
    from basicattn.converters.base import ConversionError, get_converter
    from basicattn.converters.detect import check_named_format

    a2n = official_state_dict(scale=2)
    with pytest.raises(ConversionError) as info:
        check_named_format('mana_official', get_converter('mana_official'), a2n, 'aan_x2.pt')
    message = str(info.value)
    assert message.startswith("aan_x2.pt: not mana_official weights (MANA authors' checkpoints")
    assert 'use --source a2n_official, or leave --source out' in message
    check_named_format('a2n_official', get_converter('a2n_official'), a2n, 'aan_x2.pt')
    wrapped = {f'module.{k}': v for k, v in author_state_dict().items()}
    check_named_format('mana_official', get_converter('mana_official'), wrapped, 'mana.pth')
    plain = {'conv.weight': torch.zeros(1)}
    with pytest.raises(ConversionError, match='leave --source out to detect the format, or see'):
        check_named_format('a2n_official', get_converter('a2n_official'), plain, 'x.pth')
