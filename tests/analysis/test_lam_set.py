"""The window list, model specs and table of the LAM set mode (basicattn/analysis/lam_set.py)."""

import os.path as osp

import pytest

from basicattn.analysis.lam_set import (
    ModelSpec,
    SetWindow,
    format_table,
    parse_model_spec,
    read_window_list,
)
from basicattn.errors import DataError, UserError


def test_text_list(tmp_path):
    path = tmp_path / 'windows.txt'
    path.write_text('# image row col [gt]\nLR/a.png 10 20\n\n/abs/b.png 3 4 HR/b.png  # two\n')
    assert read_window_list(str(path)) == [
        SetWindow(osp.join(str(tmp_path), 'LR/a.png'), 10, 20, None),
        SetWindow('/abs/b.png', 3, 4, osp.join(str(tmp_path), 'HR/b.png')),
    ]


def test_yaml_list(tmp_path):
    path = tmp_path / 'windows.yml'
    path.write_text(
        '- {image: a.png, window: [1, 2]}\n- {image: b.png, window: [3, 4], gt: g.png}\n'
    )
    assert read_window_list(str(path)) == [
        SetWindow(osp.join(str(tmp_path), 'a.png'), 1, 2, None),
        SetWindow(osp.join(str(tmp_path), 'b.png'), 3, 4, osp.join(str(tmp_path), 'g.png')),
    ]


@pytest.mark.parametrize(
    'name,text,message',
    [
        ('w.txt', 'a.png 1\n', 'line 1: expected IMAGE ROW COL'),
        ('w.txt', 'a.png 1 2\na.png x 2\n', 'line 2: ROW and COL must be ints'),
        ('w.txt', 'a.png -1 2\n', 'line 1: ROW and COL must be >= 0'),
        ('w.txt', '# nothing\n', 'no window listed'),
        ('w.yml', '{image: a.png}\n', 'expected a list'),
        ('w.yml', '- {image: a.png, window: [1]}\n', 'item 0'),
        ('w.yml', '- {image: a.png, window: [1, 2.5]}\n', 'two ints'),
        ('w.yml', '- [unclosed\n', 'not valid YAML'),
    ],
)
def test_bad_lists(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataError, match=message) as info:
        read_window_list(str(path))
    assert str(path) in str(info.value)


def test_missing_list(tmp_path):
    with pytest.raises(FileNotFoundError, match='window list not found'):
        read_window_list(str(tmp_path / 'none.txt'))


def test_model_specs():
    assert parse_model_spec('A2N=w/aan_x2.pt') == ModelSpec('A2N', checkpoint='w/aan_x2.pt')
    spec = parse_model_spec('Bicubic=arch:Bicubic:{"scale": 2}')
    assert spec == ModelSpec('Bicubic', arch='Bicubic', arch_args='{"scale": 2}')
    assert spec.source == 'arch:Bicubic:{"scale": 2}'
    assert parse_model_spec('B=arch:Bicubic').arch_args == '{}'
    for bad in ('aan_x2.pt', '=x.pt', 'A=', 'B=arch:', 'B=arch:Bicubic:[2]', 'B=arch:X:{'):
        with pytest.raises(UserError, match='--model'):
            parse_model_spec(bad)


def test_table():
    models = [
        dict(label='Bicubic', mean_diffusion_index=0.5, mean_psnr=30.123),
        dict(label='A|B', mean_diffusion_index=12.3456, mean_psnr=None),
    ]
    assert format_table(models, 'caption').splitlines() == [
        'caption',
        '',
        '| Model   | DI     | PSNR (dB) |',
        '| :------ | :----: | :-------: |',
        '| Bicubic | 0.500  | 30.12     |',
        '| A\\|B    | 12.346 | -         |',
    ]
