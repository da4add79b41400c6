"""`--set` key paths and `custom_imports` failures: one clear problem, never a guess."""

import sys

import pytest

from basicattn.config.options import OptionError, apply_overrides, import_custom_modules


@pytest.mark.parametrize(
    'item',
    [
        'train..total_iter=3',
        '.train.total_iter=3',
        'train.total_iter.=3',
        'train. .total_iter=3',
        '.=3',
        '..=1',
    ],
)
def test_empty_key_segment_is_an_error_naming_the_override(item):
    opt = {'train': {'total_iter': 5}}
    with pytest.raises(OptionError) as info:
        apply_overrides(opt, [item])
    assert len(info.value.problems) == 1
    assert repr(item) in info.value.problems[0] and 'empty key' in info.value.problems[0]
    assert opt == {'train': {'total_iter': 5}}  # nothing was set


@pytest.mark.parametrize('item', ['=3', ' =3'])
def test_empty_key_path_is_an_error(item):
    with pytest.raises(OptionError, match='empty key path'):
        apply_overrides({}, [item])


def test_good_override_still_works():
    opt = apply_overrides({}, [' train.total_iter =3'])
    assert opt == {'train': {'total_iter': 3}}


@pytest.fixture
def module_dir(tmp_path, monkeypatch):
    """A folder with an option file; modules written there are importable by name."""
    (tmp_path / 'opt.yml').write_text('')
    yield tmp_path
    for name in [n for n in sys.modules if n.startswith('h3_custom_')]:
        del sys.modules[name]
    while str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))


def _problem(module_dir, name):
    with pytest.raises(OptionError) as info:
        import_custom_modules([name], str(module_dir), source=str(module_dir / 'opt.yml'))
    err = info.value
    assert err.source == str(module_dir / 'opt.yml')
    assert len(err.problems) == 1 and '\n' not in err.problems[0]
    assert len(str(err).splitlines()) <= 3
    return err.problems[0]


def test_module_raising_at_import_names_file_module_and_message(module_dir):
    (module_dir / 'h3_custom_boom.py').write_text('x = 1\nraise RuntimeError("boom")\n')
    problem = _problem(module_dir, 'h3_custom_boom')
    path = str(module_dir / 'h3_custom_boom.py')
    assert problem.startswith(
        f"custom_imports: importing 'h3_custom_boom' ({path}) failed: RuntimeError: boom (line 2)"
    )
    assert f'({str(module_dir)})' not in problem  # the file, not the folder


def test_module_with_syntax_error(module_dir):
    (module_dir / 'h3_custom_syntax.py').write_text('def f(:\n    pass\n')
    problem = _problem(module_dir, 'h3_custom_syntax')
    path = str(module_dir / 'h3_custom_syntax.py')
    assert f"importing 'h3_custom_syntax' ({path}) failed: SyntaxError: " in problem
    assert '(line 1)' in problem


def test_module_whose_own_import_is_missing(module_dir):
    (module_dir / 'h3_custom_needs.py').write_text('import h3_no_such_dependency\n')
    problem = _problem(module_dir, 'h3_custom_needs')
    assert str(module_dir / 'h3_custom_needs.py') in problem
    assert "ModuleNotFoundError: No module named 'h3_no_such_dependency'" in problem


def test_error_raised_in_another_file_names_both(module_dir):
    (module_dir / 'h3_custom_helper.py').write_text('def f():\n    raise ValueError("bad")\n')
    (module_dir / 'h3_custom_user.py').write_text('import h3_custom_helper\nh3_custom_helper.f()\n')
    problem = _problem(module_dir, 'h3_custom_user')
    assert str(module_dir / 'h3_custom_user.py') in problem
    assert f'raised at {module_dir / "h3_custom_helper.py"}:2' in problem


def test_missing_module_keeps_its_message(module_dir):
    problem = _problem(module_dir, 'h3_custom_absent')
    assert problem == (
        "custom_imports: cannot import 'h3_custom_absent': No module named 'h3_custom_absent'"
    )


def test_read_options_reports_the_option_file(module_dir):
    from basicattn.config.options import read_options

    (module_dir / 'h3_custom_boom2.py').write_text('raise RuntimeError("boom2")\n')
    (module_dir / 'opt.yml').write_text('name: x\nscale: 2\ncustom_imports: [h3_custom_boom2]\n')
    with pytest.raises(OptionError) as info:
        read_options(str(module_dir / 'opt.yml'))
    text = str(info.value)
    assert f"{module_dir / 'opt.yml'}: custom_imports: importing 'h3_custom_boom2'" in text
    assert 'RuntimeError: boom2' in text


@pytest.mark.parametrize('value', [[''], ['ok_name', 3], ' '])
def test_custom_imports_must_be_module_names(value):
    from basicattn.config.options import validate_options

    with pytest.raises(OptionError, match='custom_imports: expected a module name'):
        validate_options({'name': 'x', 'scale': 2, 'custom_imports': value}, source='x.yml')
