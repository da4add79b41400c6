"""Peak memory and time of MANA's cross-frame attention, tiled vs dense (CPU).

Cases (batch 1, 7 frames, 128 feature channels, float32, ``torch.no_grad``):

* ``attn-*``: the whole :class:`~basicattn.archs.mana_arch.CrossFrameAttention`
  module (GroupNorm, q/k/v projections, attention of 7 frames, output conv)
  on encoder-sized features ``(1, 7, 128, H, W)``, ``tiled`` (ours) or
  ``dense`` (one ``HW x HW`` matrix per frame, as in the authors' code), at
  64 x 64 and 180 x 320 LR;
* ``mana-*``: a full MANA forward (default, 14.3M parameters) on a 7-frame
  RGB clip, giving the x4 centre frame.

The dense attention at 180 x 320 is not run: its logits alone are
``7 x 57600^2 x 4 B = 92.9 GB`` (13.3 GB per frame); the table prints that
estimate instead.

How memory is measured: every case runs in a fresh Python process (so no
allocator state is shared between cases). After building the module and the
input, the process resets its peak resident set size (Linux: writing ``5``
to ``/proc/self/clear_refs`` sets ``VmHWM`` to the current RSS), reads its
RSS, runs the call once, and reads ``VmHWM``. The figure is ``VmHWM - RSS
before``: the most physical memory the call added at any moment (outputs,
temporaries, allocator slack), not counting the input and the weights that
existed before it. A call on an 8 x 8 crop first absorbs one-time
initialisation (oneDNN primitives, thread pool). torch's CPU allocator is
plain malloc/free, so RSS is the honest measure (``tracemalloc`` does not
see it). Time is the wall-clock of
the call, the minimum of ``--repeat`` runs (one run for the 180 x 320 cases,
which take tens of seconds); the process CPU time is printed too. The
machine's load average is printed: on a shared machine the wall time grows
with the load.

Usage::

    python benchmarks/mana_memory.py [--threads 2] [--repeat 3]
        [--cases attn-tiled-64,attn-dense-64,...]
"""

import argparse
import gc
import json
import os
import os.path as osp
import subprocess
import sys
import time

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: name -> (what, attention mode, H, W)
CASES = {
    'attn-tiled-64': ('attn', 'tiled', 64, 64),
    'attn-dense-64': ('attn', 'dense', 64, 64),
    'attn-tiled-180x320': ('attn', 'tiled', 180, 320),
    'attn-dense-180x320': ('attn', 'dense', 180, 320),
    'mana-tiled-64': ('mana', 'tiled', 64, 64),
    'mana-dense-64': ('mana', 'dense', 64, 64),
    'mana-tiled-180x320': ('mana', 'tiled', 180, 320),
}
FRAMES, FEAT, EMBED = 7, 128, 64
#: Bytes above which a dense case is skipped (the logits alone).
DENSE_LIMIT = 8 * 2**30


def _status_kib(field: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{field} not in /proc/self/status')


def _reset_peak() -> None:
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')


def dense_logits_bytes(h: int, w: int) -> int:
    return FRAMES * (h * w) ** 2 * 4


def worker(name: str, threads: int, repeat: int) -> dict:
    """Run one case in this process; return its figures."""
    import torch

    sys.path.insert(0, REPO_ROOT)
    from basicattn.archs.build import build_network
    from basicattn.archs.mana_arch import CrossFrameAttention

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    what, mode, h, w = CASES[name]
    if what == 'attn':
        module = CrossFrameAttention(FEAT, FRAMES, EMBED, mode=mode).eval()
        x = torch.randn(1, FRAMES, FEAT, h, w)
    else:
        module = build_network(dict(type='MANA', attention_mode=mode), name).eval()
        x = torch.rand(1, FRAMES, 3, h, w)
    times, cpu_times, peak = [], [], None
    with torch.no_grad():
        module(x[..., :8, :8])  # one-time initialisation (oneDNN, threads)
        for i in range(repeat):
            gc.collect()
            _reset_peak()
            before = _status_kib('VmRSS')
            t0, c0 = time.perf_counter(), time.process_time()
            out = module(x)
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
            if i == 0:
                peak = _status_kib('VmHWM') - before
            out = out[0] if isinstance(out, tuple) else out
            assert torch.isfinite(out).all()
            del out
    return dict(
        case=name,
        peak_mib=peak / 1024,
        time_s=min(times),
        cpu_s=min(cpu_times),
        threads=threads,
        repeat=repeat,
    )


def run_case(name: str, threads: int, repeat: int) -> dict:
    what, mode, h, w = CASES[name]
    if mode == 'dense' and dense_logits_bytes(h, w) > DENSE_LIMIT:
        return dict(
            case=name,
            skipped=(
                f'not run: the dense logits alone are '
                f'{dense_logits_bytes(h, w) / 1e9:.1f} GB ({FRAMES} x '
                f'{h * w}^2 x 4 B)'
            ),
        )
    if h * w > 64 * 64:
        repeat = 1
    cmd = [
        sys.executable,
        osp.abspath(__file__),
        '--worker',
        name,
        '--threads',
        str(threads),
        '--repeat',
        str(repeat),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return dict(case=name, skipped=f'failed: {proc.stderr.strip()[-300:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--threads', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--cases', default=','.join(CASES))
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.threads, args.repeat)))
        return 0
    names = [c for c in args.cases.split(',') if c]
    unknown = [c for c in names if c not in CASES]
    if unknown:
        parser.error(f'unknown cases {unknown}; known: {list(CASES)}')
    print(f'# threads={args.threads}, load average before: {os.getloadavg()}')
    print('| case | LR size | peak extra RSS (MiB) | wall time (s) | CPU time (s) |')
    print('|---|---|---|---|---|')
    for name in names:
        res = run_case(name, args.threads, args.repeat)
        size = '{}x{}'.format(*CASES[name][2:])
        if 'skipped' in res:
            print(f'| {name} | {size} | - | - | {res["skipped"]} |')
        else:
            print(
                f'| {name} | {size} | {res["peak_mib"]:.0f} | '
                f'{res["time_s"]:.2f} | {res["cpu_s"]:.2f} |',
                flush=True,
            )
    print(f'# load average after: {os.getloadavg()}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
