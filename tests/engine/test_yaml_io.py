"""Option-file YAML: YAML 1.2 floats, plain scalars only, readable errors."""

import pytest

from basicattn.engine.yaml_io import dump_yaml, load_yaml_file, parse_yaml_scalar
from basicattn.errors import OptionError


def _write(tmp_path, text, name='opt.yml'):
    path = tmp_path / name
    path.write_text(text, encoding='utf-8')
    return str(path)


@pytest.mark.parametrize(
    'text, expected',
    [
        ('1e-4', 1e-4),
        ('5E3', 5000.0),
        ('.5', 0.5),
        ('1.', 1.0),
        ('+1e3', 1000.0),
        ('1e+4', 1e4),
        ('-2.5e-3', -2.5e-3),
        ('3.0', 3.0),
        ('.inf', float('inf')),
    ],
)
def test_float_forms_are_floats(text, expected):
    value = parse_yaml_scalar(text)
    assert type(value) is float
    assert value == expected


@pytest.mark.parametrize('text, expected', [('-.5', -0.5), ('+.5', 0.5)])
def test_signed_leading_dot_floats(text, expected):
    assert parse_yaml_scalar(text) == expected


@pytest.mark.parametrize('text, expected', [('1000', 1000), ('-3', -3), ('0', 0)])
def test_ints_stay_ints(text, expected):
    value = parse_yaml_scalar(text)
    assert type(value) is int and value == expected


def test_file_values(tmp_path):
    path = _write(
        tmp_path,
        '\n'.join(
            [
                'lr: 1e-4',
                'big: 5E3',
                'half: .5',
                'iters: 300000',
                'name: EDSR_x2',
                'quoted: "1e-4"',
                'milestones: [100, 200]',
                'betas: [0.9, 0.99]',
                'nothing: null',
                'tilde: ~',
                'flag: true',
                'nested: {a: 1e-3, b: [1e-2, x]}',
            ]
        ),
    )
    data = load_yaml_file(path)
    assert data['lr'] == 1e-4 and isinstance(data['lr'], float)
    assert data['big'] == 5000.0 and isinstance(data['big'], float)
    assert data['half'] == 0.5
    assert data['iters'] == 300000 and type(data['iters']) is int
    assert data['name'] == 'EDSR_x2'
    assert data['quoted'] == '1e-4'
    assert data['milestones'] == [100, 200] and all(type(m) is int for m in data['milestones'])
    assert data['betas'] == [0.9, 0.99]
    assert data['nothing'] is None and data['tilde'] is None
    assert data['flag'] is True
    assert data['nested'] == {'a': 1e-3, 'b': [1e-2, 'x']}


def test_empty_file_is_empty_mapping(tmp_path):
    assert load_yaml_file(_write(tmp_path, '')) == {}


def test_bad_yaml_names_the_file(tmp_path):
    path = _write(tmp_path, 'a: [1, 2\nb: 3\n', name='broken_opt.yml')
    with pytest.raises(ValueError) as info:
        load_yaml_file(path)
    assert path in str(info.value)
    assert 'not valid YAML' in str(info.value)


@pytest.mark.parametrize(
    'text, kind', [('- a\n- b\n', 'list'), ('just text\n', 'str'), ('42\n', 'int')]
)
def test_non_mapping_top_level(tmp_path, text, kind):
    path = _write(tmp_path, text, name='listy.yml')
    with pytest.raises(ValueError) as info:
        load_yaml_file(path)
    message = str(info.value)
    assert path in message and 'mapping' in message and kind in message


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_yaml_file(str(tmp_path / 'absent.yml'))


@pytest.mark.parametrize(
    'text',
    [
        "!!python/object/apply:os.system ['echo hi']",
        '!!python/name:os.system',
    ],
)
def test_python_tags_are_never_constructed(tmp_path, text):
    with pytest.raises(ValueError):
        load_yaml_file(_write(tmp_path, f'x: {text}\n'))
    # as an override value, unsafe text simply stays text
    assert parse_yaml_scalar(text) == text


@pytest.mark.parametrize(
    'text, expected',
    [
        ('[1, 2]', [1, 2]),
        ('{a: 1}', {'a': 1}),
        ('null', None),
        ('~', None),
        ('true', True),
        ('hello', 'hello'),
        ("__import__('os')", "__import__('os')"),
        ('[1, 2', '[1, 2'),
    ],
)
def test_override_literals(text, expected):
    assert parse_yaml_scalar(text) == expected


def test_dump_roundtrip_keeps_order_and_floats(tmp_path):
    data = {'z': 1, 'a': {'lr': 1e-4, 'milestones': [1, 2]}, 'name': 'x'}
    text = dump_yaml(data)
    assert text.index('z:') < text.index('a:') < text.index('name:')
    assert load_yaml_file(_write(tmp_path, text)) == data


def test_key_written_twice_is_an_error(tmp_path):
    path = tmp_path / 'twice.yml'
    path.write_text('train:\n  total_iter: 5\n  lr: 1\n  total_iter: 6\n', encoding='utf-8')
    with pytest.raises(OptionError) as info:
        load_yaml_file(str(path))
    message = str(info.value)
    assert message.startswith(f'{path}: not valid YAML')
    assert "key 'total_iter' is written twice (first on line 2)" in message and 'line 4' in message
