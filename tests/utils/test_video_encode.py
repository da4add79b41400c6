"""basicattn/utils/video_encode.py: H.264/H.265 outputs through PyAV, read back with PyAV.

Inputs are made here (tests/utils/video_samples.py): a few frames of 24x32 with a
440 Hz sine track. What is checked: the codec, frame count, frame rate and
pixel aspect ratio of what a reader finds; the audio packets copied byte for
byte, or re-encoded to AAC where the container cannot hold them; the CRF
moving the file size; refusals in one line; and that memory does not grow
with the length of the video. The OpenCV fallback is tested through
tools/infer.py (tests/tools/test_infer_video.py).
"""

import os
import os.path as osp
import subprocess
import sys
import textwrap
from fractions import Fraction

import numpy as np
import pytest
from conftest import REPO_ROOT
from video_samples import AV_MISSING, make_video, moving_frames, read_back

from basicattn.errors import UserError
from basicattn.utils import video_encode
from basicattn.utils.video_encode import open_video_sink

av = pytest.importorskip('av', reason=AV_MISSING)


def _upscaled_frames(src):
    """The frames of ``src`` decoded one by one (PyAV), doubled by repetition (a stand-in SR)."""
    with av.open(src) as container:
        for frame in container.decode(video=0):
            image = frame.to_ndarray(format='rgb24')
            yield np.repeat(np.repeat(image, 2, axis=0), 2, axis=1)


def _encode(sink, frames):
    for frame in frames:
        sink.write(frame)
    sink.close()
    return sink


def test_h264_keeps_rate_aspect_and_audio(tmp_path, capsys):
    src = make_video(str(tmp_path / 'in.mp4'), count=12, sample_aspect_ratio=Fraction(4, 3))
    out = str(tmp_path / 'out' / 'sr.mp4')
    sink = _encode(open_video_sink(out, source=src), _upscaled_frames(src))
    assert isinstance(sink, video_encode.PyAVVideoSink) and sink.count == 12
    got, given = read_back(out), read_back(src)
    assert got['codec'] == 'h264' and got['frames'] == 12 and got['size'] == (48, 64)
    assert got['rate'] == Fraction(30000, 1001)  # exactly, not 29.97
    assert got['sar'] == Fraction(4, 3)
    assert got['audio_codec'] == 'aac'
    assert got['audio_payload'] == given['audio_payload']  # remuxed, not re-encoded
    assert os.listdir(tmp_path / 'out') == ['sr.mp4']  # no temporary file left
    assert capsys.readouterr().err == ''


def test_h265_in_mov_and_mp4v_in_avi(tmp_path):
    src = make_video(str(tmp_path / 'in.mp4'), count=6)
    hevc = str(tmp_path / 'sr.mov')
    _encode(open_video_sink(hevc, source=src, codec='h265'), _upscaled_frames(src))
    found = read_back(hevc)
    assert found['codec'] == 'hevc' and found['frames'] == 6 and found['audio_codec'] == 'aac'
    with av.open(hevc) as container:  # the tag Apple players need
        assert container.streams.video[0].codec_tag == 'hvc1'
    mp4v = str(tmp_path / 'sr.avi')
    _encode(open_video_sink(mp4v, source=src, codec='mp4v'), _upscaled_frames(src))
    found = read_back(mp4v)
    assert found['codec'] == 'mpeg4' and found['frames'] == 6


def test_frames_survive_the_encoding(tmp_path):
    """At the default CRF the decoded frames are close to what went in, and the
    stream says which matrix made its YUV (BT.601, limited range).

    On this saturated pattern 4:2:0 chroma alone costs about 4 grey levels on
    average (measured: 3.9 with --crf 0, 0.4 with 4:4:4) and CRF 18 about one
    more (4.5); a swapped channel or a wrong range is off by tens.
    """
    frames = list(moving_frames(5, (48, 64), noise=0))
    out = str(tmp_path / 'sr.mp4')
    _encode(open_video_sink(out, fps=25), frames)
    with av.open(out) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.colorspace == 6  # AVCOL_SPC_SMPTE170M: BT.601
        assert stream.codec_context.color_range == 1  # AVCOL_RANGE_MPEG: 16-235
        decoded = [f.to_ndarray(format='rgb24') for f in container.decode(stream)]
    assert len(decoded) == 5
    for got, sent in zip(decoded, frames):
        assert np.abs(got.astype(float) - sent).mean() < 6


