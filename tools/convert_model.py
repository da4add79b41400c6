"""Convert foreign weights into a basicattn checkpoint.

Examples::

    python tools/convert_model.py --list
    python tools/convert_model.py --source a2n_official --scale 2 \\
        aan_x2.pt experiments/pretrained/a2n_official_x2.pth

The output is ``{'state_dict': ..., 'meta': {'arch': {type + kwargs},
'converted_from': ..., 'source_sha256': ...}}``, written atomically. After
writing, the file is read back and loaded into the arch with
``strict=True`` as a self-check.
"""
import argparse
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from basicattn.errors import UserError, add_debug_argument, run_tool  # noqa: E402
from basicattn.converters.base import (  # noqa: E402
    ConversionError, build_from_checkpoint, get_converter, list_converters,
    load_foreign_checkpoint, save_basicattn_checkpoint, sha256_file)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert foreign weights to a basicattn checkpoint.')
    parser.add_argument('input', nargs='?', help='foreign checkpoint')
    parser.add_argument('output', nargs='?', help='basicattn checkpoint to '
                        'write (.pth)')
    parser.add_argument('--source', help='registered converter name '
                        '(see --list)')
    parser.add_argument('--scale', type=int, default=None,
                        help='upscaling factor of the weights, when the '
                        'converter needs it')
    parser.add_argument('--key', default=None,
                        help='key of a nested state_dict in the input')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing output file')
    parser.add_argument('--list', action='store_true',
                        help='list the registered converters and exit')
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if not args.list:
        missing = [name for name in ('source', 'input', 'output')
                   if getattr(args, name) is None]
        if missing:
            parser.error('missing ' + ', '.join(missing) +
                         ' (or use --list)')
    return args


def main(argv=None) -> int:
    """Run the tool; user mistakes end in one ``error:`` line and exit code 2."""
    return run_tool(_convert, argv)


def _convert(argv) -> int:
    args = parse_args(argv)
    if args.list:
        for name, doc in list_converters().items():
            print(f'{name:20s} {doc}')
        return 0
    if osp.exists(args.output) and not args.overwrite:
        raise UserError(f'{args.output} exists; pass --overwrite to replace it')
    convert = get_converter(args.source)
    foreign = load_foreign_checkpoint(args.input, key=args.key)
    state_dict, arch = convert(foreign, scale=args.scale)
    meta = dict(
        arch=arch,
        converted_from=f'{args.source}:{osp.basename(args.input)}',
        source_sha256=sha256_file(args.input),
    )
    save_basicattn_checkpoint(args.output, state_dict, meta,
                              overwrite=args.overwrite)
    model = build_from_checkpoint(args.output)  # strict=True self-check
    num_params = sum(p.numel() for p in model.parameters())
    arch_args = ', '.join(f'{k}={v!r}' for k, v in arch.items()
                          if k != 'type')
    print(f'source        : {args.source} ({args.input})')
    print(f'source sha256 : {meta["source_sha256"]}')
    print(f'arch          : {arch["type"]}({arch_args})')
    print(f'tensors       : {len(foreign)} -> {len(state_dict)}')
    print(f'parameters    : {num_params:,}')
    print(f'written       : {args.output} (reloaded with strict=True: ok)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
