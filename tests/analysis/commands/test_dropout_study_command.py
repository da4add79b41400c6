"""``tools/analyze.py dropout-study``: found as a command; user mistakes are one line."""

import importlib.util
import os.path as osp

import pytest
from conftest import REPO_ROOT

from basicattn.analysis.commands import available_commands


def _analyze():
    """``tools/analyze.py`` imported as a module (it puts tools/ on the path itself)."""
    path = osp.join(REPO_ROOT, 'tools', 'analyze.py')
    spec = importlib.util.spec_from_file_location('_analyze_under_test', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_command_is_found():
    module = available_commands()['dropout-study']
    assert module.__name__.endswith('.dropout_study') and 'Table-2' in module.HELP


def test_defaults_are_the_rows_of_table_2():
    args = _analyze().parse_args(['dropout-study', '-opt', 'x.yml', '--out', 'o'])
    assert args.variants == ['all', 'none', '1-5', '6-10', 'even']
    assert args.stop_at is None and args.set == []


@pytest.mark.parametrize(
    'extra,message',
    [
        (['--variants', 'all', '0-3'], "error: --variants: '0-3' names blocks outside 1..10"),
        (['--stop-at', '0'], 'error: --stop-at must be >= 1, got 0'),
    ],
)
def test_mistakes_are_one_error_line(tmp_path, capsys, extra, message):
    option_file = osp.join(
        REPO_ROOT, 'options', 'train', 'attention_dropout', 'a2n_probe_x4_all.yml'
    )
    out = tmp_path / 'study'
    code = _analyze().main(['dropout-study', '-opt', option_file, '--out', str(out), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith(message) and '\n' not in err, err
    assert not out.exists()
