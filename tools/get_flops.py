"""Print the parameters and multiply-adds of a registered arch.

Examples::

    python tools/get_flops.py --arch A2N --arch-args '{"upscale": 2}' \\
        --input-shape 3 360 640
    python tools/get_flops.py -opt options/train/a2n_x4.yml \\
        --input-shape 3 180 320 --json
    python tools/get_flops.py --arch MyVideoNet --input-shape 7 3 64 64

The headline "multiply-adds (MACs)" counts convolutions, linear layers and
matrix products (what SR papers report as Mult-Adds); element-wise ops,
pooling and interpolation are listed separately, and ops without a handle
are named. With a ``T C H W`` input shape the counts are also given per
restored frame. See :mod:`basicattn.utils.flops`.

The counts come from tracing one real forward pass, so large inputs take
as long as a forward on this machine (A2N x2 at 640x360: about 30 s CPU).
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # tools/, also when imported
import _bootstrap  # noqa: F401,E402  (the checkout's .venv and package)

from basicattn.errors import UserError  # noqa: E402
from basicattn.utils.flops import count_flops, format_count, input_shape_problem  # noqa: E402
from basicattn.utils.tool_runner import add_debug_argument, run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Parameters and multiply-adds (MACs) of an arch.')
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument('--arch', help='registered arch name, e.g. A2N')
    src.add_argument('-opt', '--opt', help='option file; its network_g block is built')
    parser.add_argument(
        '--arch-args', default='{}', help='JSON object of keyword arguments for --arch'
    )
    parser.add_argument(
        '--input-shape',
        type=int,
        nargs='+',
        required=True,
        metavar='N',
        help='C H W (image) or T C H W (video), without the batch dimension',
    )
    parser.add_argument('--json', action='store_true', help='print the result as JSON')
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if len(args.input_shape) not in (3, 4):
        parser.error(f'--input-shape takes C H W or T C H W, got {len(args.input_shape)} numbers')
    return args


def default_argument(model, name: str):
    """The default of argument ``name`` of ``model``'s class (None if it has none)."""
    import inspect

    param = inspect.signature(type(model)).parameters.get(name)
    return None if param is None or param.default is param.empty else param.default


def report(cfg: dict, result: dict) -> str:
    args = ', '.join(f'{k}={v!r}' for k, v in cfg.items() if k != 'type')
    lines = [
        f'arch                 : {cfg["type"]}({args})',
        f'input -> output      : {tuple(result["input_shape"])} -> {tuple(result["output_shape"])}',
        f'parameters           : {result["params"]:,} ({format_count(result["params"])})',
        f'multiply-adds (MACs) : {format_count(result["macs"])} ({result["macs"]:,})',
    ]
    for op, value in result['macs_by_op'].items():
        lines.append(f'    {op:32s} {format_count(value)}')
    if result['frames'] > 1 or len(result['input_shape']) == 5:
        lines.append(
            f'MACs per frame       : '
            f'{format_count(result["macs_per_frame"])} '
            f'({result["frames"]} restored frame(s) per forward)'
        )
    lines.append(
        'other ops, not in the MACs (element-wise: 1 per output, '
        'reductions: 1 per input, bilinear: 4 per output): '
        f'{format_count(result["other_total"])}'
    )
    for op, value in result['other_ops'].items():
        lines.append(f'    {op:32s} {format_count(value)}')
    if result['unhandled']:
        lines.append('NOT COUNTED (no handle; op: calls):')
        for op, calls in result['unhandled'].items():
            lines.append(f'    {op:32s} {calls}')
    else:
        lines.append('not counted          : none (every traced op has a handle)')
    return '\n'.join(lines)


def main(argv=None) -> int:
    """Run the tool; user mistakes end in one ``error:`` line and exit code 2."""
    return run_tool(_count, argv)


def _count(argv) -> int:
    args = parse_args(argv)
    from basicattn.archs.build import build_network, network_config_from_arguments

    cfg, where = network_config_from_arguments(args.opt, args.arch, args.arch_args)
    model = build_network(cfg, where)
    in_ch = cfg.get('num_in_ch', default_argument(model, 'num_in_ch'))
    problem = input_shape_problem(model, args.input_shape, cfg['type'], in_ch)
    if problem:
        shown = ' '.join(map(str, args.input_shape))
        raise UserError(f'--input-shape {shown}: {problem}')
    result = count_flops(model, args.input_shape)
    if args.json:
        print(json.dumps(dict(arch=cfg, **result), indent=2))
    else:
        print(report(cfg, result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
