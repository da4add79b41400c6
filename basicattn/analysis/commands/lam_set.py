"""``tools/analyze.py lam-set``: mean DI and PSNR of several models over a set of windows.

    python tools/analyze.py lam-set WINDOWS --model LABEL=WEIGHTS
        [--model 'LABEL=arch:NAME:{"scale": 2}' ...] [--scale S] [--gt-folder DIR]
        [--window-size 16] [--fold 50] [--sigma 1.2] [--kernel-size 9] --out DIR

WINDOWS lists ``IMAGE ROW COL [GT]`` per line (or YAML; see
:mod:`basicattn.analysis.lam_set`). For each model it runs LAM on every
window and measures the PSNR of each listed image against its GT (the
list's ``GT``, else ``--gt-folder``/<image file name>; Y channel, crop =
scale, as ``tools/test.py``). Writes ``DIR/results.md`` (A2N Table 7's
shape: model, mean DI, mean PSNR), ``DIR/lam_set.json`` (every window's DI)
and ``DIR/figures/<label>/<image>_r<ROW>_c<COL>.png``. Every model and
window is checked (one forward per image) before the first LAM run.
"""

import argparse
import os.path as osp
import re
import time

from basicattn.errors import DataError, UserError

from .lam import add_path_arguments, check_out, path_from_args, progress_bar, write_outputs

COMMAND = 'lam-set'
HELP = 'mean LAM Diffusion Index and PSNR of several models over a set of windows (A2N Table 7)'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('windows', help='window list: IMAGE ROW COL [GT] per line, or YAML')
    parser.add_argument(
        '--model',
        action='append',
        required=True,
        metavar='LABEL=SOURCE',
        help='a model: LABEL=WEIGHTS (a weights file) or LABEL=arch:NAME[:JSON] '
        '(e.g. \'Bicubic=arch:Bicubic:{"scale": 2}\'); repeat for each model',
    )
    parser.add_argument(
        '--scale',
        type=int,
        default=None,
        help="scale of weights whose file does not show it (A2N x2/x3 authors' files)",
    )
    parser.add_argument(
        '--gt-folder', default=None, help='GT images, named as the LR images (for the PSNR)'
    )
    add_path_arguments(parser)
    parser.add_argument('--out', required=True, help='output folder')


def _gt_path(window, gt_folder):
    if window.gt:
        return window.gt
    return osp.join(gt_folder, osp.basename(window.image)) if gt_folder else None


def _prepare(spec, windows, scale, gt_folder, device, window_size):
    """Build one model, super-resolve every listed image, check windows, measure PSNR."""
    import torch

    from basicattn.analysis.lam_run import Window, check_sr_window  # lazy: cheap
    from basicattn.converters.network_loading import network_from_arguments  # lazy: cheap
    from basicattn.metrics.psnr_ssim import calculate_psnr  # lazy: cheap
    from basicattn.utils.img_util import img2tensor, imread, tensor2img  # lazy: cheap

    net, cfg = network_from_arguments(
        None, spec.arch, spec.arch_args, spec.checkpoint, scale, None,
        report=lambda line: print(f'{spec.label}: {line}'),
    )  # fmt: skip
    if getattr(net, 'num_frames', None):
        raise UserError(
            f'--model {spec.label}: {cfg["type"]} is a video arch; lam-set compares image '
            'archs (run `lam` on a clip for a video arch)'
        )
    net = net.to(device)
    images, psnrs = {}, {}
    for w in windows:
        if w.image not in images:
            lr = imread(w.image)
            with torch.no_grad():
                sr = net(img2tensor(lr)[None].to(device))[0].cpu()
            images[w.image] = (lr, sr)
            gt_path = _gt_path(w, gt_folder)
            if gt_path is not None:
                gt, sr_img = imread(gt_path), tensor2img(sr)
                if gt.shape != sr_img.shape:
                    raise DataError(
                        f'GT {gt_path} is {gt.shape[1]}x{gt.shape[0]} (WxH) but {spec.label} '
                        f'gives {sr_img.shape[1]}x{sr_img.shape[0]} for {w.image}'
                    )
                border = sr.shape[-1] // lr.shape[1]  # crop = the scale
                psnrs[w.image] = calculate_psnr(sr_img, gt, crop_border=border, test_y_channel=True)
        try:
            check_sr_window(images[w.image][1], Window(w.row, w.col, window_size))
        except UserError as err:
            raise UserError(f'{w.image} (model {spec.label}): {err}') from None
    return net, cfg, images, psnrs


