"""Inference speed of every registered arch: bf16 autocast and onnxruntime against float32.

For each registered arch (paper-sized, random weights) one LR input of a realistic size is
super-resolved, per output frame (video archs: one window of their usual number of frames,
the centre frame out), by what tools/infer.py and tools/test.py run,
``SRModel.inference`` / ``VideoSRModel.inference`` (the arch's preferred memory format,
output clamped to [0, 1]), in:

* ``fp32``: float32 eager, the reference (``--precision fp32``);
* ``bf16``: bf16 autocast (``--precision bf16``; what ``auto`` runs on a CPU with
  AVX-512 BF16 or AMX, :mod:`basicattn.models.inference_precision`), with its PSNR
  against the fp32 output;
* ``bf16 weights`` (``--bf16-weights``): network and input converted to bfloat16, no
  autocast, with its PSNR (measured to decide against it: no faster than autocast on
  the CPU, and further from float32);
* ``onnxruntime``: the float32 ONNX graph of :func:`basicattn.deploy.onnx_export.export_onnx`
  at the timed size (checked there against PyTorch), CPUExecutionProvider with the same
  threads, where the arch exports and onnxruntime is installed (``--no-onnx``: skipped).

The table gives each variant's time as a ratio to fp32 eager, measured in one run: the
variants are interleaved, each warmed up once, and the median of ``--repeat`` calls is
kept. With one thread (the default) the clock is the process CPU time, which other
processes on a shared machine do not inflate; with ``--threads N`` it is wall time.

Sizes: image archs at ``--size`` LR (default 180 x 320: 720 x 1280 out at x4), video archs
one window of ``--size`` frames, DKSAN (x16) at a quarter of it (45 x 80 -> 720 x 1280).
``--quick`` times the tiny archs of tests/archs/arch_cases.py instead (a smoke test of the
script: ``tests/benchmarks/test_infer_speed.py``).

Usage::

    python benchmarks/infer_speed.py [--size 180 320] [--archs A2N,EDSR] [--repeat 3]
        [--threads 1] [--no-onnx] [--bf16-weights] [--quick] [--markdown FILE]
"""

import argparse
import copy
import os.path as osp
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from basicattn.archs.build import build_network  # noqa: E402
from basicattn.models.inference_precision import cpu_bf16_flags, psnr_db  # noqa: E402
from basicattn.models.sr_model import SRModel  # noqa: E402
from basicattn.models.video_sr_model import VideoSRModel  # noqa: E402
from basicattn.registry import ARCHS  # noqa: E402

#: Paper-sized arch configs and the divisor of ``--size`` each is timed at.
FULL_ARCHS: Dict[str, Tuple[dict, int]] = {
    'A2N': (dict(upscale=4), 1),
    'AttentionProbe': (dict(upscale=4), 1),
    'Bicubic': (dict(upscale=4), 1),
    'DAN': (dict(upscale=3), 1),
    'EDSR': (dict(upscale=4), 1),
    'EDVR': (dict(), 1),
    'MANA': (dict(), 1),
    'DASAA': (dict(), 1),
    'DKSAN': (dict(), 4),
}

#: The image archs, whose bf16 ratio has a goal (issue 28: at most 0.6 of fp32 on a CPU
#: with native bf16).
IMAGE_GOAL = 0.6

VARIANTS = ('fp32', 'bf16', 'bf16 weights', 'onnxruntime')


@dataclass
class Result:
    """One arch's row: median seconds per variant, notes for variants that did not run."""

    arch: str
    shape: Tuple[int, ...]
    seconds: Dict[str, float] = field(default_factory=dict)
    psnr: Dict[str, float] = field(default_factory=dict)
    notes: Dict[str, str] = field(default_factory=dict)

    @property
    def video(self) -> bool:
        return len(self.shape) == 5


def tiny_arch_cases() -> Dict[str, Tuple[dict, Tuple[int, ...]]]:
    """The tiny arch configs and inputs of the test suite (``--quick``)."""
    tests_dir = osp.join(REPO_ROOT, 'tests', 'archs')
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)
    from arch_cases import ARCH_CASES

    return {name: (case['kwargs'], tuple(case['input'])) for name, case in ARCH_CASES.items()}


def input_shape(net: torch.nn.Module, size: Sequence[int], divisor: int) -> Tuple[int, ...]:
    """``(1, 3, h, w)``, or ``(1, T, 3, h, w)`` for a video arch (``num_frames``)."""
    h, w = size[0] // divisor, size[1] // divisor
    frames = getattr(net, 'num_frames', None)
    return (1, frames, 3, h, w) if frames else (1, 3, h, w)


