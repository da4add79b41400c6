"""Transfer loading (basicattn/checkpoint/partial_load.py and ``path.partial_*_g``): keep
what fits by name and shape, report the rest in one line, refuse when nothing fits."""

import os.path as osp

import pytest
import torch

from basicattn.archs.dan_arch import DAN
from basicattn.archs.edsr_arch import EDSR
from basicattn.checkpoint.partial_load import group_by_prefix, partial_load, select_tensors
from basicattn.checkpoint.state import save_weights_checkpoint
from basicattn.engine.builder import check_pretrain_scale, partial_load_args
from basicattn.errors import CheckpointError, OptionError

TINY = dict(num_feat=8, num_block=2, num_res=1, reduction=4, distance=1)


def _nets():
    torch.manual_seed(0)
    return DAN(upscale=3, **TINY), DAN(upscale=4, **TINY)


def test_x3_weights_into_x4_keep_everything_but_the_upsampler():
    x3, x4 = _nets()
    before = {k: v.clone() for k, v in x4.state_dict().items()}
    line = partial_load(x4, x3.state_dict(), 'x3.pth', scale_note='x3 weights into an x4 network')
    # x3 upsampler: one conv 8 -> 72 (upsample.0); x4: two convs 8 -> 32 (upsample.0, .2)
    total = len(x3.state_dict())
    assert line == (
        f'Partial load of x3.pth into DAN: {total - 2} of {total} checkpoint tensors loaded; '
        'skipped: other shape 2 [upsample.* (2)]; left at initialisation: 4 '
        '[upsample.* (4)] (x3 weights into an x4 network)'
    )
    for name, tensor in x4.state_dict().items():
        if name.startswith('upsample.'):
            assert torch.equal(tensor, before[name])
        else:
            assert torch.equal(tensor, x3.state_dict()[name]), name


def test_include_and_exclude_patterns():
    x3, x4 = _nets()
    kept, skipped = select_tensors(
        x3.state_dict(), x4.state_dict(), include=['blocks.*', 'conv_first.*'], exclude=['*.gca.*']
    )
    assert kept and all(k.startswith(('blocks.', 'conv_first.')) for k in kept)
    assert not any('.gca.' in k for k in kept)
    assert any('.gca.' in k for k in skipped['excluded'])
    assert 'conv_last.weight' in skipped['excluded'] and 'conv_last.weight' in skipped['missing']
    line = partial_load(x4, x3.state_dict(), 'x3.pth', exclude=['upsample.*'])
    assert 'skipped: excluded 2 [upsample.* (2)]; left at initialisation: 4' in line


def test_a_pattern_that_names_nothing_is_refused():
    x3, x4 = _nets()
    with pytest.raises(OptionError, match=r"path.partial_exclude_g: 'upsampler.\*' matches no"):
        partial_load(x4, x3.state_dict(), 'x3.pth', exclude=['upsampler.*'])


def test_nothing_that_fits_is_refused():
    _, x4 = _nets()
    other = EDSR(num_feat=8, num_block=1, upscale=4).state_dict()
    foreign = {'enc.' + k: v for k, v in other.items()}
    with pytest.raises(CheckpointError, match='no tensor of these weights fits DAN'):
        partial_load(x4, foreign, 'other.pth')


def test_group_by_prefix():
    names = ['upsample.0.weight', 'upsample.0.bias', 'conv_last.weight', 'mean']
    assert group_by_prefix(names) == 'upsample.* (2), conv_last.* (1), mean (1)'
    assert group_by_prefix(names, limit=1) == 'upsample.* (2), ... (2 more prefixes)'


def test_options_patterns_need_partial_load_g():
    assert partial_load_args({}) == {}
    assert partial_load_args({'partial_load_g': True, 'partial_exclude_g': ['a.*']}) == dict(
        partial=True, include=None, exclude=['a.*']
    )
    with pytest.raises(OptionError, match='path.partial_exclude_g is set but path.partial_load_g'):
        partial_load_args({'partial_exclude_g': ['upsample.*']})


def test_scale_check_allows_a_partial_load_only(tmp_path):
    x3, _ = _nets()
    path = str(tmp_path / 'x3.pth')
    save_weights_checkpoint(path, x3.state_dict(), {'arch': dict(type='DAN', upscale=3)})
    opt = {'scale': 4, 'network_g': dict(type='DAN', upscale=4), 'path': {}}
    opt['path']['pretrain_network_g'] = path
    with pytest.raises(CheckpointError, match='the weights are for x3') as info:
        check_pretrain_scale(opt)
    assert str(info.value).endswith('(transfer learning), set path.partial_load_g: true')
    opt['path']['partial_load_g'] = True
    check_pretrain_scale(opt)  # a deliberate transfer
    assert osp.isfile(path)
