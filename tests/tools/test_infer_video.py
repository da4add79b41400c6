"""tools/infer.py's video outputs (issue 28): H.264 by default through PyAV with the
input's frame rate, pixel aspect ratio and audio; ``--codec``/``--crf`` checked
in one line; OpenCV's writer and one warning without an encoder.

The sample videos are made by tests/utils/video_samples.py (PyAV); the network
is Bicubic x2, which needs no weights.
"""

import json
import os
import os.path as osp
import sys
from fractions import Fraction

import pytest
from conftest import REPO_ROOT

sys.path.insert(0, osp.join(REPO_ROOT, 'tests', 'utils'))
from video_samples import AV_MISSING, make_video, read_back  # noqa: E402

av = pytest.importorskip('av', reason=AV_MISSING)

BICUBIC = ['--arch', 'Bicubic', '--arch-args', json.dumps({'scale': 2}), '--quiet']


def test_h264_output_with_the_inputs_rate_aspect_and_audio(tmp_path, forked_tool):
    src = make_video(str(tmp_path / 'in.mp4'), count=8, sample_aspect_ratio=Fraction(8, 9))
    out = str(tmp_path / 'sr.mp4')
    result = forked_tool('tools/infer.py', src, out, *BICUBIC, '--crf', '20')
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == out
    got, given = read_back(out), read_back(src)
    assert got['codec'] == 'h264' and got['frames'] == 8 and got['size'] == (48, 64)
    assert got['rate'] == Fraction(30000, 1001) and got['sar'] == Fraction(8, 9)
    assert got['audio_codec'] == 'aac' and got['audio_payload'] == given['audio_payload']
    assert sorted(os.listdir(tmp_path)) == ['in.mp4', 'sr.mp4']


def test_h265_from_a_frame_folder_at_fps(tmp_path, forked_tool):
    from video_samples import moving_frames

    from basicattn.utils.img_util import imwrite

    for i, frame in enumerate(moving_frames(4, (24, 32))):
        imwrite(str(tmp_path / 'frames' / f'im{i + 1}.png'), frame)
    out = str(tmp_path / 'out' / 'sr.mkv')
    result = forked_tool(
        'tools/infer.py',
        str(tmp_path / 'frames'),
        out,
        *BICUBIC,
        '--codec',
        'h265',
        '--fps',
        '12.5',
    )
    assert result.returncode == 0, result.stderr[-2000:]
    got = read_back(out)
    assert got['codec'] == 'hevc' and got['frames'] == 4 and got['rate'] == Fraction(25, 2)
    assert got['audio_codec'] is None


@pytest.mark.parametrize(
    'extra, output, message',
    [
        (['--crf', '52'], 'sr.mp4', '--crf 52: the constant rate factor must be a number'),
        (['--crf', 'best'], 'sr.mp4', '--crf best: the constant rate factor must be a number'),
        (['--codec', 'vp9'], 'sr.mp4', '--codec vp9: unknown codec; choose one of h264'),
        (['--codec', 'mp4v', '--crf', '20'], 'sr.mp4', 'mp4v (MPEG-4 Part 2) has no constant'),
        (['--codec', 'h265'], 'sr.m4v', 'a .m4v file'),
        (['--crf', '20'], 'pngs', '--crf: OUTPUT'),
    ],
)
def test_bad_codec_or_crf_is_one_error_line(tmp_path, forked_tool, extra, output, message):
    src = make_video(str(tmp_path / 'in.mp4'), count=2, audio=None)
    result = forked_tool('tools/infer.py', src, str(tmp_path / output), *BICUBIC, *extra)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith('error: ') and message in lines[0], lines
    assert os.listdir(tmp_path) == ['in.mp4']  # nothing written


# tools/infer.py with the availability check patched to say no (as without PyAV),
# run as __main__ in a forked process like the other tool runs
_NO_ENCODER = """
import runpy, sys
sys.path.insert(0, {tools!r})
from basicattn.utils import video_encode
video_encode.encoder_available = lambda codec: False
sys.argv[0] = {infer!r}
runpy.run_path({infer!r}, run_name='__main__')
"""


def test_without_an_encoder_opencv_writes_it_and_warns_once(tmp_path, forked_tool):
    import cv2

    tools = osp.join(REPO_ROOT, 'tools')
    script = tmp_path / 'infer_without_encoder.py'
    script.write_text(_NO_ENCODER.format(tools=tools, infer=osp.join(tools, 'infer.py')))
    src = make_video(str(tmp_path / 'in.mp4'), count=5)
    out = str(tmp_path / 'sr.mp4')
    result = forked_tool(str(script), src, out, *BICUBIC)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith('warning: '), lines
    assert 'no h264 encoder' in lines[0] and 'the audio is dropped' in lines[0]
    capture = cv2.VideoCapture(out)
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 5 and read_back(out)['codec'] == 'mpeg4'
