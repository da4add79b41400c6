"""Tests of the mana_official converter.

The authors' layout (``models.mana`` of jiy173/MANA, saved with
``model.module.state_dict()``) is written out here as a key/shape table read
from their code, not from our rename table, and a functional forward over
those keys (dense, with their stored distance matrix) is the independent
reference for the converted model.
"""

import pytest
import torch
import torch.nn.functional as F

from basicattn.archs.build import network_from_checkpoint
from basicattn.converters.base import ConversionError, get_converter, list_converters
from basicattn.registry import ARCHS

C, INTER, SLOTS, ENC, DEC, T = 32, 16, 8, 1, 2, 7


def distance_matrix(h, w):
    """Their ``D``: squared pixel distances, rows/cols = y * w + x."""
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    yx = torch.stack([ys.flatten(), xs.flatten()], 1).float()
    return ((yx[:, None] - yx[None]) ** 2).sum(-1)


def author_shapes(c=C, inter=INTER, slots=SLOTS, enc=ENC, dec=DEC):
    """Key -> shape of ``models.mana`` with in_channels=c."""

    def conv(name, cout, cin, k):
        return {f'{name}.weight': (cout, cin, k, k), f'{name}.bias': (cout,)}

    shapes = conv('conv_first', c, 3, 3)
    for part, n in (('encoder', enc), ('decoder', dec)):
        for i in range(n):
            shapes.update(conv(f'{part}.{i}.conv1', c, c, 3))
            shapes.update(conv(f'{part}.{i}.conv2', c, c, 3))
    nl = 'nonloc_spatial.'
    shapes.update(conv(nl + 'g', inter, c, 1))
    shapes.update(conv(nl + 'W_z', c, inter * 7, 1))
    shapes.update(conv(nl + 'theta', inter, c, 1))
    shapes.update(conv(nl + 'phi', inter, c, 1))
    shapes.update({nl + 'norm.weight': (c,), nl + 'norm.bias': (c,), nl + 'std': (1,)})
    shapes.update(conv(nl + 'W_z1', c, inter, 1))
    shapes[nl + 'mb'] = (inter, slots)
    shapes.update(conv('upconv1', c * 4, c, 3))
    shapes.update(conv('upconv2', 64 * 4, c, 3))
    shapes.update(conv('conv_hr', 64, 64, 3))
    shapes.update(conv('conv_last', 3, 64, 3))
    return shapes


def author_state_dict(grid=(6, 5), seed=0, **kwargs):
    g = torch.Generator().manual_seed(seed)
    sd = {k: torch.randn(*s, generator=g) * 0.1 for k, s in author_shapes(**kwargs).items()}
    sd['nonloc_spatial.std'] = torch.tensor([2.5])
    sd['nonloc_spatial.norm.weight'] += 1
    sd['nonloc_spatial.D'] = distance_matrix(*grid)
    return sd


