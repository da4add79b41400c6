"""Missing paths: a broken symbolic link is named as one, not as "not found" (issue 22)."""

import os

from basicattn.utils.path_util import broken_link_target, not_found
from basicattn.utils.tool_runner import describe


def test_not_found_and_broken_link(tmp_path):
    missing = tmp_path / 'nothing'
    link = tmp_path / 'data'
    os.symlink(str(tmp_path / 'moved_away'), str(link))
    assert not_found('GT folder', missing) == f'GT folder not found: {missing}'
    assert not_found('GT folder', link) == (
        f'GT folder {link} is a broken symbolic link: it points to {tmp_path}/moved_away, '
        'which does not exist'
    )
    assert broken_link_target(missing) is None
    (tmp_path / 'moved_away').mkdir()
    assert broken_link_target(link) is None  # a working link is not broken


def test_os_error_on_a_broken_link_names_its_target(tmp_path):
    link = tmp_path / 'opts.yml'
    os.symlink('elsewhere/opts.yml', str(link))
    try:
        open(link)
    except FileNotFoundError as err:
        message = describe(err)
    assert message == (
        f'{link}: a broken symbolic link: it points to elsewhere/opts.yml, which does not exist'
    )
    try:
        open(tmp_path / 'absent.yml')
    except FileNotFoundError as err:
        assert describe(err) == f'{tmp_path}/absent.yml: No such file or directory'