def test_odd_sizes_are_encoded_as_yuv444(tmp_path):
    out = str(tmp_path / 'odd.mkv')
    _encode(open_video_sink(out, fps=10), moving_frames(3, (25, 33)))
    with av.open(out) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.pix_fmt == 'yuv444p'
        assert [f.height for f in container.decode(stream)] == [25, 25, 25]


def test_crf_moves_the_file_size(tmp_path):
    frames = list(moving_frames(8, (48, 64)))
    sizes = {}
    for crf in (12, 24, 36):
        out = str(tmp_path / f'crf{crf}.mp4')
        _encode(open_video_sink(out, fps=25, crf=str(crf)), frames)
        sizes[crf] = osp.getsize(out)
    assert sizes[12] > sizes[24] > sizes[36], sizes


def test_audio_that_the_container_cannot_hold_becomes_aac(tmp_path, capsys):
    src = make_video(str(tmp_path / 'in.mkv'), count=10, audio='pcm_s16le')
    out = str(tmp_path / 'sr.m4v')  # the iPod container holds no PCM
    _encode(open_video_sink(out, source=src), _upscaled_frames(src))
    found = read_back(out)
    assert found['codec'] == 'h264' and found['frames'] == 10
    assert found['audio_codec'] == 'aac'
    # as long as the 10 frames, plus AAC's 1024-sample priming frame (Matroska
    # stored the PCM packets' durations in whole milliseconds: 2 ms of slack)
    expected = 10 / Fraction(30000, 1001) + Fraction(1024, 48000)
    assert abs(found['audio_seconds'] - float(expected)) <= 0.002
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith('warning: ') and 're-encoding' in lines[0]


def test_another_fps_drops_the_audio_with_one_warning(tmp_path, capsys):
    src = make_video(str(tmp_path / 'in.mp4'), count=6)
    out = str(tmp_path / 'sr.mp4')
    _encode(open_video_sink(out, source=src, fps=10), _upscaled_frames(src))
    found = read_back(out)
    assert found['rate'] == 10 and found['audio_codec'] is None
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith('warning: ') and '--fps 10' in lines[0]


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(crf='60'), '--crf 60: the constant rate factor must be a number from 0 to 51'),
        (dict(crf='-1'), '--crf -1:'),
        (dict(crf='nan'), '--crf nan:'),
        (dict(crf='high'), '--crf high:'),
        (dict(crf='20', codec='mp4v'), 'mp4v (MPEG-4 Part 2) has no constant rate factor'),
        (dict(codec='vp9'), '--codec vp9: unknown codec; choose one of h264, h265, mp4v'),
    ],
)
def test_bad_codec_or_crf_is_refused_before_writing(tmp_path, kwargs, message):
    out = str(tmp_path / 'sr.mp4')
    with pytest.raises(UserError) as err:
        open_video_sink(out, fps=25, **kwargs)
    assert message in str(err.value) and '\n' not in str(err.value)
    assert os.listdir(tmp_path) == []


def test_a_codec_the_container_cannot_hold_is_refused(tmp_path):
    with pytest.raises(UserError, match=r'--codec h265: a \.m4v file .* cannot hold h265'):
        open_video_sink(str(tmp_path / 'sr.m4v'), fps=25, codec='h265')
    with pytest.raises(UserError, match=r'--codec h264: \.webm outputs are written by OpenCV'):
        open_video_sink(str(tmp_path / 'sr.webm'), fps=25, codec='h264')
    assert os.listdir(tmp_path) == []


