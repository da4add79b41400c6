"""The embedded demo: train a small SR network on photographs shipped inside
scikit-image and show that it beats bicubic on held-out photographs.

    python tools/demo.py [--set train.total_iter=200 ...]
    python tools/demo.py --train-opt options/demo/demo_dan_x3.yml \
        --baseline-opt options/demo/demo_bicubic_x3.yml --degradation BD

Steps: (1) write HR/LR pairs (MATLAB-exact bicubic) and LMDBs to
datasets/demo/; (2) train the training option file (default
options/demo/demo_edsr_x2.yml) with tools/train.py; (3) evaluate the trained
network and the Bicubic baseline (default options/demo/demo_bicubic_x2.yml)
with tools/test.py; (4) print both and the gain. Exits with status 1 if the
network does not beat bicubic.

``--degradation BI|BD|DN`` (the DAN demo) first writes, with
tools/make_lr.py, the photographs cropped to a multiple of the option file's
scale and their LR images under ``datasets/demo/x<scale>_<DEG>/{train,heldout}``
(DN noise seeded per image, as in RDN's stored test sets), and points every
``dataroot`` of both option files that names ``x<scale>_BI`` at that
degradation instead. The metric keys follow the files' scale (crop = scale).
"""

import argparse
import json
import os.path as osp
import re
import subprocess
import sys
from collections import deque
from typing import Callable, Deque, List, Optional, TextIO, Tuple

import _bootstrap  # noqa: F401

from basicattn.utils.run_arguments import add_set_argument

TOOLS = osp.dirname(osp.abspath(__file__))
TRAIN_OPT = 'options/demo/demo_edsr_x2.yml'
BICUBIC_OPT = 'options/demo/demo_bicubic_x2.yml'


def _run(args, show=None):
    """Run a tool in its own process; return the path on its last stdout line.

    Lines of the child's stdout for which ``show`` returns text are printed as
    they come; on failure the child's last lines are printed too.
    """
    print('$ python ' + ' '.join(args), flush=True)
    status, last = stream_child([sys.executable, '-u'] + args, show or (lambda line: None))
    if status != 0:
        sys.exit(f'demo: {args[0]} failed with status {status}')
    return last[-1] if last else ''


def stream_child(
    cmd: List[str],
    show: Callable[[str], Optional[str]],
    out: Optional[TextIO] = None,
    tail: int = 20,
) -> Tuple[int, List[str]]:
    """Run ``cmd``, printing ``show(line)`` for each stdout line as it comes.

    Lines are read whole (never cut mid-line); ``show`` returns the text to
    print, or None to keep the line quiet. The child's stderr (warnings,
    errors, progress bars) goes straight to ours.

    Args:
        cmd: The command, e.g. ``[sys.executable, '-u', 'tools/train.py', ...]``.
        show: Maps a line (without its newline) to what to print, or None.
        out: Where to print (default ``sys.stdout``).
        tail: How many of the last lines to keep, and print on failure.

    Returns:
        ``(exit status, the last non-empty stdout lines)``.
    """
    out = out or sys.stdout
    last: Deque[str] = deque(maxlen=tail)
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, bufsize=1) as proc:
        for raw in proc.stdout:
            line = raw.rstrip('\r\n')
            if line.strip():
                last.append(line)
            text = show(line)
            if text is not None:
                out.write(f'      {text}\n')
                out.flush()
        status = proc.wait()
    if status != 0 and last:
        out.write(f'      --- last {len(last)} lines of output ---\n')
        out.write(''.join(f'      {line}\n' for line in last))
        out.flush()
    return status, list(last)


_ITER = re.compile(r'Iter\((train|val)\)\s*\[\s*(\d+)/(\d+)\]\s*(.*)')
_FIELD = re.compile(r'([\w/.]+): (\S+)')


def training_progress(line: str) -> Optional[str]:
    """The short form of an mmengine training log line, or None for other lines.

    ``... Iter(train) [ 50/500]  lr: 1e-4  eta: 0:01:10  time: 0.1  loss: 0.02``
    becomes ``iter  50/500  loss 0.0200  eta 0:01:10``; the last validation
    line of a validation becomes ``val: <set/metric> <value> ...``.
    """
    match = _ITER.search(line)
    if not match:
        return None
    phase, done, total, rest = match.groups()
    fields = dict(_FIELD.findall(rest))
    if phase == 'train':
        width = len(total)
        text = f'iter {done:>{width}}/{total}'
        if 'loss' in fields:
            text += f'  loss {fields["loss"]}'
        if 'eta' in fields:
            text += f'  eta {fields["eta"]}'
        return text
    metrics = [f'{k} {v}' for k, v in fields.items() if '/' in k]
    return 'val: ' + '  '.join(metrics) if metrics and done == total else None


