"""CPU speed of the pure-PyTorch DCNv2 against a dense conv of the same shape.

Times forward + backward (gradients for input, offset, mask, weight and
bias) of :func:`basicattn.ops.modulated_deform_conv2d` with 64 -> 64
channels, a 3x3 kernel, 8 deformable groups, batch 4, at 64x64 and 128x128,
and the same for ``F.conv2d`` (input, weight, bias gradients) in the same
process; prints the ratio ours / dense (target: within 5x) and, when mmcv's
compiled op is usable, ours / mmcv.

Timing: one warm-up call per op, then ``--repeat`` rounds in which the ops
run one after the other (interleaved, so load from other processes hits all
of them alike); the median is kept. Threads: torch's default unless
``--threads`` is given. The clock is wall time; ``--clock cpu`` uses the
process CPU time instead, which other processes on a shared machine do not
inflate (meaningful with ``--threads 1``; with more threads it also counts
OpenMP threads spinning).

``--components`` also times, in the same interleaved rounds, the parts no
implementation on top of ATen can avoid: the bilinear sampling of the
columns (``grid_sampler_2d``) forward and backward, and the three GEMMs of a
convolution on those columns (``W @ cols``, ``W^T @ grad``,
``grad @ cols^T``), each as a ratio to the dense conv.

Usage::

    python benchmarks/dcn_speed.py [--sizes 64 128] [--repeat 5]
        [--threads N] [--clock {wall,cpu}] [--malloc-tune] [--components]

``--malloc-tune`` raises glibc's mmap / trim thresholds with ``mallopt`` so
that freed column-sized blocks (38 MB at 64x64, 151 MB at 128x128) are
reused rather than page-faulted in afresh on every call.
"""

import argparse
import os.path as osp
import statistics
import sys
import time

import torch
import torch.nn.functional as F

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from bench_utils import tune_malloc  # noqa: E402

from basicattn.ops import dcn_backend_status, modulated_deform_conv2d  # noqa: E402
from basicattn.ops.deform_im2col import sample_columns, sampling_grid  # noqa: E402


def make_step(name, x, offset, mask, weight, bias, deform_groups):
    """Return a closure running one forward + backward of op ``name``."""
    leaves = [t.detach().clone().requires_grad_() for t in (x, offset, mask, weight, bias)]
    xs, offs, masks, ws, bs = leaves

    def step():
        for t in leaves:
            t.grad = None
        if name == 'dense':
            out = F.conv2d(xs, ws, bs, padding=1)
        else:
            out = modulated_deform_conv2d(
                xs, offs, masks, ws, bs, 1, 1, 1, 1, deform_groups, backend=name
            )
        out.backward(torch.ones_like(out))

    return step


def component_steps(x, offset, weight, deform_groups):
    """Closures timing the sampling (forward, backward) and the three GEMMs
    of the same convolution on their own."""
    b, c, h, w = x.shape
    o, k = weight.shape[0], 9
    grid = sampling_grid(x, offset, (3, 3), (1, 1), (1, 1), (1, 1), deform_groups, (h, w))
    samples = sample_columns(grid)
    grad_samples = torch.randn_like(samples)
    cols = samples.view(b, c * k, h * w)
    wm = weight.reshape(1, o, c * k).expand(b, -1, -1)
    grad_out = torch.randn(b, o, h * w)

    def gemms():
        torch.bmm(wm, cols)
        torch.bmm(wm.transpose(1, 2), grad_out)
        torch.bmm(grad_out, cols.transpose(1, 2))

    return {
        'sampling fwd': lambda: sample_columns(grid),
        'sampling bwd': lambda: torch.ops.aten.grid_sampler_2d_backward(
            grad_samples, grid.input, grid.grid, 0, 0, False, [True, True]
        ),
        'gemms': gemms,
    }


def run(size, args):
    gen = torch.Generator().manual_seed(0)
    b, c, dg = args.batch, args.channels, args.deform_groups
    x = torch.randn(b, c, size, size, generator=gen)
    weight = torch.randn(c, c, 3, 3, generator=gen) / (c * 9) ** 0.5
    bias = torch.zeros(c)
    offset = torch.randn(b, 2 * dg * 9, size, size, generator=gen) * 2
    mask = torch.rand(b, dg * 9, size, size, generator=gen)
    names = ['torch', 'dense']
    if dcn_backend_status('mmcv')[0]:
        names.append('mmcv')
    steps = {n: make_step(n, x, offset, mask, weight, bias, dg) for n in names}
    if args.components:
        steps.update(component_steps(x, offset, weight, dg))
        names = list(steps)
    times = {n: [] for n in names}
    for n in names:  # warm-up
        steps[n]()
    clock = time.process_time if args.clock == 'cpu' else time.perf_counter
    for _ in range(args.repeat):
        for n in names:
            start = clock()
            steps[n]()
            times[n].append(clock() - start)
    return {n: statistics.median(t) for n, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[64, 128])
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--channels', type=int, default=64)
    parser.add_argument('--deform-groups', type=int, default=8)
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument(
        '--threads', type=int, default=None, help="torch threads (default: torch's default)"
    )
    parser.add_argument('--clock', choices=['wall', 'cpu'], default='wall')
    parser.add_argument(
        '--malloc-tune', action='store_true', help='raise glibc mmap/trim thresholds first'
    )
    parser.add_argument(
        '--components', action='store_true', help='also time sampling and GEMMs on their own'
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.malloc_tune:
        print(f'glibc malloc tuned: {tune_malloc()}')

    usable, reason = dcn_backend_status('mmcv')
    print(
        f'torch {torch.__version__}, {torch.get_num_threads()} threads; '
        f'mmcv: {"usable" if usable else "not usable (" + reason + ")"}'
    )
    print(
        f'forward+backward, batch {args.batch}, {args.channels}->'
        f'{args.channels} channels, 3x3, deform_groups '
        f'{args.deform_groups}, median {args.clock} time of '
        f'{args.repeat}'
    )
    header = f'{"size":>9} {"ours ms":>9} {"dense ms":>9} {"ours/dense":>10}'
    if usable:
        header += f' {"mmcv ms":>9} {"mmcv/dense":>10} {"ours/mmcv":>9}'
    print(header)
    for size in args.sizes:
        t = run(size, args)
        line = (
            f'{size:>4}x{size:<4} {t["torch"] * 1e3:9.1f} '
            f'{t["dense"] * 1e3:9.1f} {t["torch"] / t["dense"]:10.2f}'
        )
        if 'mmcv' in t:
            line += (
                f' {t["mmcv"] * 1e3:9.1f} '
                f'{t["mmcv"] / t["dense"]:10.1f} '
                f'{t["torch"] / t["mmcv"]:9.3f}'
            )
        print(line, flush=True)
        if args.components:
            print(
                '           '
                + '  '.join(
                    f'{n} {t[n] * 1e3:.1f} ms ({t[n] / t["dense"]:.2f}x)'
                    for n in ('sampling fwd', 'sampling bwd', 'gemms')
                ),
                flush=True,
            )


if __name__ == '__main__':
    main()
