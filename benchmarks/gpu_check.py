"""One GPU check of basicattn, ready for when a CUDA machine is lent (issue 15, point 7).

Prints one table (and writes it as Markdown with ``--markdown FILE``), a row
per check, with the measured value, what it is compared with, and a verdict
(``ok``, ``FAIL`` or ``skip: reason``). The exit code is 1 if any row fails.

Checks:

* ``arch``: every registered arch (paper-sized, small inputs), forward and
  backward of ``out.mean()`` on the device in float32 (TF32 off) and under
  bf16 autocast, against the float32 CPU result of the same weights and
  input: output max abs difference (float32: < 1e-3) and PSNR (bf16:
  >= 40 dB, the bar of the CPU AMP tests), and the relative difference of
  all gradients (input and parameters; float32: < 1e-3, bf16: < 0.1).
* ``dcn``: the plain-PyTorch DCNv2 (:func:`basicattn.ops.modulated_deform_conv2d`)
  against ``torchvision.ops.deform_conv2d`` on the device (values and the
  gradients of input, offset, mask, weight and bias; < 1e-4), and the time of
  forward + backward against a dense conv of the same shape (and against
  torchvision's when it is installed).
* ``mana``: the default MANA (14.3M parameters) on a 7-frame 180 x 320 LR
  clip under ``no_grad``: peak device memory and time; and ms per output
  frame at 448 x 256 HR (112 x 64 LR) in float32 and bf16 (paper: 59 ms on a
  2080 Ti).
* ``dksan``: the default DKSAN x16 at 64 x 64 LR, 7 frames: s per output
  frame (paper: 0.95 s on their GPU).
* ``train``: 200 iterations of EDSR-baseline x2 (batch 16, 48 x 48 LR
  patches, L1, Adam) through ``SRModel.train_step`` in float32 NCHW eager,
  then with ``train.amp: bf16``, ``train.channels_last`` and
  ``train.compile`` (the same wrapper and generator set-up as the options);
  iterations/s of each and their ratio.

Timing uses CUDA events around ``--repeat`` calls after warm-up, the median
kept. The whole script is sized to run in under 8 minutes on one recent GPU
(most of it the CPU references of the paper-sized archs and the compile).

``--quick`` runs every check at tiny sizes (the tiny archs of
``tests/archs/arch_cases.py``, 3 training iterations, no compile) so that the
script itself can be tested on a CPU: ``tests/benchmarks/test_gpu_check.py``
runs ``--device cpu --quick``. On a CPU the "device" result is compared with
itself, so only the code path is checked there.

Usage::

    python benchmarks/gpu_check.py [--device cuda] [--quick] [--only arch,dcn,...]
        [--repeat 10] [--train-iters 200] [--no-compile] [--markdown FILE]
"""

import argparse
import copy
import math
import os.path as osp
import statistics
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from basicattn.archs.build import build_network  # noqa: E402
from basicattn.models.autocast import autocast_region  # noqa: E402
from basicattn.ops import modulated_deform_conv2d  # noqa: E402
from basicattn.registry import ARCHS  # noqa: E402

CHECKS = ('arch', 'dcn', 'mana', 'dksan', 'train')

#: Paper-sized arch configs and the (small) input each is checked on.
FULL_ARCHS = {
    'A2N': (dict(upscale=4), (1, 3, 48, 48)),
    'AttentionProbe': (dict(upscale=4), (1, 3, 48, 48)),
    'Bicubic': (dict(scale=4), (1, 3, 48, 48)),
    'DAN': (dict(upscale=3), (1, 3, 32, 32)),
    'EDSR': (dict(upscale=4), (1, 3, 48, 48)),
    'MANA': (dict(), (1, 7, 3, 32, 32)),
    'DASAA': (dict(), (1, 5, 3, 32, 32)),
    'DKSAN': (dict(), (1, 7, 3, 16, 16)),
    'EDVR': (dict(), (1, 5, 3, 32, 32)),
}


