"""Option-file YAML: YAML 1.2 floats, plain scalars only, readable errors."""

import pytest

from basicattn.config.yaml_io import dump_yaml, load_yaml_file, parse_yaml_scalar
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


# --------------------------------------------------------------------------
# bounds (issue 22): alias bombs, deep nesting, binary content
# --------------------------------------------------------------------------


def _billion_laughs(levels=9):
    """A classic alias bomb nested in ``train.paramwise_cfg``: 9**10 strings."""
    lines = [
        'name: bomb',
        'train:',
        '  paramwise_cfg:',
        '    l0: &l0 [' + ', '.join(['lol'] * 9) + ']',
    ]
    for i in range(1, levels + 1):
        lines.append(f'    l{i}: &l{i} [' + ', '.join([f'*l{i - 1}'] * 9) + ']')
    return '\n'.join(lines) + '\n'


def test_alias_bomb_fails_fast_with_one_line(tmp_path):
    import time

    path = _write(tmp_path, _billion_laughs())
    start = time.perf_counter()
    with pytest.raises(OptionError) as info:
        load_yaml_file(path)
    elapsed = time.perf_counter() - start
    message = str(info.value)
    assert elapsed < 2, elapsed  # unbounded, it runs for minutes and gigabytes
    assert '\n' not in message
    assert message.startswith(f'{path}: line ') and 'billion laughs' in message
    # list l_i expands to s_i = (9**(i + 2) - 1) / 8 nodes; with the 17 mapping
    # nodes and keys, minus the 36 distinct nodes written, that is what aliases add
    expanded = sum((9 ** (i + 2) - 1) // 8 for i in range(10)) + 17
    assert f'expand to {expanded - 36:,} more values' in message


def test_small_alias_use_still_works(tmp_path):
    text = 'base: &b {lr: 1e-4, betas: [0.9, 0.99]}\noptim: {<<: *b, type: Adam}\nagain: *b\n'
    data = load_yaml_file(_write(tmp_path, text))
    assert data['optim'] == {'lr': 1e-4, 'betas': [0.9, 0.99], 'type': 'Adam'}
    assert data['again'] == {'lr': 1e-4, 'betas': [0.9, 0.99]}


def test_recursive_alias_is_refused(tmp_path):
    with pytest.raises(OptionError, match=r'opt.yml: line 2: an alias .* contains it'):
        load_yaml_file(_write(tmp_path, 'train:\n  paramwise_cfg: &a {x: *a}\n'))


@pytest.mark.parametrize(
    'text, line',
    [
        ('a: ' + '[' * 3000 + ']' * 3000 + '\n', 1),
        ('a:\n' + ''.join('  ' * i + f'k{i}:\n' for i in range(1, 200)), 64),
    ],
    ids=['flow', 'block'],
)
def test_deep_nesting_is_one_line_not_a_recursion_error(tmp_path, text, line):
    with pytest.raises(OptionError) as info:
        load_yaml_file(_write(tmp_path, text))
    assert str(info.value).endswith('(is this the right file?)')
    assert f': line {line}: mappings and lists nest more than 64 levels' in str(info.value)


def test_aliases_that_nest_too_deep_are_refused(tmp_path):
    # a_i is i + 2 levels deep (lists and the scalar x): a63, on line 64, is 65
    lines = ['a0: &a0 [x]'] + [f'a{i}: &a{i} [*a{i - 1}]' for i in range(1, 80)]
    with pytest.raises(OptionError, match=r'line 64: aliases \(\*name\) nest'):
        load_yaml_file(_write(tmp_path, '\n'.join(lines) + '\n'))


def test_set_value_is_bounded_too():
    with pytest.raises(OptionError, match=r'^--set train.x: line 1: mappings and lists nest'):
        parse_yaml_scalar('[' * 500 + ']' * 500, '--set train.x')
    bomb = '[' + ', '.join(f'&a{i} [' + ', '.join([f'*a{i - 1}'] * 9) + ']' for i in range(1, 9))
    bomb = '[&a0 [lol, lol], ' + bomb[1:] + ']'
    with pytest.raises(OptionError, match='billion laughs'):
        parse_yaml_scalar(bomb, '--set train.x')


def test_non_utf8_byte_is_named_with_its_offset(tmp_path):
    path = tmp_path / 'latin1.yml'
    path.write_bytes('name: café\nscale: 2\n'.encode('latin-1'))
    with pytest.raises(OptionError) as info:
        load_yaml_file(str(path))
    assert str(info.value) == (
        f'{path}: not UTF-8 text: byte 0xe9 at byte offset 9 (line 1); save the option file '
        'as UTF-8 (is this the right file?)'
    )


def test_binary_content_is_named_with_its_offset(tmp_path):
    path = tmp_path / 'weights.yml'
    path.write_bytes(b'name: x\nscale: 2\x00\x01\x02')
    with pytest.raises(OptionError, match=r'character 0x00 at byte offset 16 \(line 2\)'):
        load_yaml_file(str(path))


def test_utf8_with_byte_order_mark_is_read(tmp_path):
    path = tmp_path / 'bom.yml'
    path.write_bytes('\ufeffname: café\n'.encode('utf-8'))
    assert load_yaml_file(str(path)) == {'name': 'café'}
