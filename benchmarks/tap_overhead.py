"""Cost of the attention taps when nobody listens, and of recording, as ratios.

An arch passes every attention quantity through a :class:`~basicattn.archs.taps.Tap`
(an identity module). This script times, interleaved in one process, the
same network three ways on one input:

* ``no taps``: every tap replaced by a plain Python identity function (what
  the arch would cost without the mechanism);
* ``taps``: the network as shipped, nobody listening;
* ``recording``: inside :func:`~basicattn.analysis.taps.record_taps` of the
  per-image scalars (A2N's ``blocks.*.pi_att``; cheap to keep).

and prints ``taps / no taps`` (the overhead the issue bounds at 1 %) and
``recording / no taps``. On a busy machine the timing noise of whole
forwards (a few %) hides a 1 % difference, so it also prints the direct
estimate: the cost of one call of a :class:`Tap` nobody listens to minus
that of a plain function call (the minimum over batches of 20,000 calls),
times the taps one forward passes, as a fraction of the forward. The
outputs of the three are checked bit-identical. With one thread (the
default) the clock is the process CPU time, the minimum of ``--repeat``
interleaved runs (their order rotated from one repeat to the next).

Usage::

    python benchmarks/tap_overhead.py [--arch A2N] [--size 96] [--repeat 7] [--threads 1]
"""

import argparse
import os.path as osp
import sys
import time

import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from basicattn.analysis.taps import record_taps, tap_names  # noqa: E402
from basicattn.archs.build import build_network  # noqa: E402
from basicattn.archs.taps import Tap  # noqa: E402


def _identity(x):
    return x


def without_taps(net: torch.nn.Module) -> torch.nn.Module:
    """``net`` with every Tap submodule replaced by a plain identity function (in place)."""
    for module in list(net.modules()):
        for name, child in list(module._modules.items()):
            if isinstance(child, Tap):
                del module._modules[name]
                object.__setattr__(module, name, _identity)
    return net


def tap_call_cost(calls: int = 20000, batches: int = 7) -> float:
    """Seconds one call of a Tap nobody listens to costs more than a plain function call."""
    tap, x = Tap(), torch.zeros(1)
    best = {'tap': float('inf'), 'function': float('inf')}
    for _ in range(batches):
        for name, fn in (('tap', tap), ('function', _identity)):
            start = time.process_time()
            for _ in range(calls):
                fn(x)
            best[name] = min(best[name], time.process_time() - start)
    return max(best['tap'] - best['function'], 0.0) / calls


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='A2N', help='registered arch (default A2N, x2)')
    parser.add_argument('--size', type=int, default=96, help='LR side (default 96)')
    parser.add_argument('--repeat', type=int, default=7)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--record', default='blocks.*.pi_att', help='taps recorded')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = dict(type=args.arch, upscale=2) if args.arch == 'A2N' else dict(type=args.arch)
    shipped = build_network(cfg).eval()
    bare = without_taps(build_network(cfg).eval())
    bare.load_state_dict(shipped.state_dict())
    assert not tap_names(bare) and tap_names(shipped)
    x = torch.rand(1, 3, args.size, args.size)

    def recording():
        with record_taps(shipped, args.record):
            return shipped(x)

    runs = {'no taps': lambda: bare(x), 'taps': lambda: shipped(x), 'recording': recording}
    clock = time.process_time if args.threads == 1 else time.perf_counter
    best = dict.fromkeys(runs, float('inf'))
    outputs = {}
    with torch.inference_mode():
        for name, fn in runs.items():  # warm-up, and the outputs compared
            outputs[name] = fn()
        names = list(runs)
        for r in range(args.repeat):
            for name in names[r % 3 :] + names[: r % 3]:  # rotated: no position bias
                fn = runs[name]
                start = clock()
                fn()
                best[name] = min(best[name], clock() - start)
    for name in ('taps', 'recording'):
        assert torch.equal(outputs[name], outputs['no taps']), f'{name}: outputs differ'
    print(
        f'{args.arch} {args.size}x{args.size}, {len(tap_names(shipped))} taps, '
        f'{args.threads} thread(s), min of {args.repeat}: outputs bit-identical'
    )
    per_call = tap_call_cost()
    calls = per_call * len(tap_names(shipped))
    print(f'taps / no taps       = {best["taps"] / best["no taps"]:.4f}')
    print(
        f'tap calls            = {len(tap_names(shipped))} x {per_call * 1e6:.2f} us = '
        f'{calls * 1e3:.3f} ms per forward of {best["no taps"] * 1e3:.1f} ms '
        f'({calls / best["no taps"] * 100:.3f} %)'
    )
    print(f'recording / no taps  = {best["recording"] / best["no taps"]:.4f}  ({args.record})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