@dataclass
class Row:
    """One line of the table."""

    check: str
    case: str
    measured: str
    reference: str
    verdict: str


def tiny_arch_cases() -> Dict[str, tuple]:
    """The tiny arch configs and inputs of the test suite (``--quick``)."""
    tests_dir = osp.join(REPO_ROOT, 'tests', 'archs')
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)
    from arch_cases import ARCH_CASES

    return {name: (case['kwargs'], case['input']) for name, case in ARCH_CASES.items()}


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], object], device: torch.device, repeat: int) -> float:
    """Median wall time of ``fn`` over ``repeat`` calls, after one warm-up call."""
    fn()
    synchronize(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB) of ``a`` against ``b`` for [0, 1] images, inf when equal."""
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def relative_difference(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> float:
    """||a - b|| / ||b|| over all tensors together (float64)."""
    num = sum(float(torch.sum((x.double().cpu() - y.double().cpu()) ** 2)) for x, y in zip(a, b))
    den = sum(float(torch.sum(y.double().cpu() ** 2)) for y in b)
    return math.sqrt(num / den) if den > 0 else math.sqrt(num)


def forward_backward(net: nn.Module, x: torch.Tensor, amp: Optional[str]):
    """Output (float32, detached) and gradients (input first) of ``out.mean()``."""
    net.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_()
    with autocast_region(x.device.type, amp):  # what train.amp / val.amp use
        out = net(x)
    out.float().mean().backward()
    grads = [x.grad] + [p.grad for p in net.parameters() if p.grad is not None]
    return out.detach().float(), [g.detach().float() for g in grads]


def check_archs(device: torch.device, quick: bool) -> List[Row]:
    """Every arch on ``device`` (float32 and bf16) against float32 on the CPU."""
    cases = tiny_arch_cases() if quick else FULL_ARCHS
    ARCHS.import_from_location()
    rows = []
    for name in sorted(ARCHS.module_dict):
        if name not in cases:
            rows.append(Row('arch', name, '-', '-', 'FAIL: no case in gpu_check.py'))
            continue
        kwargs, shape = cases[name]
        torch.manual_seed(0)
        cpu_net = build_network(dict(type=name, **kwargs), where=f'gpu_check {name}')
        x = torch.rand(*shape)
        ref_out, ref_grads = forward_backward(cpu_net, x, None)
        dev_net = copy.deepcopy(cpu_net).to(device)
        for label, amp, out_bar, grad_bar in (
            ('float32', None, 1e-3, 1e-3),
            ('bf16', 'bf16', None, 0.1),
        ):
            out, grads = forward_backward(dev_net, x.to(device), amp)
            diff = (out.cpu() - ref_out).abs().max().item()
            quality = psnr(out.clamp(0, 1).cpu(), ref_out.clamp(0, 1))
            grad_diff = relative_difference(grads, ref_grads) if ref_grads[1:] else 0.0
            ok_out = diff < out_bar if out_bar is not None else quality >= 40
            ok = ok_out and grad_diff < grad_bar and bool(torch.isfinite(out).all())
            rows.append(
                Row(
                    'arch',
                    f'{name} {label} fwd+bwd',
                    f'max abs d={diff:.2e} PSNR={quality:.1f} dB grad rel={grad_diff:.2e}',
                    (f'max abs d<{out_bar:g}' if out_bar is not None else 'PSNR>=40 dB')
                    + f', grad rel<{grad_bar:g} (CPU fp32)',
                    'ok' if ok else 'FAIL',
                )
            )
    return rows


def torchvision_deform_conv():
    """``torchvision.ops.deform_conv2d`` when its compiled ops load, else None and why."""
    try:
        from torchvision.ops import deform_conv2d
    except Exception as exc:  # an import of compiled ops can fail in many ways
        return None, f'torchvision unavailable ({type(exc).__name__}: {exc})'.splitlines()[0]
    return deform_conv2d, ''


def check_dcn(device: torch.device, quick: bool, repeat: int) -> List[Row]:
    """DCNv2 values and gradients against torchvision; time against a dense conv."""
    batch, ch, size, groups = (1, 8, 12, 2) if quick else (4, 64, 128, 8)
    torch.manual_seed(0)
    x = torch.rand(batch, ch, size, size, device=device)
    offset = torch.randn(batch, 2 * groups * 9, size, size, device=device) * 2
    mask = torch.rand(batch, groups * 9, size, size, device=device)
    weight = torch.randn(ch, ch, 3, 3, device=device) * 0.05
    bias = torch.randn(ch, device=device)
    leaves = [t.clone().requires_grad_() for t in (x, offset, mask, weight, bias)]

    def ours():
        out = modulated_deform_conv2d(*leaves, 1, 1, 1, 1, groups, backend='torch')
        out.sum().backward()
        return out

    def dense():
        out = F.conv2d(leaves[0], leaves[3], leaves[4], 1, 1)
        out.sum().backward()
        return out

    rows = []
    tv_op, why = torchvision_deform_conv()
    tv_step = None
    if tv_op is None:
        rows.append(Row('dcn', 'values vs torchvision', '-', '< 1e-4', f'skip: {why}'))
    else:
        tv_leaves = [t.detach().clone().requires_grad_() for t in leaves]

        def tv_step():
            out = tv_op(
                tv_leaves[0], tv_leaves[1], tv_leaves[3], tv_leaves[4], padding=1, mask=tv_leaves[2]
            )
            out.sum().backward()
            return out

        with torch.backends.cudnn.flags(allow_tf32=False):
            a, b = ours(), tv_step()
        names = ('out', 'input', 'offset', 'mask', 'weight', 'bias')
        diffs = [(a - b).abs().max().item()] + [
            (p.grad - q.grad).abs().max().item() / max(q.grad.abs().max().item(), 1e-12)
            for p, q in zip(leaves, tv_leaves)
        ]
        text = ' '.join(f'{n}={d:.1e}' for n, d in zip(names, diffs))
        verdict = 'ok' if max(diffs) < 1e-4 else 'FAIL'
        rows.append(
            Row('dcn', 'values+grads vs torchvision', text, '< 1e-4 (grads relative)', verdict)
        )
    t_ours = median_seconds(ours, device, repeat)
    t_dense = median_seconds(dense, device, repeat)
    shape = f'{batch}x{ch}x{size}x{size} dg={groups}'
    rows.append(
        Row(
            'dcn',
            f'fwd+bwd time {shape}',
            f'ours {t_ours * 1e3:.2f} ms = {t_ours / t_dense:.2f}x dense conv',
            f'dense {t_dense * 1e3:.2f} ms',
            'ok',
        )
    )
    if tv_step is not None:
        t_tv = median_seconds(tv_step, device, repeat)
        rows.append(
            Row(
                'dcn',
                f'fwd+bwd time {shape}',
                f'ours = {t_ours / t_tv:.2f}x torchvision',
                f'torchvision {t_tv * 1e3:.2f} ms',
                'ok',
            )
        )
    return rows


def peak_memory_call(fn: Callable[[], object], device: torch.device):
    """(seconds, peak bytes added) of one call of ``fn`` (peak only on CUDA)."""
    if device.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) - before if device.type == 'cuda' else None
    return seconds, peak


def check_mana(device: torch.device, quick: bool, repeat: int) -> List[Row]:
    """MANA peak memory at 180x320 LR and ms/frame at 448x256 HR."""
    kwargs = tiny_arch_cases()['MANA'][0] if quick else {}
    torch.manual_seed(0)
    net = build_network(dict(type='MANA', **kwargs), where='gpu_check MANA').to(device).eval()
    frames = net.num_frames
    big = (16, 24) if quick else (180, 320)
    small = (8, 12) if quick else (64, 112)
    rows = []
    with torch.no_grad():
        net(torch.rand(1, frames, 3, 8, 8, device=device))  # one-time initialisation
        clip = torch.rand(1, frames, 3, *big, device=device)
        seconds, peak = peak_memory_call(lambda: net(clip), device)
        memory = f'peak {peak / 2**30:.2f} GiB' if peak is not None else 'peak n/a on CPU'
        rows.append(
            Row(
                'mana',
                f'{frames} frames {big[0]}x{big[1]} LR',
                f'{memory}, {seconds:.2f} s',
                '-',
                'ok',
            )
        )
        clip = torch.rand(1, frames, 3, *small, device=device)
        for label, amp in (('float32', None), ('bf16', 'bf16')):

            def call(amp=amp):
                with autocast_region(device.type, amp):
                    return net(clip)

            seconds = median_seconds(call, device, repeat)
            hr = f'{small[1] * 4}x{small[0] * 4}'
            rows.append(
                Row(
                    'mana',
                    f'{hr} HR {label}',
                    f'{seconds * 1e3:.1f} ms/frame',
                    'paper: 59 ms/frame (2080 Ti)',
                    'ok',
                )
            )
    return rows


def check_dksan(device: torch.device, quick: bool, repeat: int) -> List[Row]:
    """DKSAN x16 s per output frame at 64x64 LR."""
    kwargs = tiny_arch_cases()['DKSAN'][0] if quick else {}
    torch.manual_seed(0)
    net = build_network(dict(type='DKSAN', **kwargs), where='gpu_check DKSAN').to(device).eval()
    size = 8 if quick else 64
    clip = torch.rand(1, net.num_frames, 3, size, size, device=device)
    with torch.no_grad():
        seconds = median_seconds(lambda: net(clip), device, max(1, repeat // 2))
    scale = getattr(net, 'upscale', 16)
    return [
        Row(
            'dksan',
            f'x{scale} {net.num_frames} frames {size}x{size} LR',
            f'{seconds:.3f} s/frame',
            'paper: 0.95 s/frame (their GPU)',
            'ok',
        )
    ]


def train_iterations_per_second(
    device: torch.device,
    iterations: int,
    quick: bool,
    fast: bool,
    compile_model: bool,
) -> float:
    """Iterations/s of a small EDSR training through basicattn's own training path.

    ``SRModel.train_step`` with the optimizer wrapper that ``train.amp``
    builds (``MixedPrecisionOptimWrapper`` for bf16, mmengine's
    ``OptimWrapper`` for float32) and the generator set up as
    ``train.channels_last`` / ``train.compile`` set it up
    (:mod:`basicattn.models.acceleration`), so the options themselves are timed.
    """
    from mmengine.optim import OptimWrapper

    from basicattn.engine.mixed_precision import MixedPrecisionOptimWrapper
    from basicattn.models.sr_model import SRModel

    kwargs = dict(num_feat=8, num_block=2, upscale=2) if quick else dict(upscale=2)
    batch, patch = (2, 12) if quick else (16, 48)
    torch.manual_seed(0)
    net = build_network(dict(type='EDSR', **kwargs), where='gpu_check EDSR')
    train_cfg = dict(channels_last=fast, compile=fast and compile_model)
    model = SRModel(net, losses={'pixel': {'type': 'L1Loss'}}, train_cfg=train_cfg)
    model = model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    if fast:
        wrapper = MixedPrecisionOptimWrapper(
            amp='bf16', device_type=device.type, optimizer=optimizer
        )
    else:
        wrapper = OptimWrapper(optimizer=optimizer)
    data = dict(
        lq=torch.rand(batch, 3, patch, patch, device=device),
        gt=torch.rand(batch, 3, patch * 2, patch * 2, device=device),
    )
    for _ in range(3):  # warm-up (and compilation)
        model.train_step(data, wrapper)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(iterations):
        logs = model.train_step(data, wrapper)
    synchronize(device)
    seconds = time.perf_counter() - start
    if not all(torch.isfinite(v) for v in logs.values()):
        raise RuntimeError(f'non-finite losses {logs}')
    return iterations / seconds


def check_train(
    device: torch.device, quick: bool, iterations: int, compile_model: bool
) -> List[Row]:
    """200 iterations plain float32 against bf16 + channels_last + compile."""
    plain = train_iterations_per_second(device, iterations, quick, False, False)
    fast = train_iterations_per_second(device, iterations, quick, True, compile_model)
    label = 'bf16+channels_last' + ('+compile' if compile_model else '')
    return [
        Row('train', f'EDSR x2 {iterations} it float32', f'{plain:.1f} it/s', '-', 'ok'),
        Row(
            'train',
            f'EDSR x2 {iterations} it {label}',
            f'{fast:.1f} it/s = {fast / plain:.2f}x float32',
            f'{plain:.1f} it/s',
            'ok',
        ),
    ]


def format_table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table."""
    lines = ['| check | case | measured | reference | verdict |', '|---|---|---|---|---|']
    lines += [
        f'| {r.check} | {r.case} | {r.measured} | {r.reference} | {r.verdict} |' for r in rows
    ]
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--device', default='cuda', help='cuda (default), cuda:1, or cpu')
    parser.add_argument('--quick', action='store_true', help='tiny sizes (a CPU smoke test)')
    parser.add_argument(
        '--only', default=','.join(CHECKS), help=f'comma-separated subset of {",".join(CHECKS)}'
    )
    parser.add_argument('--repeat', type=int, default=10, help='timed calls per case')
    parser.add_argument('--train-iters', type=int, default=None, help='default 200 (quick: 3)')
    parser.add_argument('--no-compile', action='store_true', help='train check without compile')
    parser.add_argument('--markdown', help='also write the table to this file')
    args = parser.parse_args(argv)
    args.only = [c.strip() for c in args.only.split(',') if c.strip()]
    unknown = sorted(set(args.only) - set(CHECKS))
    if unknown:
        parser.error(f'--only: unknown check(s) {unknown}; choose from {", ".join(CHECKS)}')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        print(
            'error: --device cuda: no CUDA device here; use --device cpu --quick for a smoke test'
        )
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    iterations = args.train_iters or (3 if args.quick else 200)
    compile_model = not args.no_compile and not args.quick
    repeat = 2 if args.quick else args.repeat
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'
    print(f'gpu_check on {name}, torch {torch.__version__}', flush=True)
    runs = {
        'arch': lambda: check_archs(device, args.quick),
        'dcn': lambda: check_dcn(device, args.quick, repeat),
        'mana': lambda: check_mana(device, args.quick, repeat),
        'dksan': lambda: check_dksan(device, args.quick, repeat),
        'train': lambda: check_train(device, args.quick, iterations, compile_model),
    }
    rows: List[Row] = []
    for check in args.only:
        start = time.perf_counter()
        try:
            new = runs[check]()
        except Exception as exc:  # one failing check must not hide the others
            traceback.print_exc()
            new = [Row(check, '-', '-', '-', f'FAIL: {type(exc).__name__}: {exc}'.splitlines()[0])]
        rows += new
        for row in new:
            print(f'[{check}] {row.case}: {row.measured} ({row.verdict})', flush=True)
        print(f'[{check}] {time.perf_counter() - start:.1f} s', flush=True)
    table = format_table(rows)
    print(table)
    if args.markdown:
        with open(args.markdown, 'w', encoding='utf-8') as f:
            f.write(f'gpu_check on {name}, torch {torch.__version__}\n\n{table}\n')
    return 1 if any(r.verdict.startswith('FAIL') for r in rows) else 0


if __name__ == '__main__':
    sys.exit(main())