def test_abort_leaves_the_old_output(tmp_path):
    out = tmp_path / 'sr.mp4'
    out.write_bytes(b'an earlier result')
    with pytest.raises(FileExistsError, match='pass --overwrite'):
        open_video_sink(str(out), fps=25)
    sink = open_video_sink(str(out), fps=25, overwrite=True)
    for frame in moving_frames(3, (24, 32)):
        sink.write(frame)
    sink.abort()
    assert out.read_bytes() == b'an earlier result'
    assert os.listdir(tmp_path) == ['sr.mp4']


# The child of the memory test: decode (PyAV, streamed), double the size, write
# with audio copied, print its peak resident memory. It imports no torch, so its
# baseline is small (~60 MB) and the 10 % bound is a few MB, less than the
# 300-frame output itself.
_CHILD = textwrap.dedent(
    """
    import sys
    import av
    import numpy as np
    from basicattn.utils.video_encode import open_video_sink

    src, out = sys.argv[1], sys.argv[2]
    sink = open_video_sink(out, source=src)
    with av.open(src) as container:
        for frame in container.decode(video=0):
            image = frame.to_ndarray(format='rgb24')
            sink.write(np.repeat(np.repeat(image, 2, axis=0), 2, axis=1))
    sink.close()
    with open('/proc/self/status') as status:
        print([line.split()[1] for line in status if line.startswith('VmHWM:')][0])
    """
)


def _peak_rss_mb(src, out):
    """Peak resident memory (MB) of a fresh process that encodes ``src`` into ``out``.

    Resident memory and not tracemalloc: tracemalloc sees Python's
    allocations only, while what could pile up here sits in FFmpeg's and
    x264's own buffers (frames, packets, the muxer's queue) as much as in numpy
    arrays. A process of its own, so that nothing of this test process counts;
    its ``VmHWM`` (the peak of ``ru_maxrss``, but of the child's own address
    space: the child's ``ru_maxrss`` would start from this process's peak,
    which Linux carries over when a process spawned from it runs ``exec``).
    """
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS='1')
    child = subprocess.run(
        [sys.executable, '-c', _CHILD, src, out],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    return int(child.stdout.split()[-1]) / 1024  # kB


@pytest.mark.skipif(not osp.exists('/proc/self/status'), reason='reads VmHWM from /proc (Linux)')
def test_memory_does_not_grow_with_the_video_length(tmp_path):
    """A 300-frame video needs the memory of a 30-frame one, within 10 %.

    Measured here (2 cores, PyAV 18.1): about 64 and 68 MB; the 4 MB between
    them is x264's look-ahead filling up (60 and 300 frames peak alike). Were
    the frames kept, the 300-frame run would add their 24 MB.
    """
    size = (72, 96)  # written as 144 x 192
    peaks = {}
    for count in (30, 300):
        src = make_video(str(tmp_path / f'in{count}.mp4'), count=count, size=size)
        out = str(tmp_path / f'out{count}.mp4')
        peaks[count] = _peak_rss_mb(src, out)
        assert read_back(out)['frames'] == count
    print(f'peak resident memory: 30 frames {peaks[30]:.1f} MB, 300 frames {peaks[300]:.1f} MB')
    held = 300 * (2 * size[0]) * (2 * size[1]) * 3 / 2**20  # MB, were all frames kept
    assert held > 0.3 * peaks[30], 'the test video is too small to show anything'
    assert abs(peaks[300] - peaks[30]) <= 0.10 * peaks[30], peaks


def test_a_full_disk_names_the_output_and_leaves_nothing(small_disk):
    import errno

    disk = small_disk('64k')
    out = osp.join(disk, 'sr.mp4')
    sink = open_video_sink(out, fps=25, crf='0')  # lossless noise: far more than 64 KiB
    with pytest.raises(OSError) as err:
        for frame in moving_frames(40, (96, 128), noise=60):
            sink.write(frame)
        sink.close()
    sink.abort()
    assert err.value.errno == errno.ENOSPC and err.value.filename == out
    assert os.listdir(disk) == []
