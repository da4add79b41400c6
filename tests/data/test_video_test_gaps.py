"""VideoTestDataset refuses clips with missing frame numbers unless
``allow_gaps`` is set."""

import os.path as osp

import numpy as np
import pytest

from basicattn.data.lmdb_builder import build_lmdb_from_folder
from basicattn.data.video_clips import check_frame_numbers, frame_number
from basicattn.data.video_test_dataset import VideoTestDataset
from basicattn.errors import DataError
from basicattn.utils.img_util import imwrite


def _clip(root, clip, names, rng):
    for name in names:
        imwrite(osp.join(root, clip, f'{name}.png'), (rng.random((8, 8, 3)) * 255).astype(np.uint8))


@pytest.fixture
def gappy(tmp_path, rng):
    """Clip '000' complete, clip '001' without frame 2."""
    root = str(tmp_path / 'GT')
    _clip(root, '000', [f'{i:08d}' for i in range(5)], rng)
    _clip(root, '001', [f'{i:08d}' for i in (0, 1, 3, 4, 5)], rng)
    return root


def test_frame_number():
    assert frame_number('00000099') == 99
    assert frame_number('frame_0012') == 12
    assert frame_number('im4') == 4
    assert frame_number('im4_final') == 4
    assert frame_number('last') is None


def test_missing_frame_is_an_error_naming_clip_and_index(gappy):
    for kwargs in ({}, dict(clips=['000', '001'])):
        with pytest.raises(DataError) as info:
            VideoTestDataset(gappy, scale=2, num_frame=3, **kwargs)
        message = str(info.value)
        assert "clip '001'" in message and 'number(s) 2 ' in message
        assert gappy in message and 'allow_gaps' in message
    # the complete clip alone is fine
    assert len(VideoTestDataset(gappy, clips=['000'], scale=2, num_frame=3)) == 5


def test_missing_frame_in_lmdb(gappy, tmp_path):
    db = str(tmp_path / 'GT.lmdb')
    build_lmdb_from_folder(gappy, db, progress=False, num_workers=0)
    with pytest.raises(DataError, match=r"clip '001'.*number\(s\) 2 "):
        VideoTestDataset(db, io_backend='lmdb', scale=2, num_frame=3)


def test_allow_gaps_uses_the_frames_present(gappy):
    ds = VideoTestDataset(gappy, clips=['001'], scale=2, num_frame=3, allow_gaps=True)
    assert ds.list_clips() == [('001', 5)]
    item = ds[2]  # frame 00000003, right after the gap
    assert item['key'] == '001/00000003'
    assert item['neighbors'].tolist() == [1, 2, 3]


def test_repeated_and_unnumbered_frames(tmp_path, rng):
    with pytest.raises(DataError, match="'f1' and 'g1' both have number 1"):
        check_frame_numbers('c', ['f1', 'g1', 'f2'], 'GT root')
    check_frame_numbers('c', ['first', 'second'], 'GT root')  # no numbers
    root = str(tmp_path / 'GT')
    _clip(root, 'a', ['first', 'second', 'third'], rng)
    assert len(VideoTestDataset(root, scale=2, num_frame=3)) == 3
