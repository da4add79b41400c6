"""``tools/analyze.py attention`` end to end on tiny random weights (in process)."""

import json
import os.path as osp

import analysis_helpers
import pytest
import torch
from analysis_helpers import listing, write_images

from basicattn.analysis.taps import record_taps
from basicattn.converters.network_loading import network_from_arguments
from basicattn.utils.img_util import img2tensor

# fixtures of these tests, bound here: a conftest.py of this folder would shadow
# the module that `from conftest import REPO_ROOT` means in later test files
analyze = analysis_helpers.analyze
tiny_checkpoint = analysis_helpers.tiny_checkpoint


def test_a2n_outputs_and_nothing_outside_out(tmp_path, analyze, tiny_checkpoint, capsys):
    ckpt, _ = tiny_checkpoint('A2N')
    images = write_images(str(tmp_path / 'lr'), 3, (12, 10))
    before = listing(tmp_path)
    out = tmp_path / 'out'
    assert analyze('attention', tmp_path / 'lr', '--checkpoint', ckpt, '--out', out) == 0
    added = listing(tmp_path) - before
    assert all(p == 'out' or p.startswith('out/') for p in added), added
    files = listing(out)
    assert {
        'attention.json',
        'highpass_correlation.json',
        'highpass_correlation.md',
        'figures/pi_att_distribution.png',
        'figures/enhanced_suppressed.png',
        'figures/block_heatmaps_im0.png',
        'figures/maps_im2.png',
    } <= files
    assert not [f for f in files if f.startswith('.') or '/.' in f]  # no temporary left
    stats = json.loads((out / 'attention.json').read_text())
    # the per-image values are what record_taps gives
    net, _ = network_from_arguments(checkpoint_path=ckpt, report=lambda line: None)
    for i, img in enumerate(images):
        with torch.no_grad(), record_taps(net, 'blocks.*.pi_att') as rec:
            net(img2tensor(img)[None])
        for b in range(2):
            got = stats[f'blocks.{b}.pi_att']['values'][f'im{i}']
            assert got == pytest.approx(float(rec[f'blocks.{b}.pi_att'][0]), abs=1e-7)
    entry = stats['blocks.0.pi_att']
    values = list(entry['values'].values())
    assert entry['mean'] == pytest.approx(sum(values) / 3)
    assert entry['min'] == min(values) and entry['max'] == max(values)
    gate = stats['blocks.1.attention_map']
    assert gate['kind'] == 'map' and gate['shape'] == [8, 12, 10]
    assert 0 < gate['min'] <= gate['mean'] <= gate['max'] < 1
    table = json.loads((out / 'highpass_correlation.json').read_text())
    assert set(table) == {'blocks.0', 'blocks.1'}
    assert all(-1 <= v <= 1 for row in table.values() for v in row.values())
    assert '| laplace |' in (out / 'highpass_correlation.md').read_text()
    assert capsys.readouterr().out.strip().endswith(str(out))


@pytest.mark.parametrize('name', ['MANA', 'DASAA'])
def test_video_query_attention_figure(tmp_path, analyze, tiny_checkpoint, name):
    ckpt, _ = tiny_checkpoint(name)
    write_images(str(tmp_path / 'clips' / 'a'), 5, (8, 8), prefix='f')
    out = tmp_path / 'out'
    args = ['attention', tmp_path / 'clips', '--checkpoint', ckpt, '--out', out]
    assert analyze(*args, '--queries', '1,2;6,6') == 0
    assert 'figures/query_attention_a.png' in listing(out)
    stats = json.loads((out / 'attention.json').read_text())
    tap = 'attention.query_attention' if name == 'MANA' else 'dam.saam.query_attention'
    assert stats[tap]['shape'][0] == 2  # two query pixels


def test_dksan_level_maps(tmp_path, analyze, tiny_checkpoint):
    ckpt, _ = tiny_checkpoint('DKSAN')
    write_images(str(tmp_path / 'clip'), 3, (8, 8), prefix='f')
    out = tmp_path / 'out'
    assert analyze('attention', tmp_path / 'clip', '--checkpoint', ckpt, '--out', out) == 0
    stats = json.loads((out / 'attention.json').read_text())
    assert stats['levels.1.dksa.spatial_map']['shape'] == [8, 16, 16]
    assert 'figures/maps_clip.png' in listing(out)


@pytest.mark.parametrize(
    'extra, message',
    [
        (['--queries', '1;2'], 'error: --queries \'1;2\': give LR pixels as "y,x;y,x"'),
        (['--queries', '40,0'], 'error: --queries: pixel (40, 0) is outside im0 (12x10)'),
        (['--blocks', '0,7'], 'error: --blocks: no block 7 (the network has blocks 0..1)'),
    ],
)
def test_bad_arguments_are_one_line_errors(
    tmp_path, analyze, tiny_checkpoint, capsys, extra, message
):
    ckpt, _ = tiny_checkpoint('A2N')
    write_images(str(tmp_path / 'lr'), 1, (12, 10))
    out = tmp_path / 'out'
    assert analyze('attention', tmp_path / 'lr', '--checkpoint', ckpt, '--out', out, *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(message) and 'Traceback' not in '\n'.join(err)
    assert not osp.exists(out)


def test_missing_input_no_taps_and_file_out(tmp_path, analyze, tiny_checkpoint, capsys):
    ckpt, _ = tiny_checkpoint('A2N')
    out = tmp_path / 'out'
    assert analyze('attention', tmp_path / 'nope', '--checkpoint', ckpt, '--out', out) == 2
    assert capsys.readouterr().err.strip() == f'error: input not found: {tmp_path / "nope"}'
    write_images(str(tmp_path / 'lr'), 1, (8, 8))
    assert analyze('attention', tmp_path / 'lr', '--arch', 'Bicubic', '--out', out) == 2
    assert 'error: Bicubic has no attention taps' in capsys.readouterr().err
    (tmp_path / 'file').write_text('x')
    assert (
        analyze('attention', tmp_path / 'lr', '--checkpoint', ckpt, '--out', tmp_path / 'file') == 2
    )
    assert 'is not a folder' in capsys.readouterr().err
    assert not osp.exists(out)
