"""Weights that load themselves: a 2-iteration run's iter_2.pth and net_g_2.safetensors
infer without an option file, test.py builds the network from them, convert_model
writes safetensors, and an unknown file is one error line (issue 15, points 4 and 5)."""

import os.path as osp

import cv2
import numpy as np
import pytest
import torch
import yaml

from basicattn.checkpoint.io import safe_load
from basicattn.checkpoint.state import extract_state_dict, read_weights_checkpoint


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """One 2-iteration EDSR run with EMA and logger.save_weights: safetensors."""
    import conftest

    root = tmp_path_factory.mktemp('weights_run')
    rng = np.random.default_rng(0)
    conftest._write_images(str(root / 'train'), 4, 48, rng)
    conftest._write_images(str(root / 'val'), 2, 24, rng)
    opt = conftest.tiny_options(
        str(root),
        **{
            'train.total_iter': 2,
            'train.warmup_iter': -1,
            'logger.save_checkpoint_freq': 2,
            'logger.save_weights': 'safetensors',
            'logger.use_tb_logger': False,
            'val.val_freq': 100,
            'val.save_img': False,
        },
    )
    opt['path']['experiments_root'] = str(root / 'exp')
    path = root / 'run.yml'
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    out = conftest.run_tool('tools/train.py', '-opt', str(path))
    assert out.returncode == 0, out.stderr[-2000:]
    return root, str(path), str(root / 'exp')


def _infer(forked_tool, inp, out, *args):
    result = forked_tool('tools/infer.py', inp, out, '--quiet', *args)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def _images(folder):
    return {n: cv2.imread(osp.join(folder, n)) for n in ('im0.png', 'im1.png')}


def test_checkpoints_record_the_network(trained):
    _, _, exp = trained
    ckpt = safe_load(osp.join(exp, 'iter_2.pth'))
    arch = {'type': 'EDSR', 'num_feat': 8, 'num_block': 1, 'upscale': 2}
    assert ckpt['meta']['arch'] == arch and ckpt['meta']['scale'] == 2
    state, meta = read_weights_checkpoint(osp.join(exp, 'net_g_2.safetensors'))
    assert meta['arch'] == arch and meta['scale'] == 2 and meta['iter'] == 2
    # EMA run: mmengine puts the averaged weights under state_dict; those are exported
    assert meta['weights'] == 'ema'
    ema = extract_state_dict(ckpt, 'state_dict')
    raw = extract_state_dict(ckpt, 'ema_state_dict')
    assert set(state) == set(ema)
    assert all(torch.equal(state[k], ema[k]) for k in state)
    assert any(not torch.equal(state[k], raw[k]) for k in state)


def test_both_files_infer_without_options_like_the_run(trained, forked_tool, tmp_path):
    root, opt, exp = trained
    val = str(root / 'val')
    ref = str(tmp_path / 'ref')
    _infer(forked_tool, val, ref, '--checkpoint', osp.join(exp, 'iter_2.pth'), '-opt', opt)
    for name in ('iter_2.pth', 'net_g_2.safetensors'):
        out = str(tmp_path / name.replace('.', '_'))  # a folder: a name without an extension
        result = _infer(forked_tool, val, out, '--checkpoint', osp.join(exp, name))
        assert 'basicattn weights, EDSR (x2' in result.stdout
        got, want = _images(out), _images(ref)
        assert all(np.array_equal(got[n], want[n]) for n in want)


def test_test_tool_without_network_g(trained, forked_tool, tmp_path):
    root, opt_path, exp = trained
    opt = yaml.safe_load(open(opt_path))
    del opt['network_g'], opt['train']
    opt['datasets'] = {'test_1': opt['datasets']['val']}
    opt['path'] = {'experiments_root': str(tmp_path / 'test_exp')}
    path = tmp_path / 'test.yml'
    path.write_text(yaml.safe_dump(opt))
    values = []
    for name in ('net_g_2.safetensors', 'iter_2.pth'):
        out = forked_tool('tools/test.py', '-opt', str(path), '--checkpoint', osp.join(exp, name))
        assert out.returncode == 0, out.stderr[-2000:]
        line = next(ln for ln in out.stdout.splitlines() if ln.startswith('tinyval'))
        values.append(line.split()[1:])
    assert values[0] == values[1]
    without = forked_tool('tools/test.py', '-opt', str(path))
    assert without.returncode != 0 and 'network_g' in without.stderr


def test_convert_model_to_safetensors(trained, forked_tool, tmp_path):
    _, _, exp = trained
    out = str(tmp_path / 'shared.safetensors')
    result = forked_tool(
        'tools/convert_model.py', '--to', 'safetensors', osp.join(exp, 'iter_2.pth'), out
    )
    assert result.returncode == 0, result.stderr[-2000:]
    state, meta = read_weights_checkpoint(out)
    exported, _ = read_weights_checkpoint(osp.join(exp, 'net_g_2.safetensors'))
    assert meta['arch'] == safe_load(osp.join(exp, 'iter_2.pth'))['meta']['arch']
    assert all(torch.equal(state[k], exported[k]) for k in exported)
    bad = forked_tool(
        'tools/convert_model.py', '--to', 'safetensors', osp.join(exp, 'iter_2.pth'), 'x.pth'
    )
    assert bad.returncode == 2 and 'should end in .safetensors' in bad.stderr


def test_unknown_weights_are_one_error_line(trained, forked_tool, tmp_path):
    root, _, _ = trained
    path = str(tmp_path / 'mystery.pth')
    torch.save({'body.weight': torch.zeros(3)}, path)
    out = forked_tool(
        'tools/infer.py', str(root / 'val'), str(tmp_path / 'o'), '--checkpoint', path
    )
    assert out.returncode == 2
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith('error: ')
    assert 'unknown weights format' in lines[0]
    assert all(n in lines[0] for n in ('basicattn', 'a2n_official', 'mana_official'))
    assert not osp.exists(tmp_path / 'o')
