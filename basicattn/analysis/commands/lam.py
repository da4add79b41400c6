"""``tools/analyze.py lam``: the Local Attribution Map of one window, and its DI.

    python tools/analyze.py lam IMAGE --checkpoint W [--scale S] [-opt X.yml]
        --window ROW COL [--window-size 16] [--fold 50] [--sigma 1.2]
        [--kernel-size 9] [--batch-size 10] --out DIR

IMAGE is the LR input (an image file; for a video arch a folder of frames
or a video file, whose output frame ``--frame``, by default the centre one,
is attributed to every frame). ROW COL is the top-left corner of the window
in the SR output. Writes ``DIR/lam.json`` (DI, Gini, window, path settings,
checkpoint, per-frame shares for a clip), ``DIR/lam.png`` (the figure) and
``DIR/lam_map.npy`` (the map, float32, divided by its maximum), all
together once the run succeeded. The maths: :mod:`basicattn.analysis.lam`.
"""

import argparse
import os.path as osp
import time

from basicattn.errors import UserError
from basicattn.utils.run_arguments import add_network_arguments

COMMAND = 'lam'
HELP = 'Local Attribution Map (Gu and Dong, CVPR 2021) of one output window, and its DI'


def add_path_arguments(parser: argparse.ArgumentParser) -> None:
    """``--window-size``, ``--fold``, ``--sigma``, ``--kernel-size``, ``--batch-size``,
    ``--device``, ``--quiet`` (shared with ``lam-set``)."""
    parser.add_argument(
        '--window-size', type=int, default=16, help='side of the window in SR pixels (16)'
    )
    parser.add_argument('--fold', type=int, default=50, help='steps of the blur path (50)')
    parser.add_argument(
        '--sigma', type=float, default=1.2, help='Gaussian sigma of the blurred end (1.2)'
    )
    parser.add_argument(
        '--kernel-size', type=int, default=9, help='side of the Gaussian kernels, odd (9)'
    )
    parser.add_argument(
        '--batch-size',
        type=int,
        default=10,
        help='path steps per forward/backward pass (10; the result does not depend on it)',
    )
    parser.add_argument('--device', default='cpu', help='cpu, cuda, cuda:1 ...')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('image', help='LR image (a folder of frames or a video for a video arch)')
    add_network_arguments(parser)
    parser.add_argument(
        '--window',
        nargs=2,
        type=int,
        required=True,
        metavar=('ROW', 'COL'),
        help='top-left corner of the window in the SR output',
    )
    add_path_arguments(parser)
    parser.add_argument(
        '--frame',
        type=int,
        default=None,
        help='video archs: the output frame to attribute (default: the centre of the clip)',
    )
    parser.add_argument(
        '--mode',
        choices=('auto', 'window', 'sequence'),
        default='auto',
        help='video archs: output frame from its window of frames, or from running the '
        'recurrent arch over the clip up to it (auto: sequence for archs with a state)',
    )
    parser.add_argument(
        '--padding', default='reflection', help='video archs: border policy of the windows'
    )
    parser.add_argument('--out', required=True, help='output folder')


def path_from_args(args: argparse.Namespace):
    """The checked :class:`~basicattn.analysis.lam.BlurPath` and batch size of the flags."""
    from basicattn.analysis.lam import BlurPath  # lazy: cheap
    from basicattn.utils.bounds import is_int  # lazy: cheap

    path = BlurPath(sigma=args.sigma, fold=args.fold, kernel_size=args.kernel_size).check()
    if not is_int(args.batch_size) or args.batch_size < 1:
        raise UserError(f'--batch-size must be a positive int, got {args.batch_size!r}')
    if args.window_size < 1:
        raise UserError(f'--window-size must be a positive int, got {args.window_size!r}')
    return path


def check_out(out: str) -> None:
    """:class:`UserError` for an ``--out`` that exists and is not a folder."""
    if osp.exists(out) and not osp.isdir(out):
        raise UserError(f'--out {out} exists and is not a folder; give a folder')


