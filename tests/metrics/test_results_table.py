"""The paper-layout results table built from metrics.json records."""

import json

import pytest

from basicattn.errors import UserError
from basicattn.metrics.results_table import (
    Record,
    default_label,
    format_results_table,
    inference_mode,
    read_record,
    record_from_dict,
)


def parse(text):
    """``(caption, header, rows)`` of a table written by format_results_table."""
    lines = text.strip().splitlines()
    caption, table = lines[0], [line for line in lines[1:] if line.startswith('|')]

    def cells(line):
        return [c.strip() for c in line.strip('|').split('|')]

    header = cells(table[0])
    assert all(set(c) <= set(':-') for c in cells(table[1]))  # the alignment rule
    return caption, header, [dict(zip(header, cells(line))) for line in table[2:]]


def x2(label='A', **sets):
    return Record(
        label, 2, {name: {'psnr_y_crop2': p, 'ssim_y_crop2': s} for name, (p, s) in sets.items()}
    )


def test_one_run_papers_format_sets_in_order():
    record = x2(Set14=(33.71234, 0.91849), Set5=(38.06267, 0.96077))
    caption, header, rows = parse(format_results_table([record]))
    assert header == ['Scale', 'Method', 'Set14', 'Set5']  # the order of the file
    assert rows == [
        {'Scale': '×2', 'Method': 'A', 'Set14': '33.71 / 0.9185', 'Set5': '38.06 / 0.9608'}
    ]
    assert caption.startswith('Each cell: PSNR (dB) / SSIM; PSNR and SSIM on the Y channel')
    assert 'crop = scale' in caption


def test_digits_sets_psnr_decimals_only():
    _, _, rows = parse(format_results_table([x2(Set5=(38.06267, 0.96077))], digits=4))
    assert rows[0]['Set5'] == '38.0627 / 0.9608'
    with pytest.raises(ValueError, match='digits'):
        format_results_table([x2(Set5=(1.0, 1.0))], digits=-1)
    with pytest.raises(ValueError, match='no records'):
        format_results_table([])


def test_runs_merged_rows_grouped_by_scale_missing_cells_dashed():
    ours_x3 = Record('Ours', 3, {'Set5': {'psnr_y_crop3': 34.4684, 'ssim_y_crop3': 0.9278}})
    other_x2 = x2('Other', Urban100=(32.1, 0.93))
    ours_x2 = x2('Ours', Set5=(38.0603, 0.9607))
    _, header, rows = parse(format_results_table([ours_x3, other_x2, ours_x2]))
    # sets in order of first appearance over the records; rows by scale, stable within one
    assert header == ['Scale', 'Method', 'Set5', 'Urban100']
    assert [(r['Scale'], r['Method']) for r in rows] == [
        ('×2', 'Other'),
        ('×2', 'Ours'),
        ('×3', 'Ours'),
    ]
    assert rows[0] == {'Scale': '×2', 'Method': 'Other', 'Set5': '-', 'Urban100': '32.10 / 0.9300'}
    assert rows[1]['Set5'] == '38.06 / 0.9607' and rows[1]['Urban100'] == '-'
    assert rows[2]['Set5'] == '34.47 / 0.9278'


def test_one_label_and_scale_from_two_runs_fill_one_row():
    first, second = x2('A', Set5=(38.0, 0.96)), x2('A', Set14=(33.0, 0.91))
    _, _, rows = parse(format_results_table([first, second]))
    assert rows == [
        {'Scale': '×2', 'Method': 'A', 'Set5': '38.00 / 0.9600', 'Set14': '33.00 / 0.9100'}
    ]
    # the same run given twice is one row, not an error
    assert parse(format_results_table([first, first]))[2] == parse(format_results_table([first]))[2]


def test_one_cell_from_two_runs_with_other_values_asks_for_labels():
    first = x2('A', Set5=(38.0, 0.96))
    first.source = 'a/metrics.json'
    second = x2('A', Set5=(37.0, 0.95))
    second.source = 'b/metrics.json'
    with pytest.raises(UserError) as err:
        format_results_table([first, second])
    message = str(err.value)
    assert 'a/metrics.json' in message and 'b/metrics.json' in message
    assert 'Set5' in message and '--label' in message


def test_other_metrics_and_other_crops_in_the_cell_as_the_caption_says():
    plain = Record('Bicubic', None, {'Set5': {'psnr_rgb_crop0': 30.123456}})
    video = Record('V', 4, {'Vid4': {'psnr_y_crop4': 27.0, 'psnr_y_crop0': 26.5, 'tof': 0.123456}})
    caption, header, rows = parse(format_results_table([video, plain]))
    assert header == ['Scale', 'Method', 'Vid4', 'Set5']
    assert caption.startswith(
        'Each cell: PSNR-Y (dB) / PSNR-Y-crop0 (dB) / PSNR-RGB-crop0 (dB) / tof;'
    )
    assert 'PSNR-Y on the Y channel (BT.601), crop = scale' in caption
    assert 'PSNR-Y-crop0 on the Y channel (BT.601), crop 0' in caption
    assert 'PSNR-RGB-crop0 on RGB, crop 0' in caption
    assert rows[0]['Vid4'] == '27.00 / 26.50 / - / 0.1235'
    assert rows[1] == {'Scale': '-', 'Method': 'Bicubic', 'Vid4': '-', 'Set5': '- / - / 30.12 / -'}


