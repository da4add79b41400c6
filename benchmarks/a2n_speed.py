"""CPU speed of A2N x4 on a 320x180 LR input (1280x720 output).

Reports the forward time and the achieved multiply-adds per second of A2N
and the ratio of that rate to the rate of a plain stack of 3x3 convs
(40 -> 40 channels on the same 320x180 grid, no activations) with about
the same total MACs, timed in the same process. A ratio of 1 means A2N's
structure (1x1 convs, narrow 24-channel convs at HR, gates, softmax
weights, upsampling) costs nothing beyond its multiply-adds.

A2N variants (each output is checked against the eager one):

* ``eager``: NCHW, as a user would call it. Under ``inference_mode`` A2N
  already applies its gates and sums in place (bit-identical values).
* ``channels_last``: model and input in ``torch.channels_last``, so oneDNN
  runs every conv without NCHW <-> blocked reorders (equal to float
  rounding).
* ``test.py``: what ``tools/test.py`` and ``tools/infer.py`` run,
  ``SRModel.inference`` with the default test-time settings (the memory
  format is A2N's ``preferred_memory_format``, channels_last; the input is
  converted and the output returned as NCHW; clamped to [0, 1], so it is
  compared with the clamped eager output).
* ``compiled`` (``--compile``): ``torch.compile`` of the channels_last model
  with inductor's ``freezing`` (constant weights: oneDNN weight prepacking
  and conv + activation / sum fusion), about 30-60 s to compile, needs a C
  compiler. Equal to float rounding.

The reference stack is timed the same ways (NCHW, channels_last and, with
``--compile``, compiled) and its fastest is used, so the ratio is never
flattered by a slow reference.

Timing: runs of all variants are interleaved and the minimum of
``--repeat`` is kept. With one thread (the default) the clock is the
process CPU time, which other processes on a shared machine do not
inflate; with more threads it is wall time (CPU time would count spinning
threads). glibc serves A2N's 88 MB HR temporaries with fresh ``mmap``s on
every forward (about 100k page faults); ``--malloc-tune`` (default on)
raises the mmap/trim thresholds with ``mallopt`` so freed blocks are
reused, as jemalloc / tcmalloc would. The stack has no such temporaries.

Usage::

    python benchmarks/a2n_speed.py [--threads 1] [--repeat 5] [--compile]
        [--no-malloc-tune] [--profile]
"""

import argparse
import os.path as osp
import sys
import time

import torch
import torch.nn as nn

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from bench_utils import tune_malloc  # noqa: E402

from basicattn.archs.build import build_network  # noqa: E402
from basicattn.utils.flops import count_flops, format_count  # noqa: E402

LR_H, LR_W, FEAT = 180, 320, 40
#: The network timed (built like an option file's network_g).
A2N_X4 = dict(type='A2N', upscale=4)


