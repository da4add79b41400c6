"""Which way each metric is better, and the arrows of the tables of tools/test.py."""

import os.path as osp
import sys

from basicattn.metrics.metric_direction import arrow, best_rule, lower_is_better

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_directions_of_the_metric_keys():
    for key in ('lpips_alex_crop4', 'Set5/lpips_vgg_crop2', 'REDS4/tdiff_y_crop0/per_clip'):
        assert lower_is_better(key) and arrow(key) == '↓' and best_rule(key) == 'less', key
    for key in ('psnr_y_crop4', 'Vid4/ssim_rgb_crop0/per_image', 'lpips/psnr_y_crop0', 'tmad_sr'):
        assert not lower_is_better(key) and arrow(key) == '' and best_rule(key) == 'greater', key


def test_test_tool_tables_mark_lower_is_better():
    import importlib.util

    sys.path.insert(0, osp.join(REPO_ROOT, 'tools'))
    try:
        path = osp.join(REPO_ROOT, 'tools', 'test.py')
        spec = importlib.util.spec_from_file_location('_tool_test_direction', path)
        tool = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(tool)
    finally:
        sys.path.pop(0)
    table = tool.format_table({'a/0001': {'psnr_rgb_crop0': 30.0, 'lpips_alex_crop0': 0.1}}, 'clip')
    header = table.splitlines()[0].split()
    assert header == ['clip', 'psnr_rgb_crop0', 'lpips_alex_crop0↓']