def _safe(label: str) -> str:
    """``label`` as a folder name (characters other than letters, digits, ``.-_`` become ``_``)."""
    return re.sub(r'[^A-Za-z0-9._-]', '_', label) or '_'


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from basicattn.analysis.lam_figure import image_figure  # lazy: cheap
    from basicattn.analysis.lam_run import Window, run_image_lam  # lazy: cheap
    from basicattn.analysis.lam_set import (  # lazy: cheap
        format_table,
        parse_model_spec,
        read_window_list,
    )
    from basicattn.utils.img_util import imencode_png, tensor2img  # lazy: cheap
    from basicattn.utils.strict_json import dumps  # lazy: cheap

    path = path_from_args(args)
    check_out(args.out)
    specs = [parse_model_spec(text) for text in args.model]
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise UserError(f'--model: each model needs its own label, got {labels}')
    windows = read_window_list(args.windows)
    device = torch.device(args.device)
    prepared = [
        _prepare(s, windows, args.scale, args.gt_folder, device, args.window_size) for s in specs
    ]
    bar = progress_bar(path.fold * len(windows) * len(specs), 'LAM set', args.quiet)
    files, models = {}, []
    try:
        for spec, (net, cfg, images, psnrs) in zip(specs, prepared):
            rows = []
            for w in windows:
                window = Window(w.row, w.col, args.window_size)
                lr, _ = images[w.image]
                start = time.perf_counter()
                result = run_image_lam(
                    net, torch.from_numpy(lr).permute(2, 0, 1).float().div(255).to(device),
                    window, path, args.batch_size, bar.update,
                )  # fmt: skip
                stem = osp.splitext(osp.basename(w.image))[0]
                figure = image_figure(
                    lr, tensor2img(result.sr), result.lam_map, window,
                    result.diffusion_index, f'{spec.label}: {stem}',
                )  # fmt: skip
                name = f'figures/{_safe(spec.label)}/{stem}_r{w.row}_c{w.col}'
                files[f'{name}.png'] = imencode_png(figure.image, compress_level=6)
                rows.append(
                    dict(
                        image=w.image,
                        row=w.row,
                        col=w.col,
                        diffusion_index=result.diffusion_index,
                        gini=result.gini,
                        seconds=round(time.perf_counter() - start, 3),
                        figure=f'{name}.png',
                    )
                )
            models.append(
                dict(
                    label=spec.label,
                    source=spec.source,
                    arch=cfg,
                    mean_diffusion_index=float(np.mean([r['diffusion_index'] for r in rows])),
                    mean_psnr=float(np.mean(list(psnrs.values()))) if psnrs else None,
                    psnr=psnrs,
                    windows=rows,
                )
            )
    finally:
        bar.close()
    images_measured = len(models[0]['psnr'])
    caption = (
        f'LAM Diffusion Index: mean over {len(windows)} window(s) of '
        f'{args.window_size}x{args.window_size} SR pixels (fold {path.fold}, sigma '
        f'{path.sigma}, kernel {path.kernel_size}); PSNR: Y channel (BT.601), crop = scale, '
        f'mean over {images_measured} image(s)'
        + ('' if images_measured else ' (no GT given: --gt-folder or a GT column)')
    )
    report = dict(
        method='LAM (Gu and Dong, CVPR 2021), table as A2N Table 7',
        windows_file=args.windows,
        window_size=args.window_size,
        path=path.as_dict(),
        caption=caption,
        models=models,
    )
    files['results.md'] = format_table(models, caption).encode()
    files['lam_set.json'] = (dumps(report) + '\n').encode()
    write_outputs(args.out, files)
    print(files['results.md'].decode(), end='')
    print(args.out)
    return 0
