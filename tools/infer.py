"""Super-resolve an image, an image folder, a frame folder or a video file.

    python tools/infer.py INPUT OUTPUT --checkpoint W.pth [-opt X.yml | --arch NAME
        --arch-args JSON] [--scale S] [--tile 128 --tile-overlap 16] [--self-ensemble]
        [--mode auto|window|sequence] [--device cpu|cuda] [--fps 25] [--overwrite]
        [--channels-last | --no-channels-last] [--compile] [--precision auto|fp32|bf16|fp16]
        [--backend pytorch|onnxruntime] [--codec h264|h265|mp4v --crf 18]

The network comes from ``-opt`` (its ``network_g``), from ``--arch`` and
``--arch-args``, or, when neither is given, from the weights file itself
(:func:`basicattn.converters.detect.detect_format`): the arch config a
basicattn file records (``meta['arch']``: training checkpoints ``iter_N.pth``,
``net_g_N.safetensors``, tools/convert_model.py output), or an authors'
format told from its keys and shapes (A2N ``aan_x2.pt`` ..., MANA). A2N x2
and x3 weights have the same shapes: their scale comes from the file name
(``aan_x3.pt``) or ``--scale``. Checkpoints may be ``.pth`` or
``.safetensors`` files.

* Image archs (A2N, DAN, EDSR, Bicubic ...) super-resolve every image or frame
  on its own.
* Video archs (those with a ``num_frames`` attribute: MANA, DASAA, DKSAN)
  see, for each frame, the window of ``num_frames`` frames around it (frame
  order is the natural order of the file names, or the video's order; the
  window is mirrored at the ends, ``--padding``). Only a window of frames is
  held in memory, so long videos stream.
* ``--mode sequence`` (the default for archs whose forward takes
  ``return_state``, e.g. DASAA's ConvLSTM) carries the recurrent state from
  each output frame to the next; ``--mode window`` restarts it every frame.

``--backend onnxruntime`` runs an ONNX file from tools/export.py instead
(``--checkpoint X.onnx``; :mod:`basicattn.deploy.onnx_stream`): image graphs
per frame, window graphs on the same sliding windows, and a recurrent step
graph (DASAA) with its state carried from frame to frame (``--mode``
as above).

The network runs in its arch's preferred memory format (channels_last for
A2N, DAN and EDSR, measured faster; ``--channels-last`` / ``--no-channels-last``
force one) and, with ``--compile``, through ``torch.compile`` (inductor: needs a
C++ compiler; the first frame compiles). Both are the ``val.channels_last`` /
``val.compile`` settings of tools/test.py (basicattn/models/acceleration.py).

``--precision`` (default ``auto``) runs the network under bf16 or fp16 autocast
and converts every output to float32 before it is checked and saved
(basicattn/models/inference_precision.py). ``auto`` is bf16 where the device
computes it natively (a CPU with AVX-512 BF16 or AMX, a CUDA GPU with bf16)
and the arch's measured bf16 fidelity (its ``BF16_PSNR_DB``) is at least 40 dB
against float32, which every shipped arch has (53 to 79 dB; A2N's official x2
weights on Set5: 58 dB or more, Set5 PSNR -0.010 dB); float32 elsewhere. On
such CPUs bf16 takes 0.42 to 0.51 of float32's time for the image archs
(docs/ops.md, "Reduced precision at inference"). ``fp32`` reproduces
tools/test.py's float32 numbers; ``fp16`` runs on CUDA only; ``bf16`` is
refused, in one line, for an arch below 40 dB.

OUTPUT is a folder (PNG files, named after the inputs or numbered; a path
without an extension, or an existing folder), a file
ending in a video extension (.mp4 .m4v .mov .mkv .avi: H.264 by default,
``--codec h265|mp4v``, quality ``--crf``, through PyAV, the ``[video]`` extra;
.webm: OpenCV's VP8) at the input video's frame rate (or ``--fps``) with its
pixel aspect ratio and audio (basicattn/utils/video_encode.py; without PyAV,
OpenCV's writer and one warning), or, for a single image INPUT,
an image file (.png .jpg .jpeg .bmp .tif .tiff .webp; its extension picks the
format), written under a temporary name and renamed. Existing outputs are not
replaced without ``--overwrite``; a video is written beside the target and
moved into place only when complete; PNG outputs likewise go to a hidden
folder beside OUTPUT and are moved into it only once every frame succeeded, so
a failure (an unreadable input frame, an output with NaN or inf, which has no
8-bit image ...) leaves OUTPUT as it was. Weights with NaN or inf are refused
when loaded. Another extension (``out.xyz``) is refused, and so is an OUTPUT
that is, contains or lies inside INPUT, ``--checkpoint`` or ``-opt``, even with
``--overwrite``. The last line printed is OUTPUT.
"""