def a2n_macs(model: nn.Module) -> int:
    """A2N x4 MACs at 320x180 from a trace of a 1/10-size input: all of
    A2N's conv MACs are proportional to the LR pixel count; the attention
    dropout linears (6,720 MACs) are per image."""
    r = count_flops(model, (3, LR_H // 10, LR_W // 10))
    linear = r['macs_by_op'].get('linear', 0)
    return (r['macs'] - linear) * 100 + linear


def conv_stack(total_macs: int):
    """3x3 40->40 convs on the LR grid with about ``total_macs`` MACs."""
    per_layer = 9 * FEAT * FEAT * LR_H * LR_W
    layers = max(1, round(total_macs / per_layer))
    stack = nn.Sequential(*[nn.Conv2d(FEAT, FEAT, 3, 1, 1) for _ in range(layers)])
    return stack.eval(), layers, layers * per_layer


def time_interleaved(runs: dict, repeat: int, cpu_clock: bool) -> dict:
    """``{name: (fn, input)}`` -> ``{name: best seconds}``."""
    clock = time.process_time if cpu_clock else time.perf_counter
    best = {name: float('inf') for name in runs}
    with torch.inference_mode():
        for fn, x in runs.values():  # warm-up (oneDNN primitive caches)
            fn(x)
        for _ in range(repeat):
            for name, (fn, x) in runs.items():
                start = clock()
                fn(x)
                best[name] = min(best[name], clock() - start)
    return best


def compile_frozen(module: nn.Module, example: torch.Tensor):
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True
    compiled = torch.compile(module)
    start = time.perf_counter()
    with torch.inference_mode():
        compiled(example)
    return compiled, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description='CPU speed of A2N x4 vs a plain 3x3 conv stack.')
    parser.add_argument(
        '--threads', type=int, default=1, help='torch threads (default 1: CPU-time clock)'
    )
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument(
        '--compile', action='store_true', help='also time torch.compile (freezing) variants'
    )
    parser.add_argument(
        '--no-malloc-tune', action='store_true', help='leave glibc malloc thresholds alone'
    )
    parser.add_argument(
        '--profile', action='store_true', help='print where channels_last A2N spends its time'
    )
    args = parser.parse_args(argv)
    tuned = False if args.no_malloc_tune else tune_malloc()
    torch.set_num_threads(args.threads)
    cpu_clock = args.threads == 1
    torch.manual_seed(0)
    cl = torch.channels_last

    model = build_network(A2N_X4, 'A2N_X4').eval()
    macs = a2n_macs(model)
    stack, layers, stack_macs = conv_stack(macs)
    x = torch.rand(1, 3, LR_H, LR_W)
    feat = torch.rand(1, FEAT, LR_H, LR_W)
    model_cl = build_network(A2N_X4, 'A2N_X4').eval().to(memory_format=cl)
    model_cl.load_state_dict(model.state_dict())
    stack_cl = conv_stack(macs)[0].to(memory_format=cl)
    stack_cl.load_state_dict(stack.state_dict())
    x_cl, feat_cl = x.to(memory_format=cl), feat.to(memory_format=cl)

    from basicattn.models.sr_model import SRModel

    tool_model = SRModel(build_network(A2N_X4, 'A2N_X4')).eval()
    tool_model.generator.load_state_dict(model.state_dict())
    a2n_runs = {
        'eager': (model, x),
        'channels_last': (model_cl, x_cl),
        'test.py': (tool_model.inference, x),
    }
    ref_runs = {'eager': (stack, feat), 'channels_last': (stack_cl, feat_cl)}
    if args.compile:
        a2n_c, secs = compile_frozen(model_cl, x_cl)
        stack_c, secs_stack = compile_frozen(stack_cl, feat_cl)
        print(f'torch.compile (freezing): A2N {secs:.0f} s, stack {secs_stack:.0f} s to compile')
        a2n_runs['compiled'] = (a2n_c, x_cl)
        ref_runs['compiled'] = (stack_c, feat_cl)

    with torch.inference_mode():
        ref_out = model(x)
        for name, (fn, inp) in a2n_runs.items():
            ref = ref_out.clamp(0, 1) if name == 'test.py' else ref_out
            diff = (fn(inp) - ref).abs().max().item()
            print(f'A2N {name:14s} max |out - eager| = {diff:.1e}')
            if diff > 1e-4:
                raise RuntimeError(f'{name} output differs from eager')

    runs = {f'a2n/{k}': v for k, v in a2n_runs.items()}
    runs.update({f'stack/{k}': v for k, v in ref_runs.items()})
    best = time_interleaved(runs, args.repeat, cpu_clock)

    clock = 'process CPU time' if cpu_clock else 'wall time'
    print(
        f'threads {torch.get_num_threads()}, clock: {clock}, min of '
        f'{args.repeat}; malloc tuned: {tuned}'
    )
    print(f'A2N x4, input 1x3x{LR_H}x{LR_W}: {format_count(macs)} MACs')
    ref_name = min(ref_runs, key=lambda k: best[f'stack/{k}'])
    ref_rate = stack_macs / best[f'stack/{ref_name}']
    print(
        f'reference: {layers} x conv3x3 {FEAT}->{FEAT}, '
        f'{format_count(stack_macs)} MACs: '
        + ', '.join(f'{k} {best[f"stack/{k}"]:.3f} s' for k in ref_runs)
        + f' -> {ref_rate / 1e9:.1f} GMAC/s ({ref_name})'
    )
    for name in a2n_runs:
        secs = best[f'a2n/{name}']
        rate = macs / secs
        print(
            f'A2N {name:14s}: {secs:.3f} s, {rate / 1e9:5.1f} GMAC/s, ratio {rate / ref_rate:.2f}'
        )
    best_a2n = min(a2n_runs, key=lambda k: best[f'a2n/{k}'])
    print(f'ratio (best A2N variant, {best_a2n}): {macs / best[f"a2n/{best_a2n}"] / ref_rate:.2f}')

    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with (
            torch.inference_mode(),
            profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof,
        ):
            model_cl(x_cl)
        print(
            prof.key_averages(group_by_input_shape=True).table(
                sort_by='self_cpu_time_total',
                row_limit=15,
                max_name_column_width=30,
                max_shapes_column_width=50,
            )
        )


if __name__ == '__main__':
    main()