def onnx_runner(
    net: torch.nn.Module, x: torch.Tensor, threads: int, folder: str, name: str
) -> Callable[[], torch.Tensor]:
    """Export ``net`` at ``x``'s size (checked by export_onnx) and return an onnxruntime call.

    Raises:
        UserError: onnx / onnxruntime missing, or the arch does not export at this size.
    """
    from basicattn.deploy.onnx_export import export_onnx, require_onnx

    _, ort = require_onnx()
    path = osp.join(folder, f'{name}.onnx')
    export_onnx(net, path, size=tuple(x.shape[-2:]), dynamic=False, name=name)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    feed = {session.get_inputs()[0].name: x.numpy()}
    return lambda: torch.from_numpy(session.run(None, feed)[0]).clamp(0, 1)


def time_arch(
    name: str,
    kwargs: dict,
    shape: Optional[Tuple[int, ...]],
    size: Sequence[int],
    divisor: int,
    args: argparse.Namespace,
    folder: str,
) -> Result:
    """Time every variant of one arch, interleaved (see the module docstring)."""
    torch.manual_seed(0)
    net = build_network(dict(type=name, **kwargs), where=f'infer_speed {name}').eval()
    shape = shape or input_shape(net, size, divisor)
    result = Result(name, shape)
    x = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    model_class = VideoSRModel if len(shape) == 5 else SRModel
    runs: Dict[str, Callable[[], torch.Tensor]] = {}
    if not args.no_onnx:
        try:  # from the NCHW float32 network, before SRModel sets its memory format
            runs['onnxruntime'] = onnx_runner(copy.deepcopy(net), x, args.threads, folder, name)
        except Exception as exc:  # noqa: BLE001  (a row notes why, the others still run)
            result.notes['onnxruntime'] = _why(exc)
    if args.bf16_weights:
        half = model_class(copy.deepcopy(net).to(torch.bfloat16))
        x_half = x.to(torch.bfloat16)
        runs['bf16 weights'] = lambda: half.inference(x_half).float()
    fp32 = model_class(net)
    bf16 = model_class(net, test_cfg=dict(amp='bf16'))
    runs['fp32'] = lambda: fp32.inference(x)
    runs['bf16'] = lambda: bf16.inference(x)
    order = [v for v in VARIANTS if v in runs]
    clock = time.process_time if args.threads == 1 else time.perf_counter
    outputs, times = {}, {v: [] for v in order}
    with torch.inference_mode():
        for variant in order:  # warm-up, and the outputs compared
            try:
                outputs[variant] = runs[variant]()
            except Exception as exc:  # noqa: BLE001
                result.notes[variant] = _why(exc)
        order = [v for v in order if v in outputs]
        for _ in range(args.repeat):
            for variant in order:
                start = clock()
                runs[variant]()
                times[variant].append(clock() - start)
    for variant in order:
        result.seconds[variant] = statistics.median(times[variant])
        if variant != 'fp32' and 'fp32' in outputs:
            result.psnr[variant] = psnr_db(outputs[variant].float(), outputs['fp32'])
    return result


