"""The forward timer of tools/test.py: what is timed, per frame, and that no output changes."""

import pytest
import torch
from torch import nn

from basicattn.models.forward_timing import (
    ForwardTimer,
    cpu_model,
    device_info,
    runtime_lines,
    runtime_record,
)
from basicattn.models.sr_model import SRModel
from basicattn.models.video_sr_model import VideoSRModel

TINY_EDSR = dict(type='EDSR', num_feat=8, num_block=1, upscale=2)


class FakeClock:
    """Each call advances 10 ms more than the previous one: 10, 30, 60 ... ms."""

    def __init__(self):
        self.now, self.step = 0.0, 0.0

    def __call__(self):
        self.step += 0.010
        self.now += self.step
        return self.now


class CountingNet(nn.Module):
    """x2 nearest upsampling that records the (H, W) of its inputs; refuses below ``least``."""

    def __init__(self, least=1):
        super().__init__()
        self.sizes, self.least = [], least

    def forward(self, x):
        self.sizes.append(tuple(x.shape[-2:]))
        if min(x.shape[-2:]) < self.least:
            raise RuntimeError(f'input smaller than {self.least}')
        return x.repeat_interleave(2, -1).repeat_interleave(2, -2)


def test_warm_up_once_then_every_forward_timed_per_output_frame():
    timer = ForwardTimer(lambda: 'Set5', clock=FakeClock())
    net = CountingNet()
    model = SRModel(net)
    model.forward_timer = timer
    model.predict(torch.rand(3, 3, 80, 70))
    assert net.sizes == [(64, 64), (80, 70)]  # the warm-up on a crop, then the timed forward
    model.predict(torch.rand(1, 3, 4, 4))
    assert net.sizes[2:] == [(4, 4)]  # no warm-up again
    # the fake clock: start/stop read 10 ms apart for the first, 30 ms for the second
    assert timer.samples == [('Set5', pytest.approx(20.0), 3), ('Set5', pytest.approx(40.0), 1)]
    record = runtime_record([timer.samples], timer.device)
    # 3 frames of 20/3 ms and one of 40 ms: mean 60 ms / 4 frames, median of the four
    assert record['sets'] == {
        'Set5': {
            'ms_per_frame': pytest.approx(15.0),
            'ms_per_frame_median': pytest.approx(20.0 / 3),
            'frames': 4,
        }
    }


def test_warm_up_on_the_whole_input_when_the_crop_fails():
    net = CountingNet(least=70)
    model = SRModel(net)
    model.forward_timer = ForwardTimer()
    model.predict(torch.rand(1, 3, 80, 70))
    assert net.sizes == [(64, 64), (80, 70), (80, 70)]
    assert len(model.forward_timer.samples) == 1
    net.sizes.clear()
    model.forward_timer = ForwardTimer()
    with pytest.raises(RuntimeError, match='smaller than 70'):  # its own failure is not hidden
        model.predict(torch.rand(1, 3, 60, 60))


def test_timing_changes_no_output_and_counts_self_ensemble():
    """The timed path calls the same inference with the same input as the untimed one."""
    torch.manual_seed(0)
    model = SRModel(TINY_EDSR, test_cfg=dict(self_ensemble=True)).eval()
    lq = torch.rand(2, 3, 6, 5)
    plain = model.predict(lq)
    model.forward_timer = ForwardTimer()
    timed = model.predict(lq)
    # the same code path on the same input (the timer only wraps it): identical
    assert all(torch.equal(a['pred'], b['pred']) for a, b in zip(plain, timed))
    ((name, ms, frames),) = model.forward_timer.samples
    assert name == 'test' and ms > 0 and frames == 2