def test_no_scale_column_when_no_record_knows_its_scale():
    record = Record('old', None, {'Set5': {'psnr_y_crop2': 38.0}})
    caption, header, rows = parse(format_results_table([record]))
    assert header == ['Method', 'Set5'] and rows[0]['Set5'] == '38.00'
    assert 'crop 2' in caption  # the crop cannot be said relative to an unknown scale


def test_inference_mode_and_default_label():
    assert inference_mode(None) == '' and inference_mode({'chop': False, 'tile': None}) == ''
    cfg = {'self_ensemble': True, 'chop': False, 'tile': 64, 'amp': 'bf16'}
    assert inference_mode(cfg) == 'self-ensemble, tile 64, bf16'
    assert default_label('A2N', 'a2n_x2', '/w/a2n_x2.pth', {'chop': True}) == 'A2N (a2n_x2, chop)'
    assert default_label('EDSR', 'tiny', '/exp/iter_6.pth') == 'EDSR (tiny, iter_6)'
    assert default_label('Bicubic', None) == 'Bicubic'
    assert default_label(None, 'tiny', None, {'chop': True}) == 'tiny (chop)'


def test_record_from_dict_reads_new_and_old_records():
    new = {'label': 'Mine', 'scale': 3, 'metrics': {'Set5': {'psnr_y_crop3': 34}}}
    assert record_from_dict(new, 'n.json') == Record(
        'Mine', 3, {'Set5': {'psnr_y_crop3': 34.0}}, 'n.json'
    )
    old = {
        'options': '/o/options/test/edsr_x2.yml',
        'checkpoint': '/w/net_g_100.pth',
        'metrics': {'Set5': {'psnr_y_crop2': 37.9}},
    }
    record = record_from_dict(old, 'o.json')
    assert record.label == 'edsr_x2 (net_g_100)' and record.scale is None


@pytest.mark.parametrize(
    'content',
    [
        [],
        {'metrics': [1]},
        {'options': 'x'},
        {'metrics': {'Set5': 3}},
        {'metrics': {'Set5': {'p': 'a'}}},
    ],
)
def test_not_a_record_names_the_file(content):
    with pytest.raises(UserError, match=r'^bad\.json: .*tools/test\.py'):
        record_from_dict(content, 'bad.json')


def test_read_record_names_the_file(tmp_path):
    path = tmp_path / 'metrics.json'
    path.write_text(json.dumps({'label': 'L', 'scale': 2, 'metrics': {'S': {'psnr_y_crop2': 1}}}))
    assert read_record(str(path)).label == 'L'
    for name, text in (('broken.json', '{"metrics": '), ('binary.json', None)):
        bad = tmp_path / name
        if text is None:
            bad.write_bytes(b'\xff\xfe\x00')
        else:
            bad.write_text(text)
        with pytest.raises(UserError, match=f'^{bad}: not a JSON file'):
            read_record(str(bad))
    with pytest.raises(UserError, match=f'^{tmp_path}/missing.json: not found'):
        read_record(str(tmp_path / 'missing.json'))
    with pytest.raises(UserError, match=f'^{tmp_path}: is a folder'):
        read_record(str(tmp_path))


def test_an_infinite_psnr_written_by_test_py_reads_back():
    """tools/test.py writes an infinite PSNR as "inf" (strict JSON); --compare reads it."""
    from basicattn.utils.strict_json import dumps

    text = dumps({'label': 'Id', 'scale': 2, 'metrics': {'S': {'psnr_y_crop2': float('inf')}}})
    record = record_from_dict(json.loads(text), 'id.json')
    assert record.metrics == {'S': {'psnr_y_crop2': float('inf')}}
    _, _, rows = parse(format_results_table([record]))
    assert rows[0]['S'] == 'inf'


def test_a_bar_in_a_name_cannot_split_a_cell():
    text = format_results_table([x2('A|B', **{'S|1': (30.0, 0.9)})])
    rule = [line for line in text.splitlines() if line.startswith('|')][1]
    for line in text.splitlines()[2:]:
        assert line.replace('\\|', '').count('|') == rule.count('|')
    assert 'A\\|B' in text and 'S\\|1' in text


