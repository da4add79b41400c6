"""Video LAM (basicattn/analysis/lam_video.py): which frames reach the output frame."""

import numpy as np
import pytest
import torch

from basicattn.analysis.lam import BlurPath
from basicattn.analysis.lam_run import Window, run_clip_lam
from basicattn.analysis.lam_video import clip_forward, frame_summary, frames_used
from basicattn.errors import UserError
from basicattn.registry import ARCHS

PATH = BlurPath(fold=2)
DASAA_TINY = dict(
    type='DASAA', num_frames=3, num_feat=8, num_rdb=1, rdb_layers=2, growth=4, reduction=2,
    pab_hidden=4, attn_chunk=16,
)  # fmt: skip
MANA_TINY = dict(
    type='MANA', num_feat=8, num_frames=3, num_encoder_blocks=1, num_decoder_blocks=1,
    embed_dim=4, num_groups=4, num_slots=8, hr_feat=8,
)  # fmt: skip


def _net(cfg):
    torch.manual_seed(0)
    return ARCHS.build(dict(cfg)).eval()


def test_frames_used():
    mana, dasaa = _net(MANA_TINY), _net(DASAA_TINY)
    assert frames_used(mana, 7, 3, 'window') == [2, 3, 4]
    assert frames_used(mana, 7, 0, 'window') == [0, 1]  # reflection: [1, 0, 1]
    assert frames_used(dasaa, 7, 3, 'sequence') == [0, 1, 2, 3, 4]
    with pytest.raises(UserError, match='no recurrent state'):
        frames_used(mana, 7, 3, 'sequence')
    with pytest.raises(UserError, match=r'--frame 7 is outside the clip of 7 frames'):
        frames_used(mana, 7, 7, 'window')


def test_clip_forward_is_what_infer_feeds(rng):
    dasaa = _net(DASAA_TINY)
    clip = torch.from_numpy(rng.random((1, 5, 3, 8, 8)).astype(np.float32))
    with torch.no_grad():
        window = clip_forward(dasaa, 5, 2, 'window')(clip)
        assert torch.equal(window, dasaa(clip[:, [1, 2, 3]]))
        state = None
        for ids in ([1, 0, 1], [0, 1, 2], [1, 2, 3]):
            out, state = dasaa(clip[:, ids], state, return_state=True)
        assert torch.equal(clip_forward(dasaa, 5, 2, 'sequence')(clip), out)


def test_window_mode_gives_frames_outside_the_window_nothing(rng):
    clip = torch.from_numpy(rng.random((5, 3, 8, 8)).astype(np.float32))
    result = run_clip_lam(_net(MANA_TINY), clip, Window(4, 4, 8), path=PATH, mode='window')
    assert [f['used'] for f in result.frames] == [False, True, True, True, False]
    for f in (result.frames[0], result.frames[4]):
        assert f['share'] == 0.0 and f['diffusion_index'] is None and f['gini'] is None
    assert np.all(result.lam_map[[0, 4]] == 0)
    assert sum(f['share'] for f in result.frames) == pytest.approx(1.0, abs=1e-12)


def test_sequence_mode_reaches_earlier_frames_through_the_state(rng):
    clip = torch.from_numpy(rng.random((5, 3, 8, 8)).astype(np.float32))
    net = _net(DASAA_TINY)
    window = run_clip_lam(net, clip, Window(4, 4, 8), frame=3, path=PATH, mode='window')
    sequence = run_clip_lam(net, clip, Window(4, 4, 8), frame=3, path=PATH, mode='sequence')
    assert window.frames[0]['share'] == 0.0 and not window.frames[0]['used']
    assert sequence.frames[0]['share'] > 0.0 and sequence.frames[0]['used']
    assert sum(f['share'] for f in sequence.frames) == pytest.approx(1.0, abs=1e-12)


def test_frame_summary_by_hand():
    maps = np.zeros((3, 2, 2))
    maps[0, 0, 0] = 3.0
    maps[1] = 1.0  # mass 4, uniform
    summary = frame_summary(maps)
    assert summary['shares'] == [pytest.approx(3 / 7), pytest.approx(4 / 7), 0.0]
    assert summary['diffusion_indices'][0] == pytest.approx(25.0, abs=1e-4)  # Gini 0.75
    assert summary['diffusion_indices'][1] == pytest.approx(100.0, abs=1e-4)  # Gini 0
    assert summary['diffusion_indices'][2] is None
    assert summary['maps'].max() == 1.0 and summary['maps'][0, 0, 0] == 1.0
    # the clip DI: all 12 values together, over their common maximum 3
    values = np.array([1.0] + [0.0] * 3 + [1 / 3] * 4 + [0.0] * 4)
    from basicattn.analysis.lam import gini

    assert summary['gini'] == pytest.approx(gini(values), abs=1e-12)


def test_mana_at_initialisation_reads_only_the_centre_frame(rng):
    # MANA starts its cross-frame attention and memory outputs at zero (conv_out), so
    # before training the neighbour frames cannot reach the output: exactly zero shares
    clip = torch.from_numpy(rng.random((3, 3, 8, 8)).astype(np.float32))
    result = run_clip_lam(_net(MANA_TINY), clip, Window(4, 4, 8), path=PATH)
    assert [f['share'] for f in result.frames] == [0.0, 1.0, 0.0]
