"""Write the LR images of a test (or training) set with BI, BD, BD-DUF or DN.

Examples::

    python tools/make_lr.py datasets/Set5/X3/HR \\
        datasets/Set5/X3/LR_BD --degradation BD --scale 3
    python tools/make_lr.py datasets/Set5/X3/HR \\
        datasets/Set5/X3/LR_DN --degradation DN --scale 3 --seed 0
    python tools/make_lr.py datasets/Vid4/GT datasets/Vid4/BDx4 \\
        --degradation BD-DUF --scale 4

Every image under HR_DIR (any depth) is cropped to a multiple of the scale
(MATLAB ``modcrop``), degraded and written as PNG under OUT_DIR with the
same relative path (``--filename-tmpl '{}x3'`` writes ``babyx3.png`` for
``baby.png``, the BasicSR naming that ``PairedImageDataset``'s
``filename_tmpl`` reads). Pass
``--hr-out DIR`` to also write the cropped HR images, so that HR and LR sizes
match exactly. The degradations are those of
``basicattn/data/degradation_transform.py``:

* BI: MATLAB bicubic ``imresize(HR, 1/s)`` (``--padding``);
* BD: ``imfilter(HR, fspecial('gaussian', 7, 1.6), 'replicate')``, then the
  pixel at offset ``(s-1)//2`` of every s x s cell (RDN's convention);
* BD-DUF: the video papers' blur-down (DUF, BasicVSR, MMagic): 13x13
  Gaussian of sigma ``0.4 * s``, mirrored padding, stride-s convolution, 2 LR
  pixels cropped per side (``basicattn/data/bd_duf.py``);
* DN: BI + Gaussian noise of level 30 (0-255 scale), rounded to uint8. The
  noise of an image comes from ``numpy.random.default_rng([seed,
  crc32(key)])`` (key: its relative path without extension), so a set is
  reproducible and equals ``PairedImageDataset`` with
  ``degradation: {type: DN, seed: SEED}``.

Existing output files are never replaced without ``--overwrite``; OUT_DIR and
``--hr-out`` may never be, contain or lie inside HR_DIR (nor each other),
whatever the flags. The last line printed is OUT_DIR.
"""

import argparse
import os.path as osp
import sys

import _bootstrap  # noqa: F401

from basicattn.errors import UserError
from basicattn.utils.path_util import not_found
from basicattn.utils.tool_runner import add_debug_argument, run_tool

#: The --degradation choices: the short names of
#: basicattn.data.degradation_transform.DEGRADATION_NAMES (a test checks they agree).
DEGRADATIONS = ('BI', 'BD', 'DN', 'BD-DUF')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Degrade every image of HR_DIR (BI, BD, BD-DUF or DN) and write '
        'the LR images to OUT_DIR as PNG, keeping relative paths.'
    )
    parser.add_argument('hr_dir', metavar='HR_DIR', help='folder of HR images')
    parser.add_argument('out_dir', metavar='OUT_DIR', help='LR output folder')
    parser.add_argument(
        '--degradation', required=True, choices=DEGRADATIONS, help='degradation model'
    )
    parser.add_argument('--scale', type=int, required=True, help='downscaling factor (e.g. 3)')
    parser.add_argument('--seed', type=int, default=0, help='DN: noise seed (default: 0)')
    parser.add_argument(
        '--noise-level',
        type=float,
        default=30.0,
        help='DN: noise standard deviation, 0-255 scale (default: 30)',
    )
    parser.add_argument(
        '--sigma',
        type=float,
        help='BD, BD-DUF: Gaussian standard deviation (default: BD 1.6, BD-DUF 0.4 x scale)',
    )
    parser.add_argument('--kernel-size', type=int, help='BD: Gaussian kernel side (default: 7)')
    parser.add_argument(
        '--padding',
        choices=('symmetric', 'replicate'),
        default='symmetric',
        help='BI/DN: bicubic border handling: symmetric '
        '(current MATLAB) or replicate (older MATLAB)',
    )
    parser.add_argument(
        '--filename-tmpl', default='{}', help="LR name from the HR base name (default '{}')"
    )
    parser.add_argument('--hr-out', metavar='DIR', help='also write the cropped HR images here')
    parser.add_argument('--overwrite', action='store_true', help='replace existing output files')
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if args.scale < 1:
        parser.error(f'--scale must be >= 1, got {args.scale}')
    if args.seed < 0:
        parser.error(f'--seed must be >= 0, got {args.seed}')
    if '{}' not in args.filename_tmpl:
        parser.error(f"--filename-tmpl must contain '{{}}', got {args.filename_tmpl!r}")
    return args