def test_lpips_is_marked_lower_is_better_and_names_its_network():
    """MANA's Table 1 cells: PSNR / SSIM on RGB and LPIPS (AlexNet), LPIPS lower is better."""
    mana = {'psnr_rgb_crop0': 36.55, 'ssim_rgb_crop0': 0.9471, 'lpips_alex_crop0': 0.1186}
    text = format_results_table([Record('TOFlow', 4, {'Vimeo90K-Motion': mana})])
    caption = text.splitlines()[0]
    assert caption.startswith('Each cell: PSNR (dB) / SSIM / LPIPS↓ (AlexNet);')
    assert 'PSNR and SSIM and LPIPS↓ on RGB, crop 0' in caption
    assert '↓: lower is better' in caption
    _, _, rows = parse(text)
    assert rows[0]['Vimeo90K-Motion'] == '36.55 / 0.9471 / 0.1186'
    both = dict(mana, lpips_vgg_crop0=0.2)
    caption = format_results_table([Record('X', 4, {'S': both})]).splitlines()[0]
    assert 'LPIPS↓-alex (AlexNet) / LPIPS↓-vgg (VGG16)' in caption
    # a metric without an arrow keeps its caption unchanged
    plain = format_results_table([Record('X', 4, {'S': {'psnr_y_crop4': 30.0}})])
    assert '↓' not in plain


def _timed(label, ms, device='GPU X (cuda, torch 2.0)', **sets):
    record = x2(label, **sets)
    record.ms_per_frame, record.device = ms, device
    return record


def test_runtime_column_per_set_with_the_device_in_the_caption():
    fast = _timed('Fast', {'Set5': 12.34, 'Set14': 85.06}, Set5=(38.0, 0.96), Set14=(33.0, 0.91))
    old = x2('Old', Set5=(37.0, 0.95))  # a record written before runtime was measured
    caption, header, rows = parse(format_results_table([fast, old]))
    assert header == ['Scale', 'Method', 'Set5', 'Set14', 'ms/frame']
    assert rows[0]['ms/frame'] == '12.3 / 85.1' and rows[1]['ms/frame'] == '-'
    assert caption.endswith(
        'ms/frame: mean test-time forward per output frame on GPU X (cuda, torch 2.0), per set '
        '(Set5 / Set14) (warm; self-ensemble, tiles and chop included).'
    )
    # a set timed only by another row is '-' in this one; under 1 ms: 2 decimals
    half = _timed('Half', {'Set14': 0.456}, Set14=(30.0, 0.9))
    _, _, rows = parse(format_results_table([fast, half]))
    assert rows[1]['ms/frame'] == '- / 0.46'


def test_runtime_of_two_devices_gets_a_device_column_old_records_unchanged():
    gpu = _timed('A', {'Set5': 50.0}, Set5=(38.0, 0.96))
    cpu = _timed('B', {'Set5': 900.0}, 'EPYC (cpu, 2 threads, torch 2.0)', Set5=(38.0, 0.96))
    caption, header, rows = parse(format_results_table([gpu, cpu]))
    assert header[-2:] == ['ms/frame', 'Device'] and 'on the device of its row' in caption
    assert [(r['ms/frame'], r['Device']) for r in rows] == [
        ('50.0', 'GPU X (cuda, torch 2.0)'),
        ('900.0', 'EPYC (cpu, 2 threads, torch 2.0)'),
    ]
    untimed = [x2('A', Set5=(38.0, 0.96))]
    assert 'ms/frame' not in format_results_table(untimed)


def test_record_reads_params_and_runtime_and_accepts_records_without_them():
    content = {
        'label': 'A2N',
        'scale': 2,
        'params': 1036443,
        'metrics': {'Set5': {'psnr_y_crop2': 38.06}},
        'runtime': {
            'device': 'NVIDIA H100 80GB HBM3',
            'device_type': 'cuda',
            'threads': 16,
            'torch': '2.5.1',
            'processes': 1,
            'sets': {'Set5': {'ms_per_frame': 7.5, 'ms_per_frame_median': 7.0, 'frames': 5}},
        },
    }
    record = record_from_dict(content, 'a.json')
    assert record.params == 1036443 and record.ms_per_frame == {'Set5': 7.5}
    assert record.device == 'NVIDIA H100 80GB HBM3 (cuda, torch 2.5.1)'
    old = record_from_dict({'metrics': {'Set5': {'psnr_y_crop2': 38.0}}}, 'old.json')
    assert old.params is None and old.ms_per_frame == {} and old.device is None
    content['runtime']['sets']['Set5']['ms_per_frame'] = -1
    with pytest.raises(UserError, match=r'a\.json: runtime\.sets\.Set5\.ms_per_frame'):
        record_from_dict(content, 'a.json')
    content['runtime'] = 'fast'
    with pytest.raises(UserError, match='a.json: "runtime" should hold "sets"'):
        record_from_dict(content, 'a.json')
