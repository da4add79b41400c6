"""The analyses with the official A2N x2 weights on Set5 x2 (real data, slow).

The numbers are those of docs/analysis.md (measured with
``tools/analyze.py attention Set5/X2/LR --checkpoint aan_x2.pt``); a
different CPU changes them only by float rounding, hence the tolerances.
"""

import json

import analysis_helpers
import numpy as np
import pytest
import torch
from analysis_helpers import listing

from basicattn.analysis.taps import record_taps
from basicattn.converters.network_loading import network_from_arguments
from basicattn.utils.img_util import img2tensor, imread

# fixtures of these tests, bound here: a conftest.py of this folder would shadow
# the module that `from conftest import REPO_ROOT` means in later test files
analyze = analysis_helpers.analyze

#: Mean pi_att of blocks 0..15 over Set5 x2 (docs/analysis.md).
SET5_PI_ATT = [
    0.5139, 0.5146, 0.5008, 0.3130, 0.2056, 0.4033, 0.3615, 0.4487,
    0.4172, 0.5392, 0.5034, 0.4211, 0.5005, 0.4167, 0.5228, 0.4119,
]  # fmt: skip
#: pi_att of blocks 0..15 on img_003 (the butterfly).
IMG_003_PI_ATT = [
    0.5170, 0.5158, 0.4981, 0.1959, 0.3032, 0.4039, 0.3511, 0.4710,
    0.5076, 0.6818, 0.5352, 0.4175, 0.5864, 0.3668, 0.5431, 0.3837,
]  # fmt: skip


@pytest.fixture
def official(testdata):
    ckpt = testdata('weights', 'a2n_official', 'aan_x2.pt')
    lr = testdata('Set5', 'X2', 'LR')
    net, _ = network_from_arguments(checkpoint_path=ckpt, report=lambda line: None)
    return net, ckpt, lr


@pytest.mark.slow
def test_set5_pi_att_means(official):
    net, _, lr = official
    values = []
    for i in range(1, 6):
        img = img2tensor(imread(f'{lr}/img_00{i}.png'))[None]
        with torch.no_grad(), record_taps(net, 'blocks.*.pi_att') as rec:
            net(img)
        values.append([float(rec[f'blocks.{b}.pi_att'][0]) for b in range(16)])
    np.testing.assert_allclose(np.mean(values, axis=0), SET5_PI_ATT, atol=1e-4)


@pytest.mark.slow
def test_attention_command_on_one_image(official, analyze, tmp_path):
    _, ckpt, lr = official
    out = tmp_path / 'out'
    args = ['attention', f'{lr}/img_003.png', '--checkpoint', ckpt, '--out', out]
    assert analyze(*args, '--figure-inputs', '1') == 0
    stats = json.loads((out / 'attention.json').read_text())
    got = [stats[f'blocks.{b}.pi_att']['values']['img_003'] for b in range(16)]
    np.testing.assert_allclose(got, IMG_003_PI_ATT, atol=1e-4)
    table = json.loads((out / 'highpass_correlation.json').read_text())
    assert list(table) == [f'blocks.{b}' for b in range(16)]
    assert {
        'figures/block_heatmaps_img_003.png',
        'figures/enhanced_suppressed.png',
        'figures/pi_att_distribution.png',
    } <= listing(out)
