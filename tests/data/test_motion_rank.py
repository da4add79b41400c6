"""Motion of a clip by optical flow: synthetic translations, top-percent lists, errors."""

import cv2
import numpy as np
import pytest

from basicattn.data import motion_rank as M
from basicattn.errors import DataError, UserError


def texture(seed=0, size=(96, 160)):
    """A smooth random uint8 RGB texture (features at every scale DIS looks at)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((*size, 3), np.float32)
    for sigma, weight in ((1.0, 0.4), (3.0, 0.4), (8.0, 0.6)):
        img += weight * cv2.GaussianBlur(rng.random((*size, 3)).astype(np.float32), (0, 0), sigma)
    img = (img - img.min()) / (img.max() - img.min())
    return (img * 255).round().astype(np.uint8)


def write_translating_clip(folder, k, frames=4, seed=0, h=48, w=64):
    """Frames of a window moving ``k`` pixels right per frame over a larger texture."""
    big = texture(seed, (h + 8, w + 8 + k * (frames - 1)))
    folder.mkdir(parents=True)
    for t in range(frames):
        cv2.imwrite(str(folder / f'im{t + 1}.png'), big[4 : 4 + h, 4 + t * k : 4 + t * k + w])
    return folder


def test_translation_by_k_pixels_measures_k(tmp_path):
    flow = M._dis('medium')
    for k in (0, 1, 2, 3, 5):
        clip = write_translating_clip(tmp_path / f'k{k}', k)
        frames = sorted(str(p) for p in clip.iterdir())
        value, shape = M.clip_motion(frames, flow)
        assert shape == (48, 64, 3)
        assert value == pytest.approx(k, abs=0.1 + 0.06 * k), (k, value)


def test_find_and_rank_plain_clip_folders(tmp_path):
    for k in (3, 0, 1):
        write_translating_clip(tmp_path / 'set' / f'clip{k}', k, seed=k)
    clips = M.find_clips(str(tmp_path / 'set'))
    assert list(clips) == ['clip0', 'clip1', 'clip3']
    assert [p.rsplit('/', 1)[1] for p in clips['clip1']] == [
        'im1.png',
        'im2.png',
        'im3.png',
        'im4.png',
    ]
    motion, info = M.rank_motion(clips, 'medium')
    assert list(motion) == ['clip3', 'clip1', 'clip0']
    assert info['clip3'] == (4, (48, 64, 3))
    assert M.top_clips(motion, 50) == ['clip1', 'clip3']
    assert M.clip_list_text(['clip3'], info) == 'clip3 4 (48,64,3)\n'


def test_top_count():
    assert M.top_count(7824, 6) == 469  # 469.44: MANA's Vimeo90K-Motion size, rounded
    assert M.top_count(16, 6) == 1  # never empty
    assert M.top_count(10, 25) == 3  # 2.5 rounds half up
    assert M.top_count(3, 100) == 3
    with pytest.raises(UserError, match='percentage'):
        M.top_count(10, 0)


def test_ties_are_broken_by_clip_name():
    motion = {'b': 1.0, 'a10': 2.0, 'a2': 2.0}
    assert M.top_clips(motion, 34) == ['a2']


def test_errors(tmp_path):
    with pytest.raises(UserError, match='not a folder'):
        M.find_clips(str(tmp_path / 'none'))
    one = tmp_path / 'one' / 'clip'
    one.mkdir(parents=True)
    cv2.imwrite(str(one / 'im1.png'), texture()[:16, :16])
    with pytest.raises(DataError, match='1 frame; a clip needs at least 2'):
        M.find_clips(str(tmp_path / 'one'))
    write_translating_clip(tmp_path / 'set' / 'a', 1)
    with pytest.raises(DataError, match="list.txt: clip 'b' is not in"):
        M.find_clips(str(tmp_path / 'set'), ['a', 'b'], 'list.txt')
    cv2.imwrite(str(tmp_path / 'set' / 'a' / 'im5.png'), texture()[:16, :16])
    with pytest.raises(DataError, match='the frames of a clip must have one size'):
        M.clip_motion(sorted(str(p) for p in (tmp_path / 'set' / 'a').iterdir()))


def test_vimeo_sized_frames_measure_large_translations(tmp_path):
    """448x256 frames (Vimeo-90K's size): 8 and 16 px/frame within 1 %."""
    flow = M._dis('medium')
    for k in (8, 16):
        clip = write_translating_clip(tmp_path / f'k{k}', k, frames=3, h=256, w=448)
        value, _ = M.clip_motion(sorted(str(p) for p in clip.iterdir()), flow)
        assert value == pytest.approx(k, rel=0.01), (k, value)