import argparse
import os.path as osp
import sys
from typing import TYPE_CHECKING, Optional

import _bootstrap  # noqa: F401

from basicattn.errors import UserError
from basicattn.utils.run_arguments import add_network_arguments
from basicattn.utils.tool_runner import add_debug_argument, run_tool

if TYPE_CHECKING:
    import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('input', help='image, image/frame folder, or video file')
    parser.add_argument(
        'output', help='output folder, video file (.mp4 ...), or image file for one image'
    )
    add_network_arguments(parser)
    parser.add_argument('--tile', type=int, default=None, help='LR tile size (tiled inference)')
    parser.add_argument('--tile-overlap', type=int, default=16, help='LR overlap of tiles')
    parser.add_argument('--self-ensemble', action='store_true', help='x8 flips/rotations')
    parser.add_argument(
        '--mode',
        choices=('auto', 'window', 'sequence'),
        default='auto',
        help='video archs: carry the recurrent state (sequence) or not',
    )
    parser.add_argument(
        '--padding',
        default='reflection',
        help='border policy of the frame windows (default: reflection)',
    )
    parser.add_argument('--device', default='cpu', help='cpu, cuda, cuda:1 ...')
    parser.add_argument(
        '--channels-last',
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run in channels_last memory format (default: the arch's measured preference)",
    )
    parser.add_argument(
        '--compile',
        action='store_true',
        help='torch.compile the network (inductor, needs a C++ compiler)',
    )
    parser.add_argument(
        '--backend',
        choices=('pytorch', 'onnxruntime'),
        default='pytorch',
        help='onnxruntime: --checkpoint is an .onnx file written by tools/export.py',
    )
    parser.add_argument(
        '--precision',
        choices=('auto', 'fp32', 'bf16', 'fp16'),
        default='auto',
        help='auto (default): bf16 autocast where the CPU (AVX-512 BF16, AMX) or GPU computes '
        "it natively and the arch's measured bf16 PSNR is >= 40 dB, else fp32; fp16: CUDA only",
    )
    parser.add_argument('--fps', type=float, default=None, help='frame rate of a video output')
    parser.add_argument(
        '--codec',
        default=None,
        help='video output: h264 (default), h265 or mp4v (basicattn/utils/video_encode.py)',
    )
    parser.add_argument(
        '--crf',
        default=None,
        help='video output: constant rate factor of h264/h265, 0-51, lower is better '
        '(default 18 for h264, 23 for h265)',
    )
    parser.add_argument('--overwrite', action='store_true', help='replace existing outputs')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def load_network(args: argparse.Namespace):
    """The network of the command line (:func:`~basicattn.converters.network_loading.
    network_from_arguments`).

    Returns:
        tuple[torch.nn.Module, dict]: The network (on ``--device``, eval mode)
        and its arch config.
    """
    import torch

    if args.backend == 'onnxruntime':
        from basicattn.deploy.onnx_stream import network_from_onnx_arguments

        return network_from_onnx_arguments(args)
    from basicattn.converters.network_loading import network_from_arguments

    net, cfg = network_from_arguments(
        args.opt, args.arch, args.arch_args, args.checkpoint, args.scale, args.param_key
    )
    return net.to(torch.device(args.device)), cfg


class ImageFileSink:
    """The one output image of a single image input, written atomically.

    :func:`basicattn.utils.img_util.imwrite` encodes in memory, writes a
    temporary file beside ``path`` and renames it over ``path``, so ``path``
    is never half-written. Same interface as
    :class:`basicattn.data.frame_io.FrameSink`.

    Args:
        path (str): The image file (its extension selects the format).
        overwrite (bool): Replace an existing file. Default: False.
    """

    def __init__(self, path: str, overwrite: bool = False):
        if osp.exists(path) and not overwrite:
            raise FileExistsError(f'{path} exists; pass --overwrite to replace it')
        self.path, self.count = path, 0

    def write(self, frame: 'np.ndarray', name: Optional[str] = None) -> str:
        """Write the RGB uint8 image to ``path`` (``name`` is ignored)."""
        from basicattn.utils.img_util import imwrite

        if self.count:
            raise UserError(f'{self.path}: an image file holds one image, got a second frame')
        imwrite(self.path, frame)
        self.count += 1
        return self.path

    def close(self) -> None:
        """Nothing to move: the image was renamed into place when written."""

    def abort(self) -> None:
        """Nothing to remove: an unfinished write leaves no file behind."""


def make_sink(args: argparse.Namespace, source_fps: Optional[float] = None):
    """Where the frames go: an image file, a video file or a folder of PNG files.

    An OUTPUT ending in an image extension (``IMG_SUFFIXES``) that is not an
    existing folder is one image file, which only a single image INPUT fills;
    one ending in a video extension is a video file; a path without an
    extension, or an existing folder, is a folder of PNG files.

    Raises:
        UserError: An image-file OUTPUT for a folder or video INPUT, or an
            OUTPUT with another extension that is not an existing folder.
    """
    from basicattn.data.frame_io import VIDEO_SUFFIXES, FrameSink, is_video_file
    from basicattn.data.lmdb_io import IMG_SUFFIXES

    ext = osp.splitext(args.output)[1].lower()
    if ext and ext not in IMG_SUFFIXES + VIDEO_SUFFIXES and not osp.isdir(args.output):
        raise UserError(
            f'OUTPUT {args.output}: unknown extension {ext}; give an image file '
            f'({" ".join(IMG_SUFFIXES)}), a video file ({" ".join(VIDEO_SUFFIXES)}), or a '
            'folder (a path without an extension, or an existing folder)'
        )
    if ext in VIDEO_SUFFIXES:
        from basicattn.utils.video_encode import open_video_sink

        return open_video_sink(
            args.output,
            fps=args.fps,
            codec=args.codec,
            crf=args.crf,
            source=args.input if is_video_file(args.input) else None,
            source_fps=source_fps,
            overwrite=args.overwrite,
            opencv_sink=lambda path, fps, overwrite: FrameSink(path, fps=fps, overwrite=overwrite),
        )
    if args.codec is not None or args.crf is not None:
        flag = '--codec' if args.codec is not None else '--crf'
        raise UserError(
            f'{flag}: OUTPUT {args.output} is not a video file; give a video OUTPUT '
            f'({" ".join(VIDEO_SUFFIXES)}) or drop {flag}'
        )
    if ext in IMG_SUFFIXES and not osp.isdir(args.output):
        if osp.isdir(args.input) or is_video_file(args.input):
            kind = 'a folder' if osp.isdir(args.input) else 'a video'
            raise UserError(
                f'OUTPUT {args.output}: an image file ({ext}) holds the result of one image, '
                f'but INPUT {args.input} is {kind}; give an output folder or a video file'
            )
        return ImageFileSink(args.output, overwrite=args.overwrite)
    return FrameSink(args.output, fps=args.fps or source_fps or 25.0, overwrite=args.overwrite)


def check_output(out, args: argparse.Namespace, where: str) -> None:
    """Refuse an output with NaN or inf (it would be written as a black image).

    Raises:
        NonFiniteError: Naming the input frame and the weights.
    """
    from basicattn.errors import NonFiniteError
    from basicattn.utils.finite import describe_values, is_finite

    if not is_finite(out):
        weights = args.checkpoint or 'the network'
        raise NonFiniteError(
            f'{where}: the output of {weights} holds {describe_values(out)}; nothing was '
            'written (check the weights; with --tile or another --device the output may differ)'
        )


def main(argv=None):
    """Run the tool; user mistakes end in one ``error:`` line and exit code 2."""
    return run_tool(lambda a: run(parse_args(a)), argv)


def run(args):
    import math

    import torch
    from tqdm import tqdm

    from basicattn.utils.devices import resolve_device

    args.device = resolve_device(args.device)  # before any output exists
    if args.fps is not None and not (math.isfinite(args.fps) and args.fps > 0):
        raise UserError(f'--fps {args.fps:g}: the frame rate of a video must be positive (e.g. 25)')

    from basicattn.data.frame_io import FrameSource, sliding_windows
    from basicattn.models.sr_model import SRModel
    from basicattn.utils.img_util import img2tensor, tensor2img

    if args.compile:
        from basicattn.config.compile_settings import check_compile

        check_compile(True, '--compile')  # before any output exists
    from basicattn.utils.output_guard import refuse_outputs_over_inputs

    inputs = [('INPUT', args.input), ('--checkpoint', args.checkpoint), ('-opt', args.opt)]
    refuse_outputs_over_inputs([('OUTPUT', args.output)], inputs)  # even with --overwrite
    source = FrameSource(args.input)
    files = source.files
    sink = make_sink(args, source.fps)
    net, cfg = load_network(args)
    from basicattn.models.inference_precision import resolve_precision

    requested = args.precision
    if args.backend == 'onnxruntime':  # the file computes in the precision it was exported in
        if requested not in ('auto', 'fp32'):
            raise UserError(
                f'--precision {requested}: --backend onnxruntime runs the ONNX file as it was '
                'exported; export it with tools/export.py --precision fp16, or drop --precision'
            )
        requested = 'fp32'  # float32 frames in and out
    precision = resolve_precision(requested, net, args.device)
    num_frames = getattr(net, 'num_frames', None)
    from basicattn.archs.facts import is_recurrent

    stateful = is_recurrent(net)
    mode = args.mode if args.mode != 'auto' else ('sequence' if stateful else 'window')
    if mode == 'sequence' and not stateful:
        raise UserError(
            f'--mode sequence: {cfg["type"]} has no recurrent state '
            '(its forward takes no return_state)'
        )
    if mode == 'sequence' and (args.tile or args.self_ensemble):
        raise UserError(
            '--mode sequence carries one state over whole frames; it cannot be '
            'combined with --tile or --self-ensemble (use --mode window)'
        )
    model = SRModel(
        net,
        test_cfg=dict(
            tile=args.tile,
            tile_overlap=args.tile_overlap,
            self_ensemble=args.self_ensemble,
            channels_last=args.channels_last,
            compile=args.compile,
        ),
    )  # sets the network's memory format and compiles it (sequence mode too)
    device = torch.device(args.device)
    if num_frames:
        items = sliding_windows(iter(source), num_frames, args.padding)
    else:
        items = enumerate([f] for f in source)
    names = source.names
    state = None
    kind = f'{cfg["type"]} ({"video, " + mode if num_frames else "image"})'
    bar = tqdm(desc=kind, unit='frame', disable=args.quiet, total=len(names) if names else None)
    try:
        with torch.inference_mode(), precision.autocast(device):
            for index, frames in items:
                lq = torch.stack([img2tensor(f) for f in frames]).to(device)
                lq = lq[None] if num_frames else lq  # (1, T, C, h, w) or (1, C, h, w)
                name = names[index] if names else None
                if mode == 'sequence':
                    out, state = net(lq, state, return_state=True)
                else:
                    out = model.inference(lq)  # clamped, inf made NaN
                out = out.float()  # bf16 / fp16 under --precision: saved from float32
                check_output(out, args, files[index] if files else f'{args.input}: frame {index}')
                out = out.clamp(0, 1)
                sink.write(tensor2img(out[0].cpu()), name)
                bar.update(1)
        sink.close()
    except BaseException:
        sink.abort()  # only the temporary outputs: OUTPUT stays as it was
        raise
    finally:
        bar.close()
    print(f'{kind}: wrote {sink.count} frame(s) to {args.output} in {precision.describe()}')
    print(args.output)
    return 0


if __name__ == '__main__':
    sys.exit(main())
