"""One function family builds every network (issue 13, 2).

Networks come from an arch config (:func:`build_network`), an option file
(:func:`network_from_options`) or a checkpoint's record
(:func:`network_from_checkpoint`); no tool, benchmark or package module
outside ``basicattn/archs`` builds one another way.
"""

import os
import os.path as osp
import tokenize

import pytest
import torch

from basicattn.archs.build import (
    build_network,
    network_config_from_arguments,
    network_from_checkpoint,
    network_from_options,
)
from basicattn.checkpoint.state import save_weights_checkpoint
from basicattn.errors import CheckpointError, OptionError, UserError

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
EDSR_TINY = dict(type='EDSR', num_feat=4, num_block=1, upscale=2)


def test_options_give_their_scale_to_the_network():
    net = network_from_options(osp.join(REPO_ROOT, 'options', 'train', 'a2n_x2.yml'))
    assert net.upscale == 2
    x3 = network_from_options(  # gt_size must stay a multiple of the scale
        osp.join(REPO_ROOT, 'options', 'train', 'a2n_x2.yml'),
        ['scale=3', 'datasets.train.gt_size=192'],
    )
    assert x3.upscale == 3


def test_network_from_checkpoint(tmp_path):
    torch.manual_seed(0)
    net = build_network(EDSR_TINY)
    path = str(tmp_path / 'edsr.pth')
    save_weights_checkpoint(path, net.state_dict(), {'arch': EDSR_TINY})
    again = network_from_checkpoint(path)
    assert not again.training
    torch.testing.assert_close(again.state_dict(), net.state_dict())
    torch.save({'state_dict': net.state_dict()}, path)
    with pytest.raises(CheckpointError, match=r"edsr.pth: meta\['arch'\]"):
        network_from_checkpoint(path)
    bad = dict(EDSR_TINY, upscale=7)
    torch.save({'state_dict': net.state_dict(), 'meta': {'arch': bad}}, path)
    with pytest.raises(OptionError, match=r"edsr.pth: meta\['arch'\].*upscale"):
        network_from_checkpoint(path)


def test_command_line_sources():
    cfg, where = network_config_from_arguments(arch='Bicubic', arch_args='{"scale": 2}')
    assert cfg == {'type': 'Bicubic', 'scale': 2} and where == '--arch/--arch-args'
    cfg, where = network_config_from_arguments(
        checkpoint={'meta': {'arch': EDSR_TINY}}, checkpoint_path='w.pth'
    )
    assert cfg == EDSR_TINY and where == "w.pth: meta['arch']"
    with pytest.raises(UserError, match='either -opt or --arch'):
        network_config_from_arguments(opt='x.yml', arch='EDSR')
    with pytest.raises(UserError, match='-opt or --arch'):
        network_config_from_arguments()
    with pytest.raises(CheckpointError, match=r'w.pth: .*name the network with -opt or --arch'):
        network_config_from_arguments(checkpoint={'state_dict': {}}, checkpoint_path='w.pth')


# -- every network is built here ---------------------------------------------------
def _arch_names():
    from basicattn.registry import ARCHS

    ARCHS.import_from_location()
    return set(ARCHS.module_dict)


def _direct_builds(path, arch_names):
    """(line, text) of networks built without basicattn.archs.build."""
    with open(path, 'rb') as f:
        tokens = [
            t for t in tokenize.tokenize(f.readline) if t.type in (tokenize.NAME, tokenize.OP)
        ]
    found = []
    for i, tok in enumerate(tokens):
        prev = tokens[i - 1].string if i else ''
        nxt = [t.string for t in tokens[i + 1 : i + 4]]
        if tok.string == 'ARCHS' and nxt[:1] == ['.'] and nxt[1:2] in (['build'], ['get']):
            found.append((tok.start[0], f'ARCHS.{nxt[1]}'))
        elif tok.string in arch_names and nxt[:1] == ['('] and prev not in ('class', 'def'):
            found.append((tok.start[0], f'{tok.string}('))
    return found


def _scanned_files():
    """Tools, benchmarks and the package, less the archs (and archs/build.py itself)."""
    skip = {osp.join(REPO_ROOT, 'basicattn', 'archs')}
    for top in ('basicattn', 'tools', 'benchmarks'):
        for root, _, files in os.walk(osp.join(REPO_ROOT, top)):
            if any(root == s or root.startswith(s + os.sep) for s in skip):
                continue
            for name in files:
                path = osp.join(root, name)
                if name.endswith('.py') and path not in skip:
                    yield path