def degradation_cfg(args):
    """The transform config the arguments describe (unset ones keep the transform's defaults)."""
    if args.degradation == 'BI':
        return dict(type='BIDegradation', padding=args.padding)
    if args.degradation in ('BD', 'BD-DUF'):
        cfg = dict(type=args.degradation)
        if args.sigma is not None:
            cfg['sigma'] = args.sigma
        if args.kernel_size is not None:
            if args.degradation == 'BD-DUF':
                raise UserError('--kernel-size: BD-DUF has a fixed 13x13 kernel; drop it')
            cfg['kernel_size'] = args.kernel_size
        return cfg
    return dict(
        type='DNDegradation', noise_level=args.noise_level, seed=args.seed, padding=args.padding
    )


def _out_name(key, tmpl):
    head, base = key.rsplit('/', 1) if '/' in key else ('', key)
    name = tmpl.format(base) + '.png'
    return osp.join(head, name) if head else name


def main(argv=None):
    """Run the tool; user mistakes end in one ``error:`` line and exit code 2."""
    return run_tool(_make_lr, argv)


def _make_lr(argv):
    args = parse_args(argv)
    if not osp.isdir(args.hr_dir):
        raise UserError(not_found('HR folder', args.hr_dir))
    from basicattn.utils.output_guard import refuse_outputs_over_inputs

    # whatever --overwrite says; and the two outputs must be apart as well
    refuse_outputs_over_inputs(
        [('OUT_DIR', args.out_dir), ('--hr-out', args.hr_out)], [('HR_DIR', args.hr_dir)]
    )
    refuse_outputs_over_inputs([('--hr-out', args.hr_out)], [('OUT_DIR', args.out_dir)])
    from basicattn.data.degradation_transform import build_degradation
    from basicattn.data.lmdb_io import check_unique_keys, scan_images
    from basicattn.utils.atomic_file import StagedFolder
    from basicattn.utils.img_util import imread, imwrite, mod_crop

    try:
        degradation = build_degradation(degradation_cfg(args), args.scale, where='--degradation')
    except ValueError as err:  # a bad --sigma / --kernel-size / --noise-level value
        raise UserError(f'--degradation {args.degradation}: {err}') from None
    items = scan_images(args.hr_dir)
    check_unique_keys(items)
    if not items:
        raise UserError(f'no images found in {args.hr_dir}')
    targets = []
    for key, path in items:
        lr_path = osp.join(args.out_dir, _out_name(key, args.filename_tmpl))
        hr_path = osp.join(args.hr_out, key + '.png') if args.hr_out else None
        targets.append((key, path, lr_path, hr_path))
    if not args.overwrite:
        taken = [p for t in targets for p in t[2:] if p and osp.exists(p)]
        if taken:
            raise UserError(
                f'{len(taken)} output file(s) exist, e.g. {taken[0]}; '
                'pass --overwrite to replace them'
            )
    # outputs reach OUT_DIR (and --hr-out) only once every image succeeded
    folders = [StagedFolder(args.out_dir)] + ([StagedFolder(args.hr_out)] if args.hr_out else [])
    try:
        for key, path, lr_path, hr_path in targets:
            hr = mod_crop(imread(path), args.scale)
            lr = degradation.degrade(hr, key=key)
            with folders[0].writing(osp.relpath(lr_path, args.out_dir)) as staged:
                imwrite(staged, lr)
            if hr_path:
                with folders[1].writing(osp.relpath(hr_path, args.hr_out)) as staged:
                    imwrite(staged, hr)
        for folder in folders:
            folder.commit()
    except BaseException:
        for folder in folders:
            folder.abort()
        raise
    print(
        f'{degradation!r}: wrote {len(targets)} LR image(s)'
        + (f' and the cropped HR to {args.hr_out}' if args.hr_out else '')
    )
    print(args.out_dir)
    return 0


if __name__ == '__main__':
    sys.exit(main())
