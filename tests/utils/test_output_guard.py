"""output_guard: an output that is, contains or lies inside an input is refused (issue 22, 4)."""

import os

import pytest

from basicattn.errors import UserError
from basicattn.utils.output_guard import overlap, refuse_outputs_over_inputs
from basicattn.utils.tool_runner import describe


@pytest.fixture
def tree(tmp_path):
    (tmp_path / 'data' / 'hr').mkdir(parents=True)
    (tmp_path / 'data' / 'hr' / 'a.png').write_bytes(b'png')
    (tmp_path / 'other').mkdir()
    return tmp_path


def test_same_path_written_differently(tree, monkeypatch):
    monkeypatch.chdir(tree / 'other')
    assert overlap('../data/hr/', str(tree / 'data' / 'hr')) == 'is'
    assert overlap(str(tree / 'data' / 'hr' / 'a.png'), '../data/./hr/a.png') == 'is'


def test_symlink_to_an_input_is_the_input(tree):
    link = tree / 'link'
    os.symlink(tree / 'data' / 'hr', link)
    assert overlap(link, tree / 'data' / 'hr') == 'is'
    # a new output under the link lies inside the input folder
    assert overlap(link / 'new_out', tree / 'data' / 'hr') == 'lies inside'


def test_hard_link_is_the_same_file(tree):
    alias = tree / 'other' / 'alias.png'
    os.link(tree / 'data' / 'hr' / 'a.png', alias)
    assert overlap(alias, tree / 'data' / 'hr' / 'a.png') == 'is'


def test_parent_and_child(tree):
    assert overlap(tree / 'data', tree / 'data' / 'hr') == 'contains'
    assert overlap(tree / 'data' / 'hr' / 'x4', tree / 'data' / 'hr') == 'lies inside'
    assert overlap(tree / 'other', tree / 'data' / 'hr') is None
    # a common prefix of names is not a parent
    assert overlap(tree / 'data' / 'hr_sr', tree / 'data' / 'hr') is None


def test_refusal_is_one_line_naming_both(tree):
    with pytest.raises(UserError) as info:
        refuse_outputs_over_inputs(
            [('OUT_DIR', str(tree / 'other')), ('--hr-out', str(tree / 'data'))],
            [('HR_DIR', str(tree / 'data' / 'hr')), ('unused', None)],
        )
    line = describe(info.value)
    assert '\n' not in line
    assert line.startswith(f'--hr-out {tree / "data"} contains the input HR_DIR ')
    assert 'not even with --overwrite' in line


def test_apart_urls_and_none_pass(tree):
    refuse_outputs_over_inputs(
        [('-o', str(tree / 'other' / 'table.md')), ('x', None)],
        [('--compare', str(tree / 'data' / 'hr' / 'a.png')), ('url', 'http://h/x.pth')],
    )