def test_scanner_sees_what_it_must(tmp_path):
    probe = tmp_path / 'probe.py'
    probe.write_text(
        'net = ARCHS.build(cfg)\n'
        "cls = ARCHS.get('A2N')\n"
        'model = A2N(upscale=4)\n'
        'other = a2n_arch.A2N()\n'
        'class A2N(nn.Module):\n    pass\n'
        '# A2N(upscale=2) in a comment\n'
        "text = 'ARCHS.build('\n"
        "net = build_network(dict(type='A2N'))\n"
        'import A2N\n'
    )
    assert [line for line, _ in _direct_builds(str(probe), {'A2N'})] == [1, 2, 3, 4]


def test_every_network_is_built_through_engine_network():
    names = _arch_names()
    offenders = [
        f'{osp.relpath(path, REPO_ROOT)}:{line}: {what}'
        for path in _scanned_files()
        for line, what in _direct_builds(path, names)
    ]
    assert offenders == [], (
        'build networks with basicattn.archs.build (build_network, '
        'network_from_options, network_from_checkpoint):\n' + '\n'.join(offenders)
    )


def test_arch_args_nested_too_deep_is_one_line():
    """Issue 22: JSON nested thousands deep ended in a RecursionError traceback."""
    from basicattn.archs.build import arch_config_from_arguments

    deep = '{"a": ' + '[' * 100000 + ']' * 100000 + '}'
    with pytest.raises(OptionError, match='^--arch-args is nested too deep; give a flat JSON'):
        arch_config_from_arguments('EDSR', deep)


# issue 22, point 3: one scale check for every tool that loads weights


A2N_TINY = dict(type='A2N', num_feat=8, unf=6, num_block=1)


def _a2n_x2_file(tmp_path, meta_scale=True):
    torch.manual_seed(0)
    net = build_network(dict(A2N_TINY, upscale=2))
    meta = {'arch': dict(A2N_TINY, upscale=2)}
    if meta_scale:
        meta['scale'] = 2
    path = str(tmp_path / 'a2n_x2.pth')
    save_weights_checkpoint(path, net.state_dict(), meta)
    return path


@pytest.mark.parametrize('meta_scale', [True, False])  # meta['scale'], or meta['arch'] alone
def test_x2_weights_into_an_x3_network_are_refused(tmp_path, meta_scale):
    import json

    from basicattn.converters.network_loading import network_from_arguments

    path = _a2n_x2_file(tmp_path, meta_scale)
    args = {k: v for k, v in A2N_TINY.items() if k != 'type'}
    with pytest.raises(CheckpointError) as info:
        network_from_arguments(None, 'A2N', json.dumps(dict(args, upscale=3)), path)
    message = str(info.value)
    assert message.startswith(f'{path}: the weights are for x2 (meta[')
    assert 'but --arch-args asks for x3' in message
    # the same weights into an x2 network load (A2N x2 and x3 have the same shapes)
    net, _ = network_from_arguments(None, 'A2N', json.dumps(dict(args, upscale=2)), path)
    assert net.upscale == 2


def test_scale_is_not_checked_when_one_side_is_unknown(tmp_path):
    from basicattn.checkpoint.state import check_checkpoint_scale, recorded_scale

    assert recorded_scale({'state_dict': {}}) == (None, '')
    assert recorded_scale({'meta': {'arch': dict(A2N_TINY, upscale=4)}}) == (4, "meta['arch']")
    assert recorded_scale({'meta': {'scale': 3, 'arch': {'type': 'X'}}}) == (3, "meta['scale']")
    check_checkpoint_scale({'state_dict': {}}, 'bare.pth', 3)
    check_checkpoint_scale({'meta': {'scale': 2}}, 'w.pth', None)
    with pytest.raises(CheckpointError, match=r"x2 \(meta\['scale'\]\), but scale asks for x4"):
        check_checkpoint_scale({'meta': {'scale': 2}}, 'w.pth', 4, 'scale')


def test_pretrain_of_another_scale_is_refused_before_the_run(tmp_path):
    from basicattn.engine.builder import check_pretrain_scale, expected_scale

    path = _a2n_x2_file(tmp_path)
    opt = {'scale': 3, 'network_g': dict(A2N_TINY, upscale=3), 'path': {}}
    assert expected_scale(opt) == 3
    check_pretrain_scale(opt)  # no pretrain_network_g: nothing to check
    opt['path']['pretrain_network_g'] = path
    with pytest.raises(CheckpointError, match="but the option file's scale asks for x3"):
        check_pretrain_scale(opt)
    opt.update(scale=2, network_g=dict(A2N_TINY, upscale=2))
    check_pretrain_scale(opt)
