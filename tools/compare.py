"""Comparison figures of SR results: zoomed crops, per-frame strips, temporal profiles.

    python tools/compare.py --gt DIR [--lr DIR] --sr LABEL=DIR [--sr LABEL=DIR ...]
        --out OUT_DIR [--box X Y W H] [--zoom N] [--names NAME ...] [--scale S]
        [--columns C] [--rgb] [--lpips alex|vgg] [--video [--row R] [--row-height N]]

``--gt`` and ``--lr`` are the test set's folders (what the option file's
``dataroot_gt`` / ``dataroot_lq`` name); each ``--sr`` is a folder of
results, e.g. ``<experiments_root>/results/<set>`` that ``tools/test.py``
writes with ``val.save_img=true``. Images are matched by name: the GT key
(path under ``--gt`` without extension, ``/`` replaced by ``_`` as test.py
names its outputs) is looked up in every folder as ``<key>.png`` (any image
extension), else ``<key>_<iter>.png`` (validation images; the highest
iteration is used), else ``<key>x<s>.png`` (BasicSR's LR naming). A GT image
is compared when at least one SR folder has it, and then every folder must.

Without ``--video``, one figure per image, ``OUT_DIR/<key>.png``: the GT
frame with the box, and the box zoomed from GT, LR (enlarged by nearest
neighbour) and each method, labelled with the method's PSNR / SSIM on the
whole image (Y channel, crop = scale; ``--rgb`` for RGB).

With ``--video``, the GT images are frames of clips (a clip is the folder
holding them, e.g. ``00001/0001`` under Vimeo's ``sequences``); per clip,
``OUT_DIR/<clip>_strip.png`` (one row of box crops per source, one column
per frame, each method tile with its frame's PSNR / SSIM) and
``OUT_DIR/<clip>_profile.png`` (pixel row ``--row``, default the middle of
the box, stacked over time for every source). ``--names`` selects images
(or clips with ``--video``). Layout, sizes and the automatic box: see
``basicattn/visualization/comparison_figure.py`` and ``docs/figures.md``.

``--lpips NET`` adds each method's LPIPS (``basicattn/metrics/lpips_metric.py``,
RGB, crop = scale; lower is better, printed as ``LPIPS↓``) to the line printed
per figure: of the image, or the mean over the frames of the clip. Its two
weight files must be in their default places (``docs/metrics.md``); without
them the tool stops before any figure, with one ``error:`` line.

The figures reach OUT_DIR only when all of them were made (each move is
atomic; a figure of the same name is replaced). The last line printed is
OUT_DIR. A missing folder, an unmatched name, a bad box or row,
and images of the wrong size end in one ``error:`` line naming the file.
"""

import argparse
import os.path as osp
import re
import sys

import _bootstrap  # noqa: F401

from basicattn.errors import DataError, UserError
from basicattn.utils.tool_runner import add_debug_argument, run_tool

RESERVED_LABELS = ('GT', 'LR')


