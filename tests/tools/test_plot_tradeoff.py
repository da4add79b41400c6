"""tools/plot_tradeoff.py: a parameters-vs-PSNR figure from metrics.json files; one-line errors."""

import json
import os
import xml.etree.ElementTree as ET

import pytest
from conftest import tool_module

from basicattn.utils.img_util import imread

SVG = '{http://www.w3.org/2000/svg}'


@pytest.fixture(scope='module')
def plot():
    return tool_module('plot_tradeoff')


def _record(folder, name, label, value, params=1_036_443, sets=('Urban100',), **extra):
    content = {
        'label': label,
        'scale': 2,
        'metrics': {s: {'psnr_y_crop2': value, 'ssim_y_crop2': 0.93} for s in sets},
        **extra,
    }
    if params is not None:
        content['params'] = params
    path = folder / name
    path.write_text(json.dumps(content))
    return str(path)


def _run(plot, capsys, *args):
    code = plot.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _circles(path):
    root = ET.parse(path).getroot()
    return {
        c.find(f'{SVG}title').text: c
        for c in root.iter(f'{SVG}circle')
        if c.find(f'{SVG}title') is not None
    }


def test_runs_and_published_points_in_png_and_svg(plot, capsys, tmp_path):
    a2n = _record(tmp_path, 'a2n.json', 'A2N', 32.43)
    old = _record(tmp_path, 'old.json', 'A2N-M', 32.34, params=None)  # before counts
    png, svg = tmp_path / 'fig' / 'urban.png', tmp_path / 'fig' / 'urban.svg'
    code, out, err = _run(
        plot,
        capsys,
        a2n,
        old,
        '--set',
        'Urban100',
        '--metric',
        'psnr_y_crop2',
        '--params',
        'A2N-M=831,643',
        '--point',
        'CARN=1592K:31.92',
        '--point',
        'SRCNN=0.057M:29.50',
        '--out',
        png,
        '--out',
        svg,
    )
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[-2:] == [str(png), str(svg)]
    assert 'A2N-M: 831,643 parameters, 32.34 (measured)' in lines
    assert 'SRCNN: 57,000 parameters, 29.5 (published)' in lines
    assert imread(str(png)).shape == (480, 720, 3)
    circles = _circles(svg)
    assert list(circles) == ['A2N', 'A2N-M', 'CARN', 'SRCNN']
    assert [float(c.get('data-params')) for c in circles.values()] == pytest.approx(
        [1_036_443, 831_643, 1_592_000, 57_000], rel=1e-5
    )
    x = {k: float(c.get('cx')) for k, c in circles.items()}
    y = {k: float(c.get('cy')) for k, c in circles.items()}
    # where the data says: pixel distances proportional to parameter and PSNR distances
    # (the SVG writes coordinates to 0.01 px)
    assert (x['A2N'] - x['SRCNN']) / (x['CARN'] - x['SRCNN']) == pytest.approx(
        (1_036_443 - 57_000) / (1_592_000 - 57_000), abs=1e-4
    )
    assert (y['A2N-M'] - y['SRCNN']) / (y['A2N'] - y['SRCNN']) == pytest.approx(
        (32.34 - 29.50) / (32.43 - 29.50), abs=1e-4
    )
    texts = [t.text for t in ET.parse(svg).getroot().iter(f'{SVG}text')]
    assert 'Urban100 ×2: psnr_y_crop2' in texts and 'Parameters (K)' in texts


