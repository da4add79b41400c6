"""Fast tests of the a2n_official converter and the converter machinery.

The official layout is written out here from the key names of the authors'
code (haoyuc/A2N ``code/model/aan.py``, listed in docs/models/a2n.md; not
taken from our rename table), and a functional forward over those official
keys serves as an independent reference for the converted model.
"""

import os

import pytest
import torch
import torch.nn.functional as F

from basicattn.archs.build import network_from_checkpoint
from basicattn.checkpoint.state import (
    check_state_dict_against,
    read_state_dict,
    read_weights_checkpoint,
    save_weights_checkpoint,
)
from basicattn.converters.base import (
    ConversionError,
    get_converter,
    list_converters,
    rename_state_dict,
)
from basicattn.errors import CheckpointError
from basicattn.registry import ARCHS


def official_state_dict(scale=2, nb=2, nf=8, unf=6, na_kernel=3, seed=0):
    """Random weights in the layout of the authors' AAN model."""
    g = torch.Generator().manual_seed(seed)

    def t(*shape):
        return torch.randn(*shape, generator=g) * 0.1

    sd = {'conv_first.weight': t(nf, 3, 3, 3), 'conv_first.bias': t(nf)}
    for i in range(nb):
        p = f'AAB_trunk.{i}.'
        sd[p + 'conv_first.weight'] = t(nf, nf, 1, 1)
        sd[p + 'ADM.0.weight'] = t(nf // 4, nf)
        sd[p + 'ADM.2.weight'] = t(2, nf // 4)
        sd[p + 'attention.k1.weight'] = t(nf, nf, 3, 3)
        sd[p + 'attention.k2.weight'] = t(nf, nf, 1, 1)
        sd[p + 'attention.k2.bias'] = t(nf)
        sd[p + 'attention.k3.weight'] = t(nf, nf, 3, 3)
        sd[p + 'attention.k4.weight'] = t(nf, nf, 3, 3)
        sd[p + 'non_attention.weight'] = t(nf, nf, na_kernel, na_kernel)
        sd[p + 'conv_last.weight'] = t(nf, nf, 1, 1)
    sd['trunk_conv.weight'] = t(nf, nf, 3, 3)
    sd['trunk_conv.bias'] = t(nf)
    stages = 2 if scale == 4 else 1
    for j in range(1, stages + 1):
        cin = nf if j == 1 else unf
        sd[f'upconv{j}.weight'] = t(unf, cin, 3, 3)
        sd[f'upconv{j}.bias'] = t(unf)
        sd[f'att{j}.conv.weight'] = t(unf, unf, 1, 1)
        sd[f'att{j}.conv.bias'] = t(unf)
        sd[f'HRconv{j}.weight'] = t(unf, unf, 3, 3)
        sd[f'HRconv{j}.bias'] = t(unf)
    sd['conv_last.weight'] = t(3, unf, 3, 3)
    sd['conv_last.bias'] = t(3)
    return sd


def official_forward(sd, x, scale, nb, t=30.0):
    """The authors' forward on [0, 255] pixels, written over their keys."""

    def conv(h, name):
        w = sd[name + '.weight']
        return F.conv2d(h, w, sd.get(name + '.bias'), padding=w.shape[-1] // 2)

    def lrelu(h):
        return F.leaky_relu(h, 0.2)

    fea = conv(x, 'conv_first')
    h = fea
    for i in range(nb):
        p = f'AAB_trunk.{i}.'
        a = lrelu(conv(h, p + 'conv_first'))
        logits = F.linear(
            F.relu(F.linear(a.mean((2, 3)), sd[p + 'ADM.0.weight'])), sd[p + 'ADM.2.weight']
        )
        w = torch.softmax(logits / t, dim=1)[:, :, None, None]
        gate = torch.sigmoid(conv(lrelu(conv(a, p + 'attention.k1')), p + 'attention.k2'))
        att = conv(conv(a, p + 'attention.k3') * gate, p + 'attention.k4')
        mix = att * w[:, 0:1] + conv(a, p + 'non_attention') * w[:, 1:2]
        h = h + conv(lrelu(mix), p + 'conv_last')
    fea = fea + conv(h, 'trunk_conv')
    factors = [2, 2] if scale == 4 else [scale]
    for j, f in enumerate(factors, 1):
        fea = F.interpolate(fea, scale_factor=f, mode='nearest')
        fea = conv(fea, f'upconv{j}')
        fea = lrelu(fea * torch.sigmoid(conv(fea, f'att{j}.conv')))
        fea = lrelu(conv(fea, f'HRconv{j}'))
    up = F.interpolate(x, scale_factor=scale, mode='bilinear', align_corners=False)
    return conv(fea, 'conv_last') + up


@pytest.mark.parametrize('scale,na_kernel', [(2, 3), (3, 1), (4, 3)])
def test_converted_matches_official_forward(scale, na_kernel):
    sd = official_state_dict(scale=scale, na_kernel=na_kernel)
    new_sd, arch = get_converter('a2n_official')(sd, scale=scale)
    assert arch['type'] == 'A2N' and arch['img_range'] == 255.0
    assert arch['upscale'] == scale and arch['num_block'] == 2
    assert arch['non_attention'] == f'{na_kernel}x{na_kernel}'
    model = ARCHS.build(arch).eval()
    model.load_state_dict(new_sd, strict=True)
    x = torch.rand(2, 3, 7, 9)
    with torch.no_grad():
        ours = model(x)
        ref = official_forward(sd, x * 255.0, scale, nb=2) / 255.0
    assert ours.shape == (2, 3, 7 * scale, 9 * scale)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_unmapped_key_is_named():
    sd = official_state_dict()
    sd['AAB_trunk.1.attention.k5.weight'] = sd.pop('AAB_trunk.1.attention.k4.weight')
    with pytest.raises(ConversionError, match=r'AAB_trunk\.1\.attention\.k5'):
        get_converter('a2n_official')(sd, scale=2)


def test_missing_key_is_named():
    sd = official_state_dict()
    del sd['AAB_trunk.1.attention.k2.bias']
    with pytest.raises(ConversionError, match=r'missing keys: blocks\.1\.attention\.k2\.bias'):
        get_converter('a2n_official')(sd, scale=2)


def test_wrong_shape_is_named():
    sd = official_state_dict()
    sd['AAB_trunk.1.attention.k3.weight'] = torch.zeros(8, 8, 5, 5)
    with pytest.raises(ConversionError) as info:
        get_converter('a2n_official')(sd, scale=2)
    msg = str(info.value)
    assert 'blocks.1.attention.k3.weight' in msg
    assert 'AAB_trunk.1.attention.k3.weight' in msg
    assert '(8, 8, 5, 5)' in msg and '(8, 8, 3, 3)' in msg


def test_scale_checks():
    convert = get_converter('a2n_official')
    with pytest.raises(ConversionError, match='scale must be given'):
        convert(official_state_dict(), scale=None)
    with pytest.raises(ConversionError, match='upconv2'):
        convert(official_state_dict(scale=2), scale=4)
    with pytest.raises(ConversionError, match='x4 weights'):
        convert(official_state_dict(scale=4), scale=3)


def test_rename_collision_and_check_against():
    rules = [(r'a\.(\d)', r'b.\1'), (r'c\.(\d)', r'b.\1')]
    with pytest.raises(ConversionError, match="'a.0' and 'c.0'"):
        rename_state_dict({'a.0': torch.zeros(1), 'c.0': torch.zeros(1)}, rules)
    model = torch.nn.Linear(2, 3)
    with pytest.raises(CheckpointError, match='unexpected keys: extra'):
        check_state_dict_against(dict(model.state_dict(), extra=torch.zeros(1)), model)


def test_registry_listing():
    assert 'a2n_official' in list_converters()
    with pytest.raises(ConversionError, match='unknown converter'):
        get_converter('no_such_format')


def test_checkpoint_roundtrip(tmp_path):
    sd = official_state_dict(scale=3)
    src = tmp_path / 'aan_x3.pt'
    torch.save(sd, src)
    loaded, _ = read_state_dict(str(src))
    new_sd, arch = get_converter('a2n_official')(loaded, scale=3)
    out = tmp_path / 'a2n.pth'
    meta = dict(arch=arch, converted_from='a2n_official:aan_x3.pt', source_sha256='0' * 64)
    save_weights_checkpoint(str(out), new_sd, meta)
    with pytest.raises(FileExistsError, match='overwrite'):
        save_weights_checkpoint(str(out), new_sd, meta)
    save_weights_checkpoint(str(out), new_sd, meta, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ['a2n.pth', 'aan_x3.pt']
    state, meta2 = read_weights_checkpoint(str(out))
    assert meta2 == meta and set(state) == set(new_sd)
    model = network_from_checkpoint(str(out))
    assert model.upscale == 3 and model.img_range == 255.0


def test_nested_and_bad_foreign_checkpoint(tmp_path):
    sd = official_state_dict()
    path = tmp_path / 'nested.pth'
    torch.save({'params': sd, 'iter': 3}, path)
    assert set(read_state_dict(str(path))[0]) == set(sd)
    torch.save([1, 2], tmp_path / 'bad.pth')
    with pytest.raises(CheckpointError, match='bad.pth: not a checkpoint of network weights'):
        read_state_dict(str(tmp_path / 'bad.pth'))
    torch.save({'iter': 3, 'notes': 'x'}, tmp_path / 'nothing.pth')
    with pytest.raises(CheckpointError, match='nothing.pth: expected a state_dict'):
        read_state_dict(str(tmp_path / 'nothing.pth'))


def test_convert_model_tool(tmp_path, capsys):
    import importlib.util
    import os.path as osp

    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    spec = importlib.util.spec_from_file_location(
        'convert_model_tool', osp.join(root, 'tools', 'convert_model.py')
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)

    src = tmp_path / 'aan_x2.pt'
    torch.save(official_state_dict(scale=2), src)
    out = tmp_path / 'out.pth'
    args = ['--source', 'a2n_official', '--scale', '2', str(src), str(out)]
    assert tool.main(args) == 0
    assert 'strict=True: ok' in capsys.readouterr().out
    assert tool.main(args) == 2  # refuses to overwrite
    assert 'exists' in capsys.readouterr().err
    assert tool.main(args + ['--overwrite']) == 0
    assert (
        tool.main(['--source', 'a2n_official', '--scale', '4', str(src), str(tmp_path / 'x4.pth')])
        == 2
    )
    assert 'upconv2' in capsys.readouterr().err
    assert not (tmp_path / 'x4.pth').exists()
    assert tool.main(['--list']) == 0
    assert 'a2n_official' in capsys.readouterr().out
