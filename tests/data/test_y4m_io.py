"""y4m reading: header, planes, chroma siting, BT.601 colour, streaming, bad files.

Test videos are written here from known RGB frames (RGB -> BT.601 YUV ->
y4m) and read back. The tolerance comes from the uint8 rounding of Y, Cb,
Cr (at most 0.5 level each), amplified by the inverse matrix; its largest
row (blue, limited range) gives 0.5 * 255/219 + 0.5 * 1.772 * 255/224 =
0.58 + 1.01 = 1.59 levels, plus 0.5 for rounding RGB: at most 2 levels.
"""

import numpy as np
import pytest

from basicattn.data.y4m_io import (
    Y4MReader,
    parse_header,
    rgb_to_yuv,
    upsample_chroma,
    write_y4m,
    yuv_to_rgb,
)
from basicattn.errors import DataError

ROUNDING_TOL = 2  # levels, see the module docstring


def tinted_ramps(num, h=6, w=10, seed=0):
    """Frames = a grey ramp + one colour per frame: chroma constant over the frame,
    so 4:2:0 subsampling loses nothing and only rounding remains."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(40, 180, h * w).reshape(h, w)
    frames = []
    for _ in range(num):
        tint = rng.integers(-30, 30, size=3)
        frames.append(np.clip(ramp[..., None] + tint, 0, 255).astype(np.uint8))
    return frames


@pytest.mark.parametrize('cs', ['420jpeg', '420', '420mpeg2', '420paldv', '422', '444'])
@pytest.mark.parametrize('full_range', [False, True])
def test_round_trip_within_rounding(tmp_path, cs, full_range):
    frames = tinted_ramps(3)
    path = write_y4m(tmp_path / 'v.y4m', frames, colorspace=cs, full_range=full_range)
    with Y4MReader(path, full_range=full_range) as video:
        assert len(video) == 3 and video.size == (6, 10)
        assert video.header.colorspace == cs
        for original, read in zip(frames, video.frames()):
            assert read.dtype == np.uint8 and read.shape == (6, 10, 3)
            err = np.abs(read.astype(int) - original.astype(int)).max()
            assert err <= ROUNDING_TOL, (cs, err)
        # random access equals streaming
        np.testing.assert_array_equal(video.read(1), list(video.frames())[1])


def test_444_random_colours_within_rounding(tmp_path):
    rng = np.random.default_rng(1)
    # BT.601 limited range covers all of RGB cube without clipping
    frames = [rng.integers(0, 256, (4, 6, 3), dtype=np.uint8) for _ in range(2)]
    with Y4MReader(write_y4m(tmp_path / 'v.y4m', frames, colorspace='444')) as video:
        for original, read in zip(frames, video.frames()):
            assert np.abs(read.astype(int) - original.astype(int)).max() <= ROUNDING_TOL


def test_mono_is_grey(tmp_path):
    grey = np.repeat(np.linspace(0, 255, 12).reshape(3, 4, 1), 3, axis=2).astype(np.uint8)
    with Y4MReader(write_y4m(tmp_path / 'g.y4m', [grey], colorspace='mono')) as video:
        rgb = video.read(0)
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    assert np.abs(rgb.astype(int) - grey.astype(int)).max() <= 1  # Y rounding x 255/219, rounded


def test_known_bt601_limited_values():
    """Reference points of BT.601 limited range: black (16,128,128), white
    (235,128,128), pure red (81, 90, 240)."""
    y, cb, cr = rgb_to_yuv(np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]]], np.uint8))
    np.testing.assert_allclose(np.rint(y[0]), [16, 235, 81])
    np.testing.assert_allclose(np.rint(cb[0]), [128, 128, 90])
    np.testing.assert_allclose(np.rint(cr[0]), [128, 128, 240])
    rgb = yuv_to_rgb(
        np.array([[16, 235, 81]]), np.array([[128, 128, 90]]), np.array([[128, 128, 240]])
    )
    assert np.abs(rgb.astype(int) - [[[0, 0, 0], [255, 255, 255], [255, 0, 0]]]).max() <= 1


def test_chroma_siting_positions():
    """Two chroma samples [0, 100] upsampled to four luma columns at each siting."""
    plane = np.array([[0.0, 100.0]], np.float32)
    centred = upsample_chroma(np.repeat(plane, 1, 0), (2, 4), '420jpeg')[0]
    # luma x sits at chroma (x - 0.5) / 2 = -0.25, 0.25, 0.75, 1.25 -> clamp
    np.testing.assert_allclose(centred, [0, 25, 75, 100])
    left = upsample_chroma(plane, (2, 4), '420mpeg2')[0]
    # (x - 0) / 2 = 0, 0.5, 1, 1.5
    np.testing.assert_allclose(left, [0, 50, 100, 100])
    column = np.array([[0.0], [100.0]], np.float32)
    np.testing.assert_allclose(upsample_chroma(column, (4, 1), '420mpeg2')[:, 0], [0, 25, 75, 100])
    np.testing.assert_allclose(upsample_chroma(column, (4, 1), '420paldv')[:, 0], [0, 50, 100, 100])


def test_odd_sizes_and_frame_params(tmp_path):
    """Odd sizes round chroma planes up; FRAME lines may carry parameters."""
    frames = tinted_ramps(2, h=5, w=7)
    path = tmp_path / 'odd.y4m'
    write_y4m(path, frames)
    data = path.read_bytes().replace(b'FRAME\n', b'FRAME Ixyz\n')
    path.write_bytes(data)
    with Y4MReader(path) as video:
        assert video.header.plane_shapes == [(5, 7), (3, 4), (3, 4)]
        assert len(video) == 2
        assert np.abs(video.read(1).astype(int) - frames[1].astype(int)).max() <= ROUNDING_TOL


def test_header_fields():
    h = parse_header(b'YUV4MPEG2 W480 H270 F24000:1001 Ip A1:1 C420mpeg2 XYSCSS=420MPEG2')
    assert (h.width, h.height, h.fps, h.colorspace) == (480, 270, (24000, 1001), '420mpeg2')
    assert h.frame_bytes == 480 * 270 + 2 * 240 * 135
    assert parse_header(b'YUV4MPEG2 W4 H2').colorspace == '420jpeg'  # the default


@pytest.mark.parametrize(
    'content, message',
    [
        (b'RIFF....\n', 'not a YUV4MPEG2 file'),
        (b'YUV4MPEG2 W4 F25:1\n', 'no valid W/H'),
        (b'YUV4MPEG2 W4 H2 C420p10\n', 'C420p10 is not supported'),
        (b'YUV4MPEG2 W4 H2 It\n', 'interlaced'),
        (b'YUV4MPEG2 W4 H2 C444\nFRAME\n' + bytes(10), 'frame 0 is truncated'),
        (b'YUV4MPEG2 W2 H2 C444\nFRAME\n' + bytes(12) + b'FRAMX\n', 'frame 1: expected a FRAME'),
    ],
)
def test_bad_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / 'bad.y4m'
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        Y4MReader(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match='cannot open'):
        Y4MReader(tmp_path / 'none.y4m')


def test_frames_are_read_lazily(tmp_path, monkeypatch):
    """Opening indexes the FRAME lines only; planes are read per frame asked."""
    path = write_y4m(tmp_path / 'v.y4m', tinted_ramps(4))
    with Y4MReader(path) as video:
        reads = []
        real = video._file.read
        monkeypatch.setattr(video._file, 'read', lambda n=-1: reads.append(n) or real(n))
        next(iter(video.frames()))
        assert reads == [video.header.frame_bytes]