def _error(plot, capsys, *args):
    code, out, err = _run(plot, capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2 and lines[-1].startswith(('error: ', 'usage', 'plot_tradeoff.py: error')), err
    assert len(lines) < 10 and 'Traceback' not in err
    return err


def _usage_error(plot, capsys, *args):
    with pytest.raises(SystemExit) as raised:
        plot.main([str(a) for a in args])
    assert raised.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    'case, says',
    [
        ('missing-set', "no set 'Manga109' (it has Urban100)"),
        ('missing-metric', "no metric 'psnr_rgb_crop2' (it has psnr_y_crop2, ssim_y_crop2)"),
        ('not-json', 'not a JSON file'),
        ('not-a-record', 'no "metrics" table'),
        ('missing-file', 'not found'),
        ('no-params', "give --params 'Old=N'"),
        ('unknown-params-label', '--params Nobody: no run has that label'),
        ('same-label', "both labelled 'A2N'"),
        ('output-is-input', 'never replaces an input'),
        ('log-x-zero', '--log-x: Bicubic ('),
    ],
)
def test_bad_inputs_one_error_line_and_the_output_untouched(plot, capsys, tmp_path, case, says):
    good = _record(tmp_path, 'good.json', 'A2N', 32.43)
    out = tmp_path / 'fig.png'
    out.write_bytes(b'the figure of yesterday')
    args = [good, '--set', 'Urban100', '--metric', 'psnr_y_crop2', '--out', out]
    culprit = good
    if case == 'missing-set':
        args[2] = 'Manga109'
    elif case == 'missing-metric':
        args[4] = 'psnr_rgb_crop2'
    elif case == 'not-json':
        culprit = str(tmp_path / 'broken.json')
        open(culprit, 'w').write('{"metrics": ')
        args.append(culprit)
    elif case == 'not-a-record':
        culprit = str(tmp_path / 'scalars.json')
        open(culprit, 'w').write('{"psnr": 30.1}')
        args.append(culprit)
    elif case == 'missing-file':
        culprit = str(tmp_path / 'nowhere' / 'metrics.json')
        args.append(culprit)
    elif case == 'no-params':
        culprit = _record(tmp_path, 'old.json', 'Old', 31.0, params=None)
        args.append(culprit)
    elif case == 'unknown-params-label':
        culprit = 'Nobody'
        args += ['--params', 'Nobody=5K']
    elif case == 'same-label':
        culprit = _record(tmp_path, 'again.json', 'A2N', 32.0)
        args.append(culprit)
    elif case == 'output-is-input':
        culprit = str(tmp_path / 'record.svg')  # a metrics.json under an odd name
        os.rename(good, culprit)
        args = [culprit, *args[1:-1], culprit]
    elif case == 'log-x-zero':
        culprit = _record(tmp_path, 'bicubic.json', 'Bicubic', 29.0, params=0)
        args += [culprit, '--log-x']
    before = {p: open(p, 'rb').read() for p in map(str, tmp_path.iterdir()) if os.path.isfile(p)}
    err = _error(plot, capsys, *args)
    assert err.strip().splitlines()[-1].startswith('error: ')
    assert says in err and str(culprit) in err
    after = {p: open(p, 'rb').read() for p in map(str, tmp_path.iterdir()) if os.path.isfile(p)}
    assert after == before  # nothing written, nothing replaced


@pytest.mark.parametrize(
    'extra, says',
    [
        (['--params', 'A2N=lots'], "'lots' is not a parameter count"),
        (['--point', 'CARN=1592K'], 'expected LABEL=PARAMS:VALUE'),
        (['--out', 'fig.jpg'], '--out fig.jpg: the figure is a .png or .svg file'),
    ],
)
def test_argument_mistakes(plot, capsys, tmp_path, extra, says):
    good = _record(tmp_path, 'good.json', 'A2N', 32.43)
    args = [good, '--set', 'Urban100', '--metric', 'psnr_y_crop2', '--out', tmp_path / 'a.png']
    assert says in _usage_error(plot, capsys, *args, *extra)
    assert not (tmp_path / 'a.png').exists()
    assert 'give metrics.json files' in _usage_error(
        plot, capsys, '--set', 'S', '--metric', 'm', '--out', 'x.png'
    )


def test_parameter_counts(plot):
    count = plot.parameter_count
    assert [count('1036443'), count('1,036,443'), count('1036K'), count('1.04M')] == [
        1_036_443,
        1_036_443,
        1_036_000,
        1_040_000,
    ]
