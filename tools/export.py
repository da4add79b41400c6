"""Export a network to ONNX, checked against PyTorch with onnxruntime.

    python tools/export.py OUT.onnx --checkpoint W.pth [-opt X.yml | --arch NAME
        --arch-args JSON] [--format onnx] [--input-size H W] [--opset 17] [--dynamic]
        [--precision fp32|fp16] [--no-simplify] [--mode auto|window|sequence]
        [--overwrite]

The network and its weights come from the same places as in tools/infer.py
(``-opt``'s ``network_g``, ``--arch`` and ``--arch-args``, or the weights file
itself: a recorded ``meta['arch']`` or an authors' format); an arch without
parameters (Bicubic) needs no ``--checkpoint``. The input is RGB in [0, 1]:
``(N, 3, H, W)`` for image archs, ``(N, T, 3, H, W)`` for video archs, with
``T`` the arch's ``num_frames``; ``--input-size`` is the LR ``H W`` of the
export (default 32 32).

Recurrent archs (DASAA's ConvLSTM) are exported, by default (``--mode auto`` =
``sequence``, as tools/infer.py), as a step graph: ``lq`` and the state
``state_h``, ``state_c`` in, ``sr`` and ``state_h_out``, ``state_c_out`` out,
which ``tools/infer.py --backend onnxruntime`` runs carrying the state from
frame to frame; ``--mode window`` exports one window in, its centre frame out,
without the state.

``--dynamic`` declares batch, height and width dynamic (every registered arch:
each arch class says so in ``ONNX_DYNAMIC_HW``; an arch whose class says False
is refused at once). The graph is simplified by onnxslim unless
``--no-simplify``; ``--precision fp16`` converts the checked float32 graph to
float16 weights and activations (inputs and outputs stay float32).

After the export the graph is run by onnxruntime on two inputs (the export
size and, with ``--dynamic``, a batch of 2 of another size; else a second
input of the same size; a step graph: two steps carrying the state) and
compared with PyTorch; the max abs differences are printed, and a difference
above 1e-4 (fp16: 2e-3, half an 8-bit level; docs/deploy.md), or a graph that
does not run at the second size, is an error and writes nothing. OUT is
written under a temporary name and renamed; an existing OUT is kept unless
``--overwrite``. The last line printed is OUT. Needs ``pip install -e
'.[export]'`` (onnx, onnxruntime, onnxslim).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # tools/, also when imported
import _bootstrap  # noqa: F401,E402  (the checkout's .venv and package)

from basicattn.errors import UserError  # noqa: E402
from basicattn.utils.run_arguments import add_network_arguments  # noqa: E402
from basicattn.utils.tool_runner import add_debug_argument, run_tool

FORMATS = ('onnx',)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('output', help='the file to write (OUT.onnx)')
    add_network_arguments(parser)
    parser.add_argument('--format', default='onnx', help='export format (onnx)')
    parser.add_argument(
        '--input-size',
        type=int,
        nargs=2,
        default=(32, 32),
        metavar=('H', 'W'),
        help='LR height and width of the export (default: 32 32)',
    )
    parser.add_argument('--opset', type=int, default=17, help='ONNX opset (>= 16; default 17)')
    parser.add_argument(
        '--dynamic', action='store_true', help='dynamic batch, height and width axes'
    )
    parser.add_argument(
        '--precision',
        choices=('fp32', 'fp16'),
        default='fp32',
        help='fp16: float16 weights and activations, float32 inputs/outputs (default fp32)',
    )
    parser.add_argument(
        '--no-simplify',
        dest='simplify',
        action='store_false',
        help='keep the graph as traced (default: simplified by onnxslim)',
    )
    parser.add_argument(
        '--mode',
        choices=('auto', 'window', 'sequence'),
        default='auto',
        help='recurrent archs: a step graph with the state in and out (sequence, the '
        'default) or one window without it',
    )
    parser.add_argument('--overwrite', action='store_true', help='replace an existing OUT')
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    return args


def main(argv=None):
    """Run the tool; user mistakes end in one ``error:`` line and exit code 2."""
    return run_tool(lambda a: run(parse_args(a)), argv)


def run(args):
    if args.format not in FORMATS:
        raise UserError(f'--format {args.format}: unknown export format; choose one of {FORMATS}')
    from basicattn.utils.output_guard import refuse_outputs_over_inputs

    inputs = [('--checkpoint', args.checkpoint), ('-opt', args.opt)]
    refuse_outputs_over_inputs([('OUT', args.output)], inputs)  # even with --overwrite
    from basicattn.deploy.onnx_export import export_onnx, output_problem, require_onnx

    problem = output_problem(args.output, args.overwrite)  # before the network is built
    if problem:
        raise UserError(problem)
    from basicattn.converters.network_loading import network_from_arguments

    require_onnx()
    net, cfg = network_from_arguments(
        args.opt, args.arch, args.arch_args, args.checkpoint, args.scale, args.param_key
    )
    result = export_onnx(
        net,
        args.output,
        size=args.input_size,
        opset=args.opset,
        dynamic=args.dynamic,
        overwrite=args.overwrite,
        name=cfg['type'],
        precision=args.precision,
        simplify=args.simplify,
        recurrent=_recurrent(net, args.mode, cfg['type']),
    )
    state = ' + state' if result.graph == 'step' else ''
    for label, diffs in (('', result.max_abs_diffs), (' (fp16)', result.fp16_max_abs_diffs)):
        for shape, diff in zip(result.shapes, diffs):
            shape_text = 'x'.join(str(s) for s in shape)
            print(
                f'onnxruntime{label} vs PyTorch on {shape_text}{state}: '
                f'max abs difference {diff:.3g}'
            )
    axes = 'dynamic batch, height, width' if result.dynamic else 'fixed size'
    parts = [f'ONNX opset {result.opset}', axes, result.precision]
    if result.graph == 'step':
        parts.append('step graph (recurrent state in and out)')
    parts.append('simplified (onnxslim)' if result.simplified else 'not simplified')
    parts.append(f'{result.size_bytes / 2**20:.1f} MiB')
    print(f'{cfg["type"]}: {", ".join(parts)}')
    print(args.output)
    return 0


def _recurrent(net, mode: str, name: str) -> bool:
    """Whether to export the step graph: ``--mode sequence``, or auto for an arch with a state."""
    from basicattn.deploy.onnx_step import has_state

    stateful = has_state(net)
    if mode == 'sequence' and not stateful:
        raise UserError(
            f'--mode sequence: {name} has no recurrent state; export it with --mode window '
            '(or auto)'
        )
    return stateful and mode != 'window'


if __name__ == '__main__':
    sys.exit(main())