def author_forward(sd, x):
    """Their forward (training precision) over their keys."""

    def conv(h, name):
        w = sd[name + '.weight']
        return F.conv2d(h, w, sd[name + '.bias'], padding=w.shape[-1] // 2)

    def resblocks(h, part):
        i = 0
        while f'{part}.{i}.conv1.weight' in sd:
            p = f'{part}.{i}.'
            h = h + conv(F.relu(conv(h, p + 'conv1')), p + 'conv2')
            i += 1
        return h

    def lrelu(h):
        return F.leaky_relu(h, 0.1)

    b, t, c, h, w = x.shape
    nl = 'nonloc_spatial.'
    lx = F.interpolate(x[:, 3], scale_factor=4, mode='bilinear', align_corners=False)
    enc = resblocks(lrelu(conv(x.reshape(-1, c, h, w), 'conv_first')), 'encoder')
    feat = enc.reshape(b, t, -1, h, w)
    centre = feat[:, 3]
    std = sd[nl + 'std']
    gauss = torch.exp(-0.5 * sd[nl + 'D'] / (std * std))

    def norm(v):
        return F.group_norm(v, 32, sd[nl + 'norm.weight'], sd[nl + 'norm.bias'], eps=1e-6)

    normed = norm(enc)
    g_x = conv(normed, nl + 'g').reshape(b, t, -1, h * w)
    theta_x = conv(normed, nl + 'theta').reshape(b, t, -1, h * w)
    phi = conv(norm(centre), nl + 'phi').flatten(2).transpose(1, 2)
    outs = []
    for i in range(t):
        attn = torch.softmax(phi @ theta_x[:, i], dim=-1) * gauss
        outs.append((attn @ g_x[:, i].transpose(1, 2)).transpose(1, 2))
    w_y = conv(torch.cat(outs, 1).reshape(b, -1, h, w), nl + 'W_z')
    bank = sd[nl + 'mb']
    mem_attn = torch.softmax(phi @ bank * bank.shape[0] ** -0.5, dim=-1)
    y1 = mem_attn @ bank.t()
    qloss = (phi - y1).abs().mean()
    w_y1 = conv(y1.transpose(1, 2).reshape(b, -1, h, w), nl + 'W_z1')
    out = resblocks(w_y + centre + w_y1, 'decoder')
    out = lrelu(F.pixel_shuffle(conv(out, 'upconv1'), 2))
    out = lrelu(F.pixel_shuffle(conv(out, 'upconv2'), 2))
    out = conv(lrelu(conv(out, 'conv_hr')), 'conv_last')
    return lx + out, qloss


def test_converted_matches_author_forward():
    # float64: with float32 the two summation orders differ by up to ~2e-5
    # depending on the thread count; the tiled attention's window tolerance
    # (1e-8 of max |V|) is far below the tolerance used here.
    sd = {
        k: v.double() if v.is_floating_point() else v
        for k, v in author_state_dict(grid=(6, 5)).items()
    }
    new_sd, arch = get_converter('mana_official')(sd)
    assert arch == dict(
        type='MANA',
        num_in_ch=3,
        num_out_ch=3,
        num_feat=C,
        num_frames=T,
        num_encoder_blocks=ENC,
        num_decoder_blocks=DEC,
        embed_dim=INTER,
        num_groups=32,
        num_slots=SLOTS,
        hr_feat=64,
    )
    assert 'nonloc_spatial.D' not in new_sd
    model = ARCHS.build(arch).double().eval()
    model.load_state_dict(new_sd, strict=True)
    x = torch.rand(2, T, 3, 6, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        ours, aux = model(x, return_aux=True)
        ref, ref_qloss = author_forward(sd, x)
    assert ours.shape == (2, 3, 24, 20)
    torch.testing.assert_close(ours, ref, rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(aux['quant'], ref_qloss)


def test_paper_sized_layout_converts():
    sd = author_state_dict(grid=(4, 4), c=128, inter=64, slots=256, enc=5, dec=40)
    new_sd, arch = get_converter('mana_official')(sd, scale=4)
    assert sum(v.numel() for v in new_sd.values()) == 14_317_508
    assert ARCHS.build(arch).load_state_dict(new_sd, strict=True)


def test_dataparallel_prefix_is_accepted():
    sd = {'module.' + k: v for k, v in author_state_dict().items()}
    new_sd, _ = get_converter('mana_official')(sd)
    assert 'attention.sigma' in new_sd and 'memory.bank' in new_sd


def test_unmapped_key_is_named():
    sd = author_state_dict()
    sd['nonloc_spatial.W_z2.weight'] = sd.pop('nonloc_spatial.W_z1.weight')
    with pytest.raises(ConversionError, match=r'nonloc_spatial\.W_z2\.weight'):
        get_converter('mana_official')(sd)


def test_missing_key_is_named():
    sd = author_state_dict()
    del sd['decoder.1.conv2.bias']
    with pytest.raises(ConversionError, match=r'missing keys: decoder\.1\.conv2\.bias'):
        get_converter('mana_official')(sd)


def test_wrong_shape_is_named():
    sd = author_state_dict()
    sd['nonloc_spatial.theta.weight'] = torch.zeros(INTER, C, 3, 3)
    with pytest.raises(ConversionError) as info:
        get_converter('mana_official')(sd)
    msg = str(info.value)
    assert 'attention.to_k.weight (from nonloc_spatial.theta.weight)' in msg
    assert f'{(INTER, C, 3, 3)}' in msg and f'{(INTER, C, 1, 1)}' in msg


def test_distance_matrix_and_scale_checks():
    convert = get_converter('mana_official')
    sd = author_state_dict()
    sd['nonloc_spatial.D'] = torch.zeros(30, 29)
    with pytest.raises(ConversionError, match=r'square.*\(30, 29\)'):
        convert(sd)
    del sd['nonloc_spatial.D']
    with pytest.raises(ConversionError, match='is this a MANA checkpoint'):
        convert(sd)
    with pytest.raises(ConversionError, match='x4 only'):
        convert(author_state_dict(), scale=2)


def test_registered():
    assert 'mana_official' in list_converters()


def test_convert_model_tool(tmp_path, capsys):
    import importlib.util
    import os.path as osp

    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    spec = importlib.util.spec_from_file_location(
        'convert_model_tool', osp.join(root, 'tools', 'convert_model.py')
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    src = tmp_path / 'checkpt.pt'
    torch.save(author_state_dict(), src)
    out = tmp_path / 'mana.pth'
    assert tool.main(['--source', 'mana_official', str(src), str(out)]) == 0
    assert 'strict=True: ok' in capsys.readouterr().out
    model = network_from_checkpoint(str(out))
    assert model.memory.bank.shape == (INTER, SLOTS)
    assert (
        tool.main(['--source', 'mana_official', '--scale', '2', str(src), str(tmp_path / 'x2.pth')])
        == 2
    )
    assert 'x4 only' in capsys.readouterr().err