def test_self_ensemble_and_tiles_inside_the_timed_forward_video_frames_are_outputs():
    net = CountingNet()
    model = SRModel(net, test_cfg=dict(self_ensemble=True, tile=4, tile_overlap=0))
    model.forward_timer = ForwardTimer(clock=FakeClock())
    model.predict(torch.rand(1, 3, 8, 8))
    # warm-up (one 8x8 crop: 8 transforms x 4 tiles), then the same again, timed as one forward
    assert len(net.sizes) == 64 and model.forward_timer.samples[0][2] == 1
    # a sliding-window video model: 2 windows of 3 frames give 2 output (centre) frames
    video = VideoSRModel(Recurrent())
    video.forward_timer = ForwardTimer()
    video.predict(torch.rand(2, 3, 3, 4, 4))
    assert [s[2] for s in video.forward_timer.samples] == [2]


class Recurrent(nn.Module):
    """A recurrent step: output = upsampled centre frame + state; state counts frames."""

    def forward(self, x, state=None, return_state=False):
        state = torch.zeros(()) if state is None else state + 1
        out = x[:, x.shape[1] // 2].repeat_interleave(2, -1).repeat_interleave(2, -2) + state
        return (out, state) if return_state else out


def test_sequence_mode_warm_up_leaves_the_carried_state_alone():
    lq = torch.rand(3, 3, 3, 4, 4)
    meta = dict(clip=['a', 'a', 'a'], frame_idx=[0, 1, 2])
    model = VideoSRModel(Recurrent(), test_cfg=dict(sequence=True, clamp=False))
    plain = model.predict(lq, **meta)
    model = VideoSRModel(Recurrent(), test_cfg=dict(sequence=True, clamp=False))
    model.forward_timer = ForwardTimer(lambda: 'Vid4')
    timed = model.predict(lq, **meta)
    assert all(torch.equal(a['pred'], b['pred']) for a, b in zip(plain, timed))
    # frame t carries state t: the warm-up from a zero state did not advance it
    assert [float(r['pred'][0, 0, 0] - lq[i, 1, 0, 0, 0]) for i, r in enumerate(timed)] == [
        pytest.approx(v) for v in (0.0, 1.0, 2.0)
    ]
    assert [(s[0], s[2]) for s in model.forward_timer.samples] == [('Vid4', 1)] * 3


def test_sets_of_every_process_merged_and_the_device_named():
    first = [('Set5', 10.0, 1), ('Set14', 30.0, 1)]
    second = [('Set5', 20.0, 2)]
    record = runtime_record([first, second], torch.device('cpu'))
    assert list(record['sets']) == ['Set5', 'Set14']
    assert record['sets']['Set5'] == {
        'ms_per_frame': pytest.approx(10.0),
        'ms_per_frame_median': pytest.approx(10.0),
        'frames': 3,
    }
    assert record['processes'] == 2 and record['device'] == cpu_model() != ''
    assert record['threads'] == torch.get_num_threads() and record['torch'] == torch.__version__
    lines = runtime_lines(record)
    assert lines[0] == 'Set5: 10.0 ms/frame (median 10.0, 3 frames)'
    assert lines[-1].startswith(f'forward time per output frame on {cpu_model()} (cpu, ')
    assert '2 processes' in lines[-1]
    assert runtime_record([[]], None) is None and runtime_lines(None) == []


def test_cuda_device_named_by_torch(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'get_device_name', lambda device=None: 'Fake GPU 80GB')
    info = device_info(torch.device('cuda', 0))
    assert info['device'] == 'Fake GPU 80GB' and info['device_type'] == 'cuda'


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_cuda_forward_timed_after_synchronising():
    net = nn.Conv2d(3, 3, 3, padding=1).cuda()
    timer = ForwardTimer(lambda: 'Set5')
    model = SRModel(net).cuda()
    model.forward_timer = timer
    model.predict(torch.rand(1, 3, 64, 64, device='cuda'))
    record = runtime_record([timer.samples], timer.device)
    assert record['device'] == torch.cuda.get_device_name(0) and record['device_type'] == 'cuda'
    assert record['sets']['Set5']['ms_per_frame'] > 0
