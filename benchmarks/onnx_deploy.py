"""ONNX deployment checks of the paper-sized archs (the numbers of docs/deploy.md).

    python benchmarks/onnx_deploy.py [--clip DIR] [--archs DASAA MANA ...] [--frames 7]
        [--size 32 32] [--out DIR]

1. **Streamed DASAA.** DASAA with its default (paper) sizes and PyTorch's
   default initialisation, seed 0 (no trained weights exist), is exported as
   a dynamic float32 step graph (onnxslim simplified) and as its float16
   conversion; :class:`basicattn.deploy.onnx_stream.OnnxStream`
   super-resolves a clip with each, carrying the ConvLSTM state, and the
   frames are compared with PyTorch's sequence mode
   (``DASAA.forward_sequence`` on the same reflection-padded windows): max
   abs difference and PSNR with peak 1 (PyTorch as the reference), per frame
   and over the clip, on the raw outputs (not clamped: an untrained network's
   output is not an image, and clamping would hide differences). The clip is the first ``--frames``
   frames of ``--clip`` (default: the Vimeo-90K sample of
   ``BASICATTN_TESTDATA``, downscaled x4 with MATLAB bicubic), or random
   frames when it is absent.
2. **Dynamic height/width and fp16 per arch.** Each of ``--archs`` (default
   the video archs) is exported with ``--dynamic`` at ``--size`` and checked by
   onnxruntime at that size and on a batch of 2 at ``(h + 8, w + 16)``, in
   float32 and float16; the max abs differences, file sizes and times are
   printed.

Everything runs on the CPU; times are of one run on a shared machine (the
differences are what the check is about).
"""

import argparse
import glob
import math
import os
import os.path as osp
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402

from basicattn.archs.build import build_network  # noqa: E402
from basicattn.deploy.onnx_export import export_onnx  # noqa: E402
from basicattn.deploy.onnx_stream import OnnxStream  # noqa: E402

VIDEO_ARCHS = ('DASAA', 'MANA', 'DKSAN', 'EDVR')


def _clip(folder, frames, size):
    """``frames`` LR frames ``(3, h, w)`` in [0, 1]: a folder downscaled x4, or random."""
    from basicattn.utils.img_util import img2tensor, imread
    from basicattn.utils.matlab_imresize import imresize

    files = sorted(glob.glob(osp.join(folder, '*.png')))[:frames] if folder else []
    if len(files) < frames:
        print(f'clip: {frames} random {size[0]}x{size[1]} frames (no clip at {folder})')
        generator = torch.Generator().manual_seed(0)
        return [torch.rand(3, *size, generator=generator) for _ in range(frames)]
    print(f'clip: {folder}, {frames} frames, MATLAB bicubic x1/4')
    return [imresize(img2tensor(imread(f))[None], scale=0.25)[0].clamp(0, 1) for f in files]


def _psnr(a, b):
    mse = (a - b).square().mean().item()
    return float('inf') if mse == 0 else 10 * math.log10(1.0 / mse)


def _pytorch_sequence(net, frames):
    """DASAA's sequence mode over the reflection-padded windows of ``frames``."""
    from basicattn.data.frame_io import sliding_windows

    windows = [torch.stack(w) for _, w in sliding_windows(iter(frames), net.num_frames)]
    with torch.no_grad():
        return net.forward_sequence(torch.stack(windows)[None])[0]


def streamed_dasaa(clip, out_dir):
    torch.manual_seed(0)
    net = build_network(dict(type='DASAA')).eval()
    want = _pytorch_sequence(net, clip)
    print(f'PyTorch sequence mode: outputs in [{want.min():.3f}, {want.max():.3f}]')
    for precision in ('fp32', 'fp16'):
        path = osp.join(out_dir, f'dasaa_step_{precision}.onnx')
        start = time.perf_counter()
        result = export_onnx(
            net, path, size=tuple(clip[0].shape[-2:]), dynamic=True, overwrite=True,
            precision=precision, recurrent=True,
        )  # fmt: skip
        took = time.perf_counter() - start
        got = torch.stack(list(OnnxStream(path).run(clip)))
        diffs = [(g - w).abs().max().item() for g, w in zip(got, want)]
        psnrs = [_psnr(g, w) for g, w in zip(got, want)]
        print(
            f'DASAA streamed ({precision} step graph, {result.size_bytes / 2**20:.1f} MiB, '
            f'export + check {took:.0f} s), {len(clip)} frames of '
            f'{clip[0].shape[-2]}x{clip[0].shape[-1]}: max abs difference '
            f'{max(diffs):.3g} (per frame {", ".join(f"{d:.2g}" for d in diffs)}), '
            f'PSNR vs PyTorch {_psnr(got, want):.1f} dB (per frame min {min(psnrs):.1f} dB)'
        )


def dynamic_exports(archs, size, out_dir):
    for name in archs:
        torch.manual_seed(0)
        net = build_network(dict(type=name)).eval()
        for precision in ('fp32', 'fp16'):
            path = osp.join(out_dir, f'{name}_{precision}.onnx')
            start = time.perf_counter()
            try:
                result = export_onnx(
                    net, path, size=size, dynamic=True, overwrite=True, precision=precision
                )
            except Exception as err:  # noqa: BLE001  (report and go on)
                print(f'{name} {precision}: FAILED {err}')
                continue
            took = time.perf_counter() - start
            diffs = result.fp16_max_abs_diffs if precision == 'fp16' else result.max_abs_diffs
            shapes = ', '.join('x'.join(map(str, s)) for s in result.shapes)
            print(
                f'{name} {precision} dynamic: checked on {shapes}: max abs differences '
                f'{", ".join(f"{d:.2g}" for d in diffs)}; {result.size_bytes / 2**20:.1f} MiB; '
                f'export + checks {took:.0f} s'
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = os.environ.get('BASICATTN_TESTDATA', osp.join('..', 'shared', 'data'))
    parser.add_argument(
        '--clip', default=osp.join(data, 'vimeo90k_sample', 'sequences', '00001', '0001')
    )
    parser.add_argument('--frames', type=int, default=7)
    parser.add_argument('--archs', nargs='*', default=list(VIDEO_ARCHS))
    parser.add_argument('--size', type=int, nargs=2, default=(32, 32))
    parser.add_argument('--skip-stream', action='store_true')
    parser.add_argument('--out', default=None, help='keep the .onnx files here')
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = args.out or tmp
        os.makedirs(out_dir, exist_ok=True)
        if not args.skip_stream:
            streamed_dasaa(_clip(args.clip, args.frames, args.size), out_dir)
        dynamic_exports(args.archs, tuple(args.size), out_dir)


if __name__ == '__main__':
    main()
