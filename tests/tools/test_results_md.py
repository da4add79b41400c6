"""tools/test.py writes results.md beside metrics.json; --compare merges runs into one table."""

import json
import os
import os.path as osp
import shutil

import pytest


def _table_rows(text):
    """``{method: {column: cell}}`` and the header of a results.md table."""
    table = [line for line in text.splitlines() if line.startswith('|')]
    header = [c.strip() for c in table[0].strip('|').split('|')]
    rows = {}
    for line in table[2:]:
        cells = dict(zip(header, [c.strip() for c in line.strip('|').split('|')]))
        rows[cells['Method']] = cells
    return header, rows


def _cell(means, crop=2):
    return f'{means[f"psnr_y_crop{crop}"]:.2f} / {means[f"ssim_y_crop{crop}"]:.4f}'


@pytest.fixture
def two_sets(tiny_experiment):
    """An untrained tiny EDSR x2 with two test sets (the second: the first image only)."""
    second = {
        'name': 'tinyval2',
        'type': 'PairedImageDataset',
        'dataroot_gt': osp.join(tiny_experiment.root, 'val2'),
    }
    shutil.copytree(osp.join(tiny_experiment.root, 'val'), second['dataroot_gt'])
    os.remove(osp.join(second['dataroot_gt'], 'im1.png'))
    return tiny_experiment('two', **{'datasets.val_second': second, 'val.save_img': False})


def _run(forked_tool, *args):
    out = forked_tool('tools/test.py', *args)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()


def test_results_md_beside_metrics_json_with_both_sets(two_sets, forked_tool):
    lines = _run(forked_tool, '-opt', two_sets)
    metrics_path = lines[-1]  # the last line stays the metrics.json path
    results = osp.join(osp.dirname(metrics_path), 'results.md')
    assert lines[-3] == f'results table written to {results}'
    record = json.load(open(metrics_path))
    assert record['label'] == 'EDSR (two)' and record['network'] == 'EDSR'
    assert record['scale'] == 2 and record['test_cfg']['chop'] is False
    text = open(results, encoding='utf-8').read()
    assert text.startswith('Each cell: PSNR (dB) / SSIM; PSNR and SSIM on the Y channel')
    header, rows = _table_rows(text)
    assert header == ['Scale', 'Method', 'tinyval', 'tinyval2', 'ms/frame']
    means = record['metrics']
    assert means['tinyval'] != means['tinyval2']
    timed = record['runtime']['sets']
    assert rows == {
        'EDSR (two)': {
            'Scale': '×2',
            'Method': 'EDSR (two)',
            'tinyval': _cell(means['tinyval']),
            'tinyval2': _cell(means['tinyval2']),
            'ms/frame': ' / '.join(_ms(timed[s]['ms_per_frame']) for s in ('tinyval', 'tinyval2')),
        }
    }
    assert 'ms/frame: mean test-time forward per output frame on ' in text.splitlines()[0]


def _ms(value):
    return f'{value:.1f}' if value >= 1 else f'{value:.2f}'


def test_compare_merges_runs_with_and_without_running(two_sets, forked_tool, tmp_path):
    first = _run(forked_tool, '-opt', two_sets, '--set', f'path.experiments_root={tmp_path}/a')[-1]
    # a second run, compared with the first: both rows in its results.md
    lines = _run(
        forked_tool,
        '-opt',
        two_sets,
        '--label',
        'Tiny+',
        '--compare',
        first,
        '--set',
        'val.self_ensemble=true',
        f'path.experiments_root={tmp_path}/b',
        '-o',
        str(tmp_path / 'both.md'),
    )
    second = lines[-1]
    assert lines[-3] == f'results table written to {tmp_path}/both.md'
    records = [json.load(open(path)) for path in (first, second)]
    assert records[1]['label'] == 'Tiny+' and records[1]['test_cfg']['self_ensemble'] is True
    assert records[0]['metrics'] != records[1]['metrics']
    expected = {
        label: {s: _cell(m) for s, m in record['metrics'].items()}
        for label, record in zip(('EDSR (two)', 'Tiny+'), records)
    }

    def cells(text):
        header, rows = _table_rows(text)
        assert header == ['Scale', 'Method', 'tinyval', 'tinyval2', 'ms/frame']
        assert list(rows) == ['EDSR (two)', 'Tiny+']  # compared runs above this one
        return {m: {s: row[s] for s in header[2:4]} for m, row in rows.items()}

    assert cells((tmp_path / 'both.md').read_text(encoding='utf-8')) == expected
    # merging only: nothing runs, the table is printed and written to -o (its path last)
    before = _files(tmp_path)
    out = forked_tool('tools/test.py', '--compare', first, second, '-o', str(tmp_path / 'm.md'))
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == str(tmp_path / 'm.md')
    merged = (tmp_path / 'm.md').read_text(encoding='utf-8')
    assert merged in out.stdout and cells(merged) == expected
    assert _files(tmp_path) - before == {'m.md'}


def _files(folder):
    return {
        osp.relpath(osp.join(root, name), folder)
        for root, _, names in os.walk(folder)
        for name in names
    }


def _error_line(out):
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and lines[0].startswith('error: '), out.stderr
    return lines[0]


