"""Parameters-vs-PSNR figures (A2N Fig. 1, DAN Fig. 3) from metrics.json files.

    python tools/plot_tradeoff.py RUN_A/metrics.json RUN_B/metrics.json ...
        --set Urban100 --metric psnr_y_crop2 --out figures/urban100_x2.png
        [--out figures/urban100_x2.svg] [--params LABEL=N ...]
        [--point LABEL=PARAMS:VALUE ...] [--unit K|M] [--log-x] [--title TEXT]

Each ``metrics.json`` (written by ``tools/test.py``) is one point, named by
its ``label``: x is its ``params`` (the generator's parameter count), y its
``metrics[SET][METRIC]``. ``--params LABEL=N`` gives or replaces the count
of a run (a record written before counts were recorded, or a paper's count);
``--point LABEL=PARAMS:VALUE`` adds a published method that has no
``metrics.json``, from a paper's table (``--point CARN=1592K:31.92``). Counts
are integers, or numbers with a ``K`` or ``M`` suffix (``1.59M``). Measured
runs are drawn red, published points blue.

``--out`` is a ``.png`` image or an ``.svg`` document (repeat it for both),
each written at once (never half-written) and never over one of the input
files. The x axis is in thousands (``K``) when the largest count is below 2M,
else millions (``M``; ``--unit`` chooses), linear (``--log-x`` for a log
axis). Layout: ``basicattn/visualization/tradeoff_plot.py`` and ``docs/figures.md``.
A missing set, metric or count, a file that is not a ``metrics.json``, and
an output that is an input end in one ``error:`` line. The paths written
are printed last.
"""

import argparse
import math
import os.path as osp
import re
import sys

import _bootstrap  # noqa: F401

from basicattn.errors import UserError
from basicattn.utils.tool_runner import add_debug_argument, run_tool

_COUNT = re.compile(r'^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kKmM]?)\s*$')
_FORMATS = ('.png', '.svg')


def parameter_count(text):
    """An int from ``'1036443'``, ``'1,036,443'``, ``'1036K'`` or ``'1.04M'``."""
    match = _COUNT.match(text.replace(',', '').replace('_', ''))
    if match is None:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not a parameter count (an integer, or a number with K or M: 1.59M)'
        )
    factor = {'': 1, 'k': 1e3, 'm': 1e6}[match.group(2).lower()]
    return int(round(float(match.group(1)) * factor))


def _labelled(text, option):
    label, sep, value = text.partition('=')
    if not sep or not label.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f'{option}: expected LABEL=..., got {text!r}')
    return label.strip(), value.strip()


def _params_argument(text):
    label, value = _labelled(text, '--params')
    return label, parameter_count(value)


def _point_argument(text):
    label, value = _labelled(text, '--point')
    count, sep, metric = value.rpartition(':')
    try:
        number = float(metric)
    except ValueError:
        number = math.nan
    if not sep or not math.isfinite(number):
        raise argparse.ArgumentTypeError(
            f'--point: expected LABEL=PARAMS:VALUE (e.g. CARN=1592K:31.92), got {text!r}'
        )
    return label, parameter_count(count), number


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('metrics', nargs='*', metavar='JSON', help='metrics.json of each run')
    parser.add_argument('--set', required=True, metavar='NAME', help='test set, e.g. Urban100')
    parser.add_argument(
        '--metric', required=True, metavar='KEY', help='metric key, e.g. psnr_y_crop2'
    )
    parser.add_argument(
        '--out',
        required=True,
        action='append',
        metavar='FILE',
        help='the figure: .png or .svg (repeat for both)',
    )
    parser.add_argument(
        '--params',
        action='append',
        default=[],
        type=_params_argument,
        metavar='LABEL=N',
        help="a run's parameter count (given, or instead of its metrics.json's)",
    )
    parser.add_argument(
        '--point',
        action='append',
        default=[],
        type=_point_argument,
        metavar='LABEL=PARAMS:VALUE',
        help='a published method without metrics.json (a paper table)',
    )
    parser.add_argument('--unit', choices=('K', 'M'), help='parameter unit (default: by size)')
    parser.add_argument('--log-x', action='store_true', help='logarithmic parameter axis')
    parser.add_argument('--title', help='the line above the plot (default: set, scale, metric)')
    add_debug_argument(parser)
    args = parser.parse_intermixed_args(argv)  # JSON files before or after the options
    if not args.metrics and not args.point:
        parser.error('give metrics.json files (or --point LABEL=PARAMS:VALUE)')
    for out in args.out:
        if osp.splitext(out)[1].lower() not in _FORMATS:
            parser.error(f'--out {out}: the figure is a .png or .svg file')
    return args


