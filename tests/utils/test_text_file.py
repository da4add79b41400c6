"""Meta info and clip list files: non-UTF-8 or binary content is one line (issue 22)."""

import pytest

from basicattn.data.lmdb_io import read_meta_info
from basicattn.data.paired_image_dataset import _read_meta_info_list
from basicattn.data.video_clips import read_clip_list
from basicattn.errors import DataError
from basicattn.utils.text_file import read_text_lines


def test_lines_as_text_mode_reads_them(tmp_path):
    path = tmp_path / 'list.txt'
    path.write_bytes('\ufeffa\r\nb\rc\n\nd'.encode('utf-8'))
    assert read_text_lines(path) == ['a', 'b', 'c', '', 'd']


@pytest.mark.parametrize(
    'reader, what',
    [
        (read_meta_info, 'LMDB meta info file'),
        (_read_meta_info_list, 'meta_info_file'),
        (read_clip_list, 'clip list file'),
    ],
)
def test_binary_list_file_is_one_line(tmp_path, reader, what):
    path = tmp_path / 'meta_info.txt'
    path.write_bytes(b'000 100 (720,1280,3)\n\x89PNG\r\n')
    with pytest.raises(DataError) as info:
        reader(str(path))
    assert str(info.value) == (
        f'{what} {path}: not UTF-8 text: byte 0x89 at byte offset 21 (line 2); save it as '
        'UTF-8 (is this the right file?)'
    )
