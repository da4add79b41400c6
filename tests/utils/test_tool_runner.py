"""basicattn.utils.tool_runner: user mistakes become one ``error:`` line; bugs keep tracebacks."""

import errno

import pytest

from basicattn.errors import CheckpointError, DataError, UserError
from basicattn.utils.tool_runner import (
    EXIT_INTERRUPTED,
    EXIT_USER_ERROR,
    describe,
    first_line_of_worker_error,
    run_tool,
)


def _raiser(err):
    def work(argv):
        raise err

    return work


@pytest.mark.parametrize(
    'err,expected',
    [
        (UserError('train.total_iter: must be >= 1'), 'train.total_iter: must be >= 1'),
        (DataError('clip calendar: frame 3 is missing'), 'clip calendar: frame 3 is missing'),
        (CheckpointError('x.pth: not a checkpoint'), 'x.pth: not a checkpoint'),
        (FileNotFoundError(errno.ENOENT, 'No such file or directory', 'data/HR'), 'data/HR'),
        (OSError(errno.ENOSPC, 'No space left on device', 'exp/iter_4.pth'), 'exp/iter_4.pth'),
        (PermissionError(errno.EACCES, 'Permission denied', '/root/x'), '/root/x'),
    ],
)
def test_user_errors_print_one_line(capsys, err, expected):
    assert run_tool(_raiser(err), []) == EXIT_USER_ERROR
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ') and expected in lines[0]


def test_full_disk_says_what_to_do(capsys):
    run_tool(_raiser(OSError(errno.ENOSPC, 'No space left on device', 'out.png')), [])
    assert 'free some space' in capsys.readouterr().err


@pytest.mark.parametrize(
    'err', [ZeroDivisionError('bug'), KeyError('epoch'), TypeError('x'), OSError('no errno')]
)
def test_bugs_keep_their_traceback(err):
    with pytest.raises(type(err)):
        run_tool(_raiser(err), [])
    assert describe(err) is None


def test_debug_flag_and_variable_keep_the_traceback(monkeypatch):
    with pytest.raises(UserError):
        run_tool(_raiser(UserError('x')), ['--debug'])
    monkeypatch.setenv('BASICATTN_DEBUG', '1')
    with pytest.raises(UserError):
        run_tool(_raiser(UserError('x')), [])


def test_interrupt(capsys):
    assert run_tool(_raiser(KeyboardInterrupt()), []) == EXIT_INTERRUPTED
    assert capsys.readouterr().err.startswith('error: interrupted')


def test_error_from_a_dataloader_worker_keeps_only_its_message():
    text = (
        'Caught DataError in DataLoader worker process 0.\nOriginal Traceback (most recent '
        'call last):\n  File "x.py", line 1, in f\nbasicattn.errors.DataError: a.png: '
        'cannot decode\n'
    )
    assert first_line_of_worker_error(text) == 'a.png: cannot decode'
    assert describe(DataError(text)) == 'a.png: cannot decode'


def test_subclasses_keep_their_builtin_bases():
    """Code and tests that catch ValueError / RuntimeError still catch these."""
    assert issubclass(DataError, ValueError) and issubclass(CheckpointError, RuntimeError)
    assert type(DataError('a'))('b').args == ('b',)  # one-argument re-raise works


def test_path_errors_raised_with_a_message_are_user_errors(capsys):
    assert run_tool(_raiser(FileExistsError('out/f0.png exists; pass --overwrite')), []) == 2
    assert capsys.readouterr().err == 'error: out/f0.png exists; pass --overwrite\n'
