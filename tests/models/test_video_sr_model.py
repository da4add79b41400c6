"""VideoSRModel: window input checks, and sequence mode carrying the state."""

import pytest
import torch

from basicattn.models.video_sr_model import VideoSRModel

DASAA_TINY = dict(
    type='DASAA',
    num_feat=8,
    num_rdb=1,
    rdb_layers=2,
    growth=4,
    reduction=2,
    pab_hidden=4,
    attn_chunk=16,
)


def test_window_input_required():
    model = VideoSRModel(dict(type='Bicubic', scale=2))
    out = model(torch.rand(2, 3, 3, 4, 4), mode='tensor')
    assert out.shape == (2, 3, 8, 8)
    with pytest.raises(ValueError, match=r'\(N, T, C, h, w\), got shape \(2, 3, 4, 4\)'):
        model(torch.rand(2, 3, 4, 4), mode='tensor')


def test_sequence_mode_carries_state_within_a_clip_in_order():
    torch.manual_seed(0)
    model = VideoSRModel(dict(DASAA_TINY), test_cfg=dict(sequence=True)).eval()
    net = model.generator
    lq = torch.rand(4, 5, 3, 6, 6)
    # batch of 3 then 1: clip a frames 0, 1, 2 (a state chain), clip b frame 0
    first = model.predict(lq[:3], clip=['a', 'a', 'a'], frame_idx=torch.tensor([0, 1, 2]))
    second = model.predict(lq[3:], clip=['b'], frame_idx=torch.tensor([0]))
    with torch.no_grad():
        state, expected = None, []
        for i in range(3):
            out, state = net(lq[i : i + 1], state, return_state=True)
            expected.append(out.clamp(0, 1)[0])
        fresh = net(lq[3:4]).clamp(0, 1)[0]
    for result, want in zip(first + second, expected + [fresh]):
        assert torch.allclose(result['pred'], want, atol=1e-6)
    assert first[1]['clip'] == 'a' and int(first[2]['frame_idx']) == 2
    # a gap (frame 5 after frame 2) restarts from the zero state
    gap = model.predict(lq[:1], clip=['a'], frame_idx=torch.tensor([5]))
    with torch.no_grad():
        assert torch.allclose(gap[0]['pred'], net(lq[:1]).clamp(0, 1)[0], atol=1e-6)


def test_sequence_mode_errors():
    with pytest.raises(ValueError, match='no recurrent state'):
        VideoSRModel(dict(type='Bicubic', scale=2), test_cfg=dict(sequence=True))
    with pytest.raises(ValueError, match='cannot be combined with tile'):
        VideoSRModel(dict(DASAA_TINY), test_cfg=dict(sequence=True, tile=16))
    model = VideoSRModel(dict(DASAA_TINY), test_cfg=dict(sequence=True))
    with pytest.raises(ValueError, match="needs the batch's 'clip' and 'frame_idx'"):
        model.predict(torch.rand(1, 5, 3, 6, 6))