def _why(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f'{type(exc).__name__}: {text[0] if text else ""}'[:160]


def _cell(result: Result, variant: str, with_psnr: bool = False) -> str:
    if variant not in result.seconds or 'fp32' not in result.seconds:
        note = result.notes.get(variant, '')
        return 'not installed' if 'not installed' in note else 'fails (see the log)'
    ratio = f'{result.seconds[variant] / result.seconds["fp32"]:.2f}'
    if with_psnr:
        return f'{ratio} ({result.psnr[variant]:.1f} dB)'
    return ratio


def format_table(results: Sequence[Result], args: argparse.Namespace) -> str:
    """The Markdown table: fp32 ms per frame and the other variants' time ratios."""
    header = ['arch', 'LR input', 'fp32 eager ms/frame', 'bf16 autocast / fp32 (PSNR)']
    if args.bf16_weights:
        header.append('bf16 weights / fp32 (PSNR)')
    if not args.no_onnx:
        header.append('onnxruntime fp32 / fp32')
    rows = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for r in results:
        frames = f'{r.shape[1]} x ' if r.video else ''
        shape = f'{frames}{r.shape[-2]}x{r.shape[-1]}'
        ms = r.notes.get('fp32', '-')
        if 'fp32' in r.seconds:
            value = 1000 * r.seconds['fp32']
            ms = f'{value:.0f}' if value >= 10 else f'{value:.2f}'
        cells = [r.arch, shape, ms, _cell(r, 'bf16', True)]
        if args.bf16_weights:
            cells.append(_cell(r, 'bf16 weights', True))
        if not args.no_onnx:
            cells.append(_cell(r, 'onnxruntime'))
        rows.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(rows)


def summary(results: Sequence[Result]) -> str:
    """The image archs' worst bf16 ratio against the goal (:data:`IMAGE_GOAL`)."""
    ratios = {
        r.arch: r.seconds['bf16'] / r.seconds['fp32']
        for r in results
        if not r.video and r.arch != 'Bicubic' and {'bf16', 'fp32'} <= set(r.seconds)
    }
    if not ratios:
        return 'no image arch timed'
    worst = max(ratios, key=ratios.get)
    verdict = 'reached' if ratios[worst] <= IMAGE_GOAL else 'NOT reached'
    return (
        f'image archs (Bicubic aside): bf16 at most {ratios[worst]:.2f} of fp32 ({worst}); '
        f'goal <= {IMAGE_GOAL}: {verdict}'
    )


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        '--size', type=int, nargs=2, default=(180, 320), metavar=('H', 'W'), help='LR size'
    )
    parser.add_argument('--archs', default=None, help='comma-separated subset (default: all)')
    parser.add_argument('--repeat', type=int, default=3, help='timed calls per variant')
    parser.add_argument('--threads', type=int, default=1, help='torch / onnxruntime threads')
    parser.add_argument('--no-onnx', action='store_true', help='skip onnxruntime')
    parser.add_argument(
        '--bf16-weights', action='store_true', help='also time bfloat16 weights (no autocast)'
    )
    parser.add_argument('--quick', action='store_true', help='tiny archs, 2 repeats (a test)')
    parser.add_argument('--markdown', help='also write the table to this file')
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.threads < 1 or min(args.size) < 1:
        parser.error('--repeat, --threads and --size must be positive')
    if args.quick:
        args.repeat = min(args.repeat, 2)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    ARCHS.import_from_location()
    registered = sorted(ARCHS.module_dict)
    names = registered if args.archs is None else [a.strip() for a in args.archs.split(',')]
    unknown = [n for n in names if n not in registered]
    if unknown:
        print(f'error: --archs: unknown arch(s) {unknown}; registered: {", ".join(registered)}')
        return 2
    missing = [n for n in names if n not in FULL_ARCHS]
    if missing:
        print(f'error: {missing}: no size in benchmarks/infer_speed.py FULL_ARCHS; add one')
        return 2
    torch.set_num_threads(args.threads)
    tiny = tiny_arch_cases() if args.quick else {}
    flags = ' '.join(cpu_bf16_flags()) or 'none'
    clock = 'process CPU time' if args.threads == 1 else 'wall time'
    head = (
        f'infer_speed: torch {torch.__version__}, {args.threads} thread(s) ({clock}), median '
        f'of {args.repeat} after a warm-up; native bf16 CPU flags: {flags}'
    )
    print(head, flush=True)
    results, failed = [], False
    with tempfile.TemporaryDirectory(prefix='infer_speed_') as folder:
        for name in names:
            kwargs, divisor = FULL_ARCHS[name]
            shape = None
            if args.quick:
                kwargs, shape = tiny[name]
            start = time.perf_counter()
            try:
                result = time_arch(name, kwargs, shape, args.size, divisor, args, folder)
            except Exception as exc:  # noqa: BLE001  (one arch must not hide the others)
                traceback.print_exc()
                result, failed = Result(name, shape or (1, 3, 0, 0)), True
                result.notes['fp32'] = f'FAIL: {_why(exc)}'
            failed = failed or 'fp32' not in result.seconds or 'bf16' not in result.seconds
            notes = '; '.join(f'{v}: {n}' for v, n in result.notes.items())
            print(
                f'[{name}] {time.perf_counter() - start:.0f} s' + (f' ({notes})' if notes else ''),
                flush=True,
            )
            results.append(result)
    table = format_table(results, args)
    print(table)
    print(summary(results))
    if args.markdown:
        with open(args.markdown, 'w', encoding='utf-8') as f:
            f.write(f'{head}\n\n{table}\n\n{summary(results)}\n')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