def set_means(metrics_file, set_name):
    """``{metric: mean}`` of one set in a ``metrics.json`` written by tools/test.py."""
    with open(metrics_file, encoding='utf-8') as f:
        return json.load(f)['metrics'][set_name]


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_set_argument(parser, help='override the training options')
    parser.add_argument('--data-root', default='datasets/demo')
    parser.add_argument(
        '--train-opt', default=TRAIN_OPT, help=f'training option file (default {TRAIN_OPT})'
    )
    parser.add_argument(
        '--baseline-opt', default=BICUBIC_OPT, help=f'baseline option file (default {BICUBIC_OPT})'
    )
    parser.add_argument(
        '--degradation',
        choices=('BI', 'BD', 'DN'),
        help='set datasets.*.degradation in both option files',
    )
    args = parser.parse_args(argv)
    root = osp.dirname(TOOLS)

    from basicattn.data.demo_photos import HELDOUT_PHOTOS, TRAIN_PHOTOS, prepare_demo_data

    print(
        f'[1/4] preparing data from scikit-image photographs: train {", ".join(TRAIN_PHOTOS)}; '
        f'held out {", ".join(HELDOUT_PHOTOS)}',
        flush=True,
    )
    prepare_demo_data(
        osp.join(root, args.data_root) if not osp.isabs(args.data_root) else args.data_root
    )

    from basicattn.config import read_options
    from basicattn.engine.builder import default_work_dir

    train_opt = osp.join(root, args.train_opt)
    baseline_opt = osp.join(root, args.baseline_opt)
    train_set, baseline_set = list(args.set), []
    if args.degradation:
        scale = read_options(train_opt)['scale']
        data_root = args.data_root if osp.isabs(args.data_root) else osp.join(root, args.data_root)
        _write_degraded_sets(data_root, scale, args.degradation)
        suffix = args.degradation.lower()
        train_set += _degradation_overrides(train_opt, scale, args.degradation)
        baseline_set += _degradation_overrides(baseline_opt, scale, args.degradation, 'test')
        # a work dir per degradation
        train_dir = default_work_dir(read_options(train_opt), 'train')
        base_dir = default_work_dir(read_options(baseline_opt, purpose='test'), 'test')
        train_set.append(f'path.experiments_root={train_dir}_{suffix}')
        baseline_set.append(f'path.experiments_root={base_dir}_{suffix}')
    opt = read_options(train_opt, train_set)
    scale, arch = opt['scale'], opt['network_g']['type']

    print('[2/4] training', flush=True)
    _run(
        [osp.join(TOOLS, 'train.py'), '-opt', train_opt] + _set_args(train_set),
        show=training_progress,
    )
    work_dir = default_work_dir(opt, 'train')
    checkpoint = osp.join(work_dir, 'latest.pth')

    print('[3/4] evaluating on the held-out photographs', flush=True)
    ours = _run(
        [osp.join(TOOLS, 'test.py'), '-opt', train_opt, '--checkpoint', checkpoint]
        + _set_args(train_set + [f'path.experiments_root={work_dir}/test'])
    )
    bicubic = _run([osp.join(TOOLS, 'test.py'), '-opt', baseline_opt] + _set_args(baseline_set))
    ours, bicubic = set_means(ours, 'skimage_heldout'), set_means(bicubic, 'skimage_heldout')

    psnr, ssim = f'psnr_y_crop{scale}', f'ssim_y_crop{scale}'
    gain = ours[psnr] - bicubic[psnr]
    deg = f', {args.degradation}' if args.degradation else ''
    print(f'[4/4] result on held-out photographs (x{scale}{deg}, Y channel, crop {scale})')
    print(f'  bicubic : PSNR {bicubic[psnr]:.2f} dB  SSIM {bicubic[ssim]:.4f}')
    print(f'  {arch:<8s}: PSNR {ours[psnr]:.2f} dB  SSIM {ours[ssim]:.4f}')
    print(f'  gain    : {gain:+.2f} dB', flush=True)
    return 0 if gain > 0 else 1


def _set_args(overrides):
    return ['--set'] + list(overrides) if overrides else []


def _write_degraded_sets(data_root, scale, degradation):
    """HR cropped to a multiple of ``scale`` and its LR, with make_lr.py."""
    for part in ('train', 'heldout'):
        out = osp.join(data_root, f'x{scale}_{degradation}', part)
        if osp.isdir(osp.join(out, 'LR')):
            continue  # written by an earlier run
        print(f'      writing {degradation} x{scale} LR images of {part} to {out}', flush=True)
        _run(
            [
                osp.join(TOOLS, 'make_lr.py'),
                osp.join(data_root, part, 'HR'),
                osp.join(out, 'LR'),
                '--degradation',
                degradation,
                '--scale',
                str(scale),
                '--hr-out',
                osp.join(out, 'HR'),
            ]
        )


def _degradation_overrides(opt_path, scale, degradation, purpose='train'):
    """Point every ``dataroot_*`` naming ``x<scale>_BI`` at ``degradation``."""
    from basicattn.config import read_options

    datasets = read_options(opt_path, purpose=purpose).get('datasets') or {}
    overrides = []
    for name, cfg in datasets.items():
        for key in ('dataroot_gt', 'dataroot_lq'):
            path = cfg.get(key)
            if isinstance(path, str) and f'x{scale}_BI' in path:
                new = path.replace(f'x{scale}_BI', f'x{scale}_{degradation}')
                overrides.append(f'datasets.{name}.{key}={new}')
    return overrides


if __name__ == '__main__':
    sys.exit(main())