def _sr_argument(text):
    label, sep, folder = text.partition('=')
    if not sep or not label.strip() or not folder:
        raise argparse.ArgumentTypeError(f'expected LABEL=DIR, got {text!r}')
    return label.strip(), folder


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--gt', required=True, metavar='DIR', help='ground-truth folder')
    parser.add_argument('--lr', metavar='DIR', help='LR input folder (optional)')
    parser.add_argument(
        '--sr',
        required=True,
        action='append',
        type=_sr_argument,
        metavar='LABEL=DIR',
        help='a method: its label and its results folder (repeat for each method)',
    )
    parser.add_argument('--out', required=True, metavar='OUT_DIR', help='folder of the figures')
    parser.add_argument(
        '--box', nargs=4, type=int, metavar=('X', 'Y', 'W', 'H'), help='zoomed box in GT pixels'
    )
    parser.add_argument('--zoom', type=int, help='crop enlargement (default: fit the frame)')
    parser.add_argument('--names', nargs='+', metavar='NAME', help='images (clips) to show')
    parser.add_argument('--scale', type=int, help='SR scale (default: GT size / LR size)')
    parser.add_argument('--columns', type=int, help='tiles per row (default: two rows)')
    parser.add_argument('--rgb', action='store_true', help='PSNR / SSIM on RGB, not Y')
    parser.add_argument(
        '--lpips',
        choices=('alex', 'vgg'),
        help="also print each method's LPIPS (lower is better) with this backbone",
    )
    parser.add_argument('--video', action='store_true', help='GT images are frames of clips')
    parser.add_argument('--row', type=int, help='--video: pixel row of the temporal profile')
    parser.add_argument(
        '--row-height', type=int, default=8, help='--video: profile pixels per frame (default 8)'
    )
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    labels = [label for label, _ in args.sr]
    if len(set(labels)) != len(labels):
        parser.error(f'--sr: each method needs its own label, got {labels}')
    if set(labels) & set(RESERVED_LABELS):
        parser.error(f'--sr: the labels {", ".join(RESERVED_LABELS)} are taken by the inputs')
    for name in ('zoom', 'scale', 'columns', 'row_height'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got {value}')
    if args.row is not None and args.row < 0:
        parser.error(f'--row must be >= 0, got {args.row}')
    if args.lr is None and args.scale is None:
        parser.error('give --scale when there is no --lr folder')
    return args


def flat(key):
    """The name test.py gives the result of ``key``: ``/`` becomes ``_``."""
    return key.replace('/', '_')


def folder_images(folder, option):
    """``{flat key: (key, path)}`` of the images under ``folder`` (any depth)."""
    from basicattn.data.lmdb_io import check_unique_keys, scan_images

    if not osp.isdir(folder):
        raise UserError(f'{option} folder not found: {folder}')
    items = scan_images(folder)
    check_unique_keys(items)
    if not items:
        raise UserError(f'{option} folder {folder} holds no images')
    found = {}
    for key, path in items:
        if flat(key) in found:
            raise DataError(
                f'{option}: {found[flat(key)][1]} and {path} have the same result name '
                f'{flat(key)!r} (/ becomes _); rename one'
            )
        found[flat(key)] = (key, path)
    return found


def _paths(images):
    return {name: path for name, (_, path) in images.items()}


def match(names, files):
    """``{name: path}``: the file of each name in ``files`` (module docstring's rule)."""
    names = set(names)
    ranked = {}  # name -> (rank, path); higher rank wins
    for stem, path in files.items():
        if stem in names:
            candidates = [(stem, (3, 0))]
        else:
            candidates = []
            found = re.fullmatch(r'(.+)_(\d+)', stem)
            if found and found.group(1) in names:
                candidates.append((found.group(1), (2, int(found.group(2)))))
            found = re.fullmatch(r'(.+)x(\d+)', stem)
            if found and found.group(1) in names:
                candidates.append((found.group(1), (1, 0)))
        for name, rank in candidates:
            if name not in ranked or rank > ranked[name][0]:
                ranked[name] = (rank, path)
    return {name: path for name, (_, path) in ranked.items()}


def _missing(option, folder, name):
    return DataError(
        f'{option} folder {folder} has no image for {name!r} '
        f'(looked for {name}.png, {name}_<iter>.png, {name}x<scale>.png)'
    )


class Sources:
    """The matched files of GT, LR and every method, and the checked reading of them."""

    def __init__(self, args):
        self.args = args
        gt = folder_images(args.gt, '--gt')
        #: GT key (``/`` separators) of every name
        self.keys = {name: key for name, (key, _) in gt.items()}
        self.gt = _paths(gt)
        self.lr = match(self.gt, _paths(folder_images(args.lr, '--lr'))) if args.lr else None
        self.srs = {
            label: match(self.gt, _paths(folder_images(d, f'--sr {label}'))) for label, d in args.sr
        }
        self.scale = args.scale
        compared = set().union(*self.srs.values())
        if not compared:
            raise DataError(
                f'no image of the --sr folders has a name of the --gt folder {args.gt} '
                '(results are named <GT key>.png, see tools/compare.py --help)'
            )
        self.names = sorted(compared)

    def check_complete(self, names):
        """Every folder has an image of each of ``names``."""
        for name in names:
            if self.lr is not None and name not in self.lr:
                raise _missing('--lr', self.args.lr, name)
            for label, folder in self.args.sr:
                if name not in self.srs[label]:
                    raise _missing(f'--sr {label}', folder, name)

    def read(self, name):
        """``(gt, lr or None, {label: sr})`` of ``name``, sizes checked."""
        from basicattn.utils.img_util import imread

        gt_path = self.gt[name]
        gt = imread(gt_path)
        height, width = gt.shape[:2]
        srs = {}
        for label, files in self.srs.items():
            srs[label] = imread(files[name])
            if srs[label].shape != gt.shape:
                h, w = srs[label].shape[:2]
                raise DataError(
                    f'{files[name]} (--sr {label}) is {w}x{h} (WxH), but the GT image '
                    f'{gt_path} is {width}x{height}: results must have the GT size'
                )
        lr = None
        if self.lr is not None:
            lr = imread(self.lr[name])
            self._check_scale(lr, self.lr[name], gt, gt_path)
        return gt, lr, srs

    def _check_scale(self, lr, lr_path, gt, gt_path):
        (gh, gw), (lh, lw) = gt.shape[:2], lr.shape[:2]
        scale = gh // lh if gh % lh == 0 and gw % lw == 0 and gh // lh == gw // lw else None
        if scale is None or (self.scale is not None and scale != self.scale):
            wanted = f'x{self.scale}' if self.scale is not None else 'an integer scale'
            raise DataError(
                f'{lr_path} (--lr) is {lw}x{lh} (WxH); the GT image {gt_path} is {gw}x{gh}, '
                f'not {wanted} of it'
            )
        self.scale = scale


def _select(wanted, available, what, folder):
    """The names of ``wanted`` (``/`` or ``_`` separators, extension optional)."""
    from basicattn.data.lmdb_io import IMG_SUFFIXES

    chosen = []
    for name in wanted:
        stem, ext = osp.splitext(name)
        key = flat(stem if ext.lower() in IMG_SUFFIXES else name)
        if key not in available:
            shown = ', '.join(sorted(available)[:5]) + (' ...' if len(available) > 5 else '')
            raise UserError(f'--names {name}: no {what} of that name in {folder} ({shown})')
        chosen.append(key)
    return chosen


def _box(args, shape, where):
    from basicattn.visualization.comparison_figure import check_box

    return None if args.box is None else check_box(args.box, shape, f'--box for {where}')


def _scores(figure, lpips=None):
    """``label PSNR/SSIM`` of every method tile, with ``LPIPS↓ value`` when ``lpips`` has it."""
    lpips = lpips or {}
    return '  '.join(
        f'{t.label} {t.psnr:.2f}/{t.ssim:.4f}'
        + (f' LPIPS↓ {lpips[t.label]:.4f}' if t.label in lpips else '')
        for t in figure.tiles
        if t.psnr is not None
    )


def lpips_scores(net, gts, srs, border):
    """``{label: mean LPIPS over the frames}`` of uint8 RGB images (``gts``: a list of frames)."""
    import torch

    from basicattn.metrics.lpips_metric import lpips_distance

    def tensor(img):
        return torch.from_numpy(img.astype('float32') / 255.0).permute(2, 0, 1)

    return {
        label: float(
            sum(lpips_distance(net, tensor(s), tensor(g), border).item() for s, g in zip(ss, gts))
            / len(gts)
        )
        for label, ss in srs.items()
    }


def _write(staging, name, image):
    """Stage figure ``name`` (committed with the others); return its final path."""
    from basicattn.utils.img_util import imwrite

    with staging.writing(name) as staged:
        imwrite(staged, image)
    return staging.target(staged)


def compare_images(args, sources, staging):
    """One crop comparison per image; returns the figures' paths."""
    from basicattn.visualization.comparison_figure import crop_comparison

    names = _select(args.names, sources.names, 'image', args.gt) if args.names else sources.names
    sources.check_complete(names)
    written = []
    for name in names:
        gt, lr, srs = sources.read(name)
        figure = crop_comparison(
            gt,
            lr,
            srs,
            box=_box(args, gt.shape, sources.gt[name]),
            zoom=args.zoom,
            scale=sources.scale,
            test_y_channel=not args.rgb,
            columns=args.columns,
            title=name,
            where=sources.gt[name],
        )
        path = _write(staging, f'{name}.png', figure.image)
        x, y, w, h = figure.box
        lpips = None
        if args.lpips_net is not None:
            lpips = lpips_scores(
                args.lpips_net, [gt], {k: [v] for k, v in srs.items()}, sources.scale
            )
        print(f'{path}: box {x} {y} {w} {h}, zoom {figure.zoom}; {_scores(figure, lpips)}')
        written.append(path)
    return written


def clips_of(sources, gt_folder):
    """``{clip name: [frame names]}`` of the compared GT frames, frames in natural order."""
    from basicattn.data.video_clips import natural_key

    clips = {}
    for name in sources.names:
        key = sources.keys[name]
        clip = key.rsplit('/', 1)[0] if '/' in key else osp.basename(osp.normpath(gt_folder))
        clips.setdefault(flat(clip), []).append(name)
    return {clip: sorted(frames, key=natural_key) for clip, frames in sorted(clips.items())}


def compare_clips(args, sources, staging):
    """A strip and a temporal profile per clip; returns the figures' paths."""
    from basicattn.visualization.comparison_figure import clip_strip, profile_figure

    clips = clips_of(sources, args.gt)
    chosen = _select(args.names, clips, 'clip', args.gt) if args.names else list(clips)
    written = []
    for clip in chosen:
        frames = clips[clip]
        sources.check_complete(frames)
        read = [sources.read(name) for name in frames]
        gts = [r[0] for r in read]
        lrs = [r[1] for r in read] if sources.lr is not None else None
        srs = {label: [r[2][label] for r in read] for label in sources.srs}
        short = [name[len(clip) + 1 :] if name.startswith(clip + '_') else name for name in frames]
        where = osp.dirname(sources.gt[frames[0]])
        strip = clip_strip(
            gts,
            lrs,
            srs,
            short,
            box=_box(args, gts[0].shape, where),
            zoom=args.zoom,
            scale=sources.scale,
            test_y_channel=not args.rgb,
            title=clip,
            where=where,
        )
        x, y, w, h = strip.box
        row = y + h // 2 if args.row is None else args.row
        if row >= gts[0].shape[0]:
            raise UserError(
                f'--row {row} is outside the frames of {where} ({gts[0].shape[0]} rows)'
            )
        profile = profile_figure(
            gts, lrs, srs, row, args.row_height, sources.scale, title=clip, where=where
        )
        for suffix, figure in (('strip', strip), ('profile', profile)):
            written.append(_write(staging, f'{clip}_{suffix}.png', figure.image))
        scores = ''
        if args.lpips_net is not None:
            means = lpips_scores(args.lpips_net, gts, srs, sources.scale)
            scores = '; ' + '  '.join(f'{k} LPIPS↓ {v:.4f}' for k, v in means.items())
        print(
            f'{written[-2]}: box {x} {y} {w} {h}, zoom {strip.zoom}; {written[-1]}: row {row}'
            + scores
        )
    return written


def main(argv=None):
    """Run the tool; user mistakes end in one ``error:`` line and exit code 2."""
    return run_tool(_compare, argv)


def _compare(argv):
    from basicattn.utils.atomic_file import StagedFolder

    args = parse_args(argv)
    from basicattn.utils.output_guard import refuse_outputs_over_inputs

    inputs = [('--gt', args.gt), ('--lr', args.lr)] + [(f'--sr {k}', d) for k, d in args.sr]
    refuse_outputs_over_inputs([('--out', args.out)], inputs)  # before anything is written
    args.lpips_net = None
    if args.lpips:  # its weights are found (or refused) before any image is read
        from basicattn.metrics.lpips_weights import load_lpips_net

        args.lpips_net = load_lpips_net(args.lpips)
    sources = Sources(args)
    staging = StagedFolder(args.out)  # the figures reach OUT_DIR only when all are made
    try:
        written = (compare_clips if args.video else compare_images)(args, sources, staging)
        staging.commit()
    except BaseException:
        staging.abort()
        raise
    print(f'wrote {len(written)} figure(s)')
    print(args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