def progress_bar(total: int, desc: str, quiet: bool):
    """A tqdm bar over the path steps (on stderr)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit='step', disable=quiet, dynamic_ncols=True)


def _read_input(args: argparse.Namespace, net, cfg: dict):
    """``(tensor, uint8 frames, names)``: an image ``(3, h, w)`` or a clip ``(L, 3, h, w)``."""
    import torch

    from basicattn.data.frame_io import FrameSource, is_video_file  # lazy: cheap
    from basicattn.errors import DataError  # lazy: cheap
    from basicattn.utils.img_util import img2tensor, imread  # lazy: cheap

    video = getattr(net, 'num_frames', None)
    is_clip = osp.isdir(args.image) or is_video_file(args.image)
    if not osp.exists(args.image):
        raise FileNotFoundError(f'IMAGE not found: {args.image}')
    if not video:
        if is_clip:
            raise UserError(
                f'IMAGE {args.image} is a folder or video, but {cfg["type"]} is an image arch: '
                'give one LR image file'
            )
        if args.frame is not None:
            raise UserError(f'--frame: {cfg["type"]} is an image arch; --frame is for video archs')
        img = imread(args.image)
        return img2tensor(img), [img], [osp.splitext(osp.basename(args.image))[0]]
    if not is_clip:
        raise UserError(
            f'IMAGE {args.image} is one image, but {cfg["type"]} is a video arch '
            f'({video} frames per window): give a folder of LR frames or a video file'
        )
    source = FrameSource(args.image)
    frames = list(source)
    if any(f.shape != frames[0].shape for f in frames):
        shapes = sorted({f.shape[:2] for f in frames})
        raise DataError(f'IMAGE {args.image}: the frames differ in size {shapes}')
    names = source.names or [str(i) for i in range(len(frames))]
    return torch.stack([img2tensor(f) for f in frames]), frames, names


def write_outputs(out: str, files: dict) -> None:
    """Write ``{name: bytes}`` into ``out`` together (a staged folder, then moved in)."""
    from basicattn.utils.atomic_file import StagedFolder  # lazy: cheap

    staged = StagedFolder(out)
    try:
        for name, data in files.items():
            with staged.writing(name) as target, open(target, 'wb') as f:
                f.write(data)
        staged.commit()
    except BaseException:
        staged.abort()
        raise


def npy_bytes(array) -> bytes:
    """``array`` saved as ``.npy`` bytes."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from basicattn.analysis.lam_figure import clip_figure, image_figure  # lazy: cheap
    from basicattn.analysis.lam_run import Window, run_clip_lam, run_image_lam  # lazy: cheap
    from basicattn.analysis.lam_video import accepts_state  # lazy: cheap
    from basicattn.converters.network_loading import network_from_arguments  # lazy: cheap
    from basicattn.utils.img_util import imencode_png, tensor2img  # lazy: cheap
    from basicattn.utils.strict_json import dumps  # lazy: cheap

    path = path_from_args(args)
    check_out(args.out)
    window = Window(args.window[0], args.window[1], args.window_size)
    net, cfg = network_from_arguments(
        args.opt, args.arch, args.arch_args, args.checkpoint, args.scale, args.param_key
    )
    device = torch.device(args.device)
    net = net.to(device)
    lr, frames, names = _read_input(args, net, cfg)
    bar = progress_bar(path.fold, f'LAM {cfg["type"]}', args.quiet)
    start = time.perf_counter()
    report = dict(
        method='LAM (Gu and Dong, CVPR 2021)',
        input=args.image,
        checkpoint=args.checkpoint,
        arch=cfg,
        window=window.as_dict(),
        path=path.as_dict(),
        batch_size=args.batch_size,
    )
    try:
        if getattr(net, 'num_frames', None):
            stateful = accepts_state(net)
            mode = args.mode if args.mode != 'auto' else ('sequence' if stateful else 'window')
            result = run_clip_lam(
                net, lr.to(device), window, args.frame, mode, args.padding, path,
                args.batch_size, bar.update,
            )  # fmt: skip
            frame = lr.shape[0] // 2 if args.frame is None else args.frame
            for info in result.frames:
                info['name'] = names[info['index']]
            report.update(frame=frame, frame_name=names[frame], mode=mode, padding=args.padding)
            report['frames'] = result.frames
            figure = clip_figure(
                frames, tensor2img(result.sr), result.lam_map, result.frames, window, frame, names
            )
        else:
            result = run_image_lam(net, lr.to(device), window, path, args.batch_size, bar.update)
            figure = image_figure(
                frames[0], tensor2img(result.sr), result.lam_map, window,
                result.diffusion_index, names[0],
            )  # fmt: skip
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    report.update(
        diffusion_index=result.diffusion_index,
        gini=result.gini,
        lr_size=list(lr.shape[-2:]),
        sr_size=list(result.sr.shape[-2:]),
        passes=dict(forward=path.fold + 1, backward=path.fold),
        seconds=round(seconds, 3),
        device=str(device),
    )
    write_outputs(
        args.out,
        {
            'lam.json': (dumps(report) + '\n').encode(),
            'lam.png': imencode_png(figure.image, compress_level=6),
            'lam_map.npy': npy_bytes(result.lam_map.astype(np.float32)),
        },
    )
    print(
        f'{cfg["type"]}: DI {result.diffusion_index:.3f} (Gini {result.gini:.4f}), '
        f'{path.fold} steps in {seconds:.1f} s'
    )
    if result.frames:
        shares = ', '.join(f'{f["name"]} {100 * f["share"]:.1f}%' for f in result.frames)
        print(f'attribution share per frame: {shares}')
    print(args.out)
    return 0
