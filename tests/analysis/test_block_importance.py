"""Block importance (basicattn/analysis/block_importance.py) and its command, tiny A2N."""

import json

import analysis_helpers
import cv2
import pytest
import torch
from analysis_helpers import ARCH_CASES, listing, write_images

from basicattn.analysis.block_importance import block_importance, forceable_blocks, psnr_y
from basicattn.errors import UserError
from basicattn.registry import ARCHS

# fixtures of these tests, bound here: a conftest.py of this folder would shadow
# the module that `from conftest import REPO_ROOT` means in later test files
analyze = analysis_helpers.analyze
tiny_checkpoint = analysis_helpers.tiny_checkpoint


def _a2n():
    torch.manual_seed(0)
    return ARCHS.build(dict(type='A2N', **ARCH_CASES['A2N']['kwargs'])).eval()


def test_forcing_matches_a_network_with_the_weights_changed():
    net = _a2n()
    torch.manual_seed(3)
    lr = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        hr = (net(lr).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).round().astype('uint8')
    result = block_importance(net, [('a', lr, hr)], 2, forceable_blocks(net))
    assert result['baseline']['values']['a'] > 60  # hr is the rounded output itself
    # pi_att = 1 in block 0: the same as a dropout module whose logits favour attention
    # by far (softmax(1000, 0) = (1, 0) in float32)
    adm = net.blocks[0].adm
    with torch.no_grad():
        adm.fc2.weight.zero_()
        adm.fc1.weight.zero_()
        adm.temperature = 1.0
        forward = adm.forward
        adm.forward = lambda x: torch.tensor([[1.0, 0.0]]).expand(x.shape[0], 2)
        expected = psnr_y(net(lr), hr, 2)
        adm.forward = forward
    assert result['blocks']['0']['pi_att=1']['values']['a'] == pytest.approx(expected, abs=1e-9)
    with pytest.raises(UserError, match='block importance needs an arch'):
        forceable_blocks(torch.nn.Conv2d(1, 1, 1))


def test_command_end_to_end(tmp_path, analyze, tiny_checkpoint, capsys):
    ckpt, _ = tiny_checkpoint('A2N')
    hr = write_images(str(tmp_path / 'hr'), 2, (16, 20))
    (tmp_path / 'lr').mkdir()
    for i, img in enumerate(hr):
        cv2.imwrite(str(tmp_path / 'lr' / f'im{i}.png'), cv2.resize(img[..., ::-1], (10, 8)))
    before = listing(tmp_path)
    out = tmp_path / 'out'
    argv = ['block-importance', tmp_path / 'lr', '--gt', tmp_path / 'hr', '--checkpoint', ckpt]
    assert analyze(*argv, '--out', out) == 0
    assert all(p == 'out' or p.startswith('out/') for p in listing(tmp_path) - before)
    result = json.loads((out / 'block_importance.json').read_text())
    assert result['metric'] == 'psnr_y_crop2' and set(result['blocks']) == {'0', '1'}
    row = result['blocks']['1']['pi_att=0']
    assert row['delta'] == pytest.approx(row['psnr'] - result['baseline']['psnr'])
    assert '| 1 |' in (out / 'block_importance.md').read_text()
    assert (out / 'figures' / 'block_importance.png').is_file()
    # refusals: one line each, nothing written
    bad = tmp_path / 'bad'
    assert analyze(*argv[:3], tmp_path / 'nogt', '--checkpoint', ckpt, '--out', bad) == 2
    assert capsys.readouterr().err.strip().endswith('not a folder of HR images')
    dan, _ = tiny_checkpoint('DAN')
    assert analyze(*argv[:4], '--checkpoint', dan, '--out', bad) == 2
    assert 'error: DAN has no blocks.{i}.pi_att' in capsys.readouterr().err
    assert not bad.exists()