def run_points(records, set_name, metric, counts):
    """One :class:`PlotPoint` per record; ``counts`` (``{label: n}``) replace the recorded ones.

    Raises:
        UserError: A record without the set, the metric or a count, a
            non-finite value, or two records with one label.
    """
    from basicattn.visualization.tradeoff_plot import PlotPoint

    points, sources = [], {}
    for record in records:
        where = record.source
        if record.label in sources:
            raise UserError(
                f'{where} and {sources[record.label]} are both labelled {record.label!r}; '
                'give the runs distinct labels (tools/test.py --label NAME)'
            )
        sources[record.label] = where
        if set_name not in record.metrics:
            raise UserError(
                f'{where}: no set {set_name!r} (it has {", ".join(record.metrics) or "none"}); '
                'give --set one of them'
            )
        means = record.metrics[set_name]
        if metric not in means:
            raise UserError(
                f'{where}: set {set_name} has no metric {metric!r} (it has '
                f'{", ".join(means) or "none"}); give --metric one of them'
            )
        value = means[metric]
        if not math.isfinite(value):
            raise UserError(f'{where}: {set_name}/{metric} is {value}, which cannot be plotted')
        params = counts.get(record.label, record.params)
        if params is None:
            raise UserError(
                f'{where}: no parameter count recorded (written before tools/test.py recorded '
                f"it); give --params '{record.label}=N'"
            )
        points.append(PlotPoint(record.label, params, value, measured=True))
    return points


def _title(records, set_name, metric):
    scales = {r.scale for r in records}
    scale = f' ×{scales.pop()}' if len(scales) == 1 and None not in scales else ''
    return f'{set_name}{scale}: {metric}'


def _y_title(metric):
    from basicattn.metrics.metric_direction import lower_is_better

    kind = metric.split('_', 1)[0].lower()
    name = {'psnr': 'PSNR (dB)', 'ssim': 'SSIM', 'lpips': 'LPIPS'}.get(kind, metric)
    return name + (', lower is better' if lower_is_better(metric) else '')


def main(argv=None):
    """Run the tool; user mistakes end in one ``error:`` line and exit code 2."""
    return run_tool(_plot, argv)


def _plot(argv):
    args = parse_args(argv)
    from basicattn.utils.output_guard import refuse_outputs_over_inputs

    refuse_outputs_over_inputs(
        [('--out', out) for out in args.out], [('JSON', m) for m in args.metrics]
    )
    from basicattn.metrics.results_table import read_record
    from basicattn.visualization.tradeoff_plot import PlotPoint, tradeoff_plot

    records = [read_record(path) for path in args.metrics]
    counts = dict(args.params)
    unknown = sorted(set(counts) - {r.label for r in records})
    if unknown:
        labels = ', '.join(repr(r.label) for r in records) or 'none'
        raise UserError(f'--params {unknown[0]}: no run has that label (the runs: {labels})')
    points = run_points(records, args.set, args.metric, counts)
    taken = {p.label for p in points}
    for label, params, value in args.point:
        if label in taken:
            raise UserError(f'--point {label}: that label is already a point; give another name')
        taken.add(label)
        points.append(PlotPoint(label, params, value, measured=False))
    if args.log_x:
        sources = {r.label: r.source for r in records}
        zero = [p.label for p in points if p.params <= 0]
        if zero:
            raise UserError(
                f'--log-x: {zero[0]} ({sources.get(zero[0], "--point")}) has 0 parameters, '
                'which a log axis cannot show; leave it out or drop --log-x'
            )
    plot = tradeoff_plot(
        points,
        _y_title(args.metric),
        args.title if args.title is not None else _title(records, args.set, args.metric),
        unit=args.unit,
        log_x=args.log_x,
    )
    for point in plot.points:
        kind = 'measured' if point.measured else 'published'
        print(f'{point.label}: {point.params:,.0f} parameters, {point.value:g} ({kind})')
    from basicattn.utils.atomic_file import atomic_write_bytes
    from basicattn.utils.img_util import imwrite

    for out in args.out:
        if out.lower().endswith('.svg'):
            atomic_write_bytes(plot.svg().encode('utf-8'), out)
        else:
            imwrite(out, plot.image)
        print(osp.abspath(out), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