def test_bad_or_missing_compare_file_is_one_error_line_before_running(
    two_sets, forked_tool, tmp_path
):
    broken = tmp_path / 'broken.json'
    broken.write_text('{"metrics": {"Set5": ')
    other = tmp_path / 'other.json'
    other.write_text(json.dumps({'options': 'x.yml'}))
    for bad, what in ((broken, 'not a JSON file'), (other, 'no "metrics"')):
        out = forked_tool('tools/test.py', '--compare', str(bad))
        assert str(bad) in _error_line(out) and what in out.stderr
    missing = str(tmp_path / 'missing.json')
    results = tmp_path / 'run'
    out = forked_tool(
        'tools/test.py',
        '-opt',
        two_sets,
        '--compare',
        missing,
        '--set',
        f'path.experiments_root={results}',
    )
    assert f'{missing}: not found' in _error_line(out)
    assert not results.exists()  # read before the run: nothing was tested or written
    # two compared runs that give one row two values: refused before the run too
    clash = []
    for value in (30.0, 31.0):
        clash.append(tmp_path / f'clash{value}.json')
        record = {'label': 'X', 'scale': 2, 'metrics': {'S': {'psnr_y_crop2': value}}}
        clash[-1].write_text(json.dumps(record))
    out = forked_tool(
        'tools/test.py',
        '-opt',
        two_sets,
        '--compare',
        *map(str, clash),
        '--set',
        f'path.experiments_root={results}',
    )
    line = _error_line(out)
    assert str(clash[0]) in line and str(clash[1]) in line and '--label' in line
    assert not results.exists()


@pytest.mark.parametrize(
    'args, says',
    [
        ([], 'give -opt'),
        (['--compare', 'a.json', '--label', 'x'], '--label applies to the run of -opt'),
        (['--compare', 'a.json', '--digits', '-1'], '--digits must be between 0 and 10'),
    ],
)
def test_argument_mistakes(forked_tool, args, says):
    out = forked_tool('tools/test.py', *args)
    assert out.returncode == 2 and says in out.stderr, out.stderr


# Set5 Y-PSNR / SSIM of the authors' A2N weights with the authors' --chop protocol (our
# val.chop) and whole-image inference: PSNR and whole-image SSIM as docs/models/a2n.md gives
# them; the chop SSIM as measured here (the paper's Table 5 SSIM, 0.9608 / 0.9279)
A2N_SET5 = {
    (2, True): '38.0627 / 0.9608',
    (2, False): '38.0603 / 0.9607',
    (3, True): '34.4759 / 0.9279',
    (3, False): '34.4684 / 0.9278',
}


@pytest.mark.slow
def test_a2n_official_set5_x2_x3_chop_and_whole_in_one_table(testdata, forked_tool, tmp_path):
    runs = []
    for scale in (2, 3):
        weights = str(tmp_path / f'a2n_official_x{scale}.pth')
        out = forked_tool(
            'tools/convert_model.py',
            '--source',
            'a2n_official',
            '--scale',
            str(scale),
            testdata('weights', 'a2n_official', f'aan_x{scale}.pt'),
            weights,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        set5 = testdata('Set5', f'X{scale}')
        for chop in (True, False):
            lines = _run(
                forked_tool,
                '-opt',
                f'options/test/a2n_official_x{scale}.yml',
                '--checkpoint',
                weights,
                '--set',
                f'datasets.test_set5.dataroot_gt={set5}/HR',
                f'datasets.test_set5.dataroot_lq={set5}/LR',
                f'val.chop={str(chop).lower()}',
                f'path.experiments_root={tmp_path}/x{scale}_{chop}',
            )
            record = json.load(open(lines[-1]))
            label = f'A2N (a2n_official_x{scale}{", chop" if chop else ""})'
            assert record['label'] == label and record['scale'] == scale
            assert record['params'] == 1_036_443  # the paper's Table 5 (x2 and x3)
            assert record['runtime']['sets']['Set5']['frames'] == 5
            own = open(osp.join(osp.dirname(lines[-1]), 'results.md'), encoding='utf-8').read()
            means = record['metrics']['Set5']
            assert _table_rows(own)[1][label]['Set5'] == _cell(means, crop=scale)  # 2 decimals
            runs.append((scale, chop, label, lines[-1], means))
    merged = tmp_path / 'results.md'
    out = forked_tool(
        'tools/test.py', '--compare', *[r[3] for r in runs], '--digits', '4', '-o', str(merged)
    )
    assert out.returncode == 0, out.stderr[-2000:]
    text = merged.read_text(encoding='utf-8')
    print(text)
    header, rows = _table_rows(text)
    assert header == ['Scale', 'Method', 'Set5', 'ms/frame']
    assert list(rows) == [r[2] for r in runs]
    for scale, chop, label, _, means in runs:
        assert rows[label]['Scale'] == f'×{scale}'
        assert rows[label]['Set5'] == f'{means[f"psnr_y_crop{scale}"]:.4f} / ' + (
            f'{means[f"ssim_y_crop{scale}"]:.4f}'
        )
        assert rows[label]['Set5'] == A2N_SET5[scale, chop]
