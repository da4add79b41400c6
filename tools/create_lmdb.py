"""Pack a folder of images into an LMDB database (BasicSR's layout).

Examples::

    python tools/create_lmdb.py datasets/DIV2K/HR_sub \\
        datasets/DIV2K/HR_sub.lmdb
    python tools/create_lmdb.py datasets/vimeo90k/sequences \\
        datasets/vimeo90k/train_GT.lmdb --workers 8 --verify
    python tools/create_lmdb.py --verify-only datasets/DIV2K/HR_sub.lmdb

Keys are image paths relative to SRC without extension (``0801``,
``00001/0001/im4``), so nested video layouts (Vimeo-90K, REDS) need no
special handling. An existing DST is never damaged: without ``--overwrite``
the command refuses, and with it the new database is built beside DST and
swapped in only after it is complete (in one atomic exchange where the OS
allows it). A run killed at any point leaves DST, or a ``DST.old-<pid>`` /
``DST.tmp-<pid>`` copy that the next run puts back in place (one line per
action on stderr) before doing anything else.
"""

import argparse
import glob
import os
import os.path as osp
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # tools/, also when imported
import _bootstrap  # noqa: F401,E402  (the checkout's .venv and package)

from basicattn.errors import UserError  # noqa: E402
from basicattn.utils.path_util import not_found  # noqa: E402
from basicattn.utils.tool_runner import add_debug_argument, run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Pack a folder of images (any depth) into an LMDB whose '
        'keys are relative paths without extension and whose values are PNG '
        'bytes, with meta_info.txt beside data.mdb.'
    )
    parser.add_argument('src', nargs='?', help='folder of images')
    parser.add_argument('dst', nargs='?', help='LMDB folder to write (*.lmdb)')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace an existing database at DST (it is '
        'swapped out only once the new one is complete)',
    )
    parser.add_argument(
        '--compress-level',
        type=int,
        default=1,
        choices=range(10),
        metavar='N',
        help='PNG compression level 0-9 (default: 1)',
    )
    parser.add_argument(
        '--workers',
        type=int,
        default=None,
        metavar='N',
        help='processes reading and encoding images (default: min(8, CPU count))',
    )
    parser.add_argument('--verify', action='store_true', help='decode every record after building')
    parser.add_argument('--verify-only', metavar='DST', help='only verify an existing database')
    parser.add_argument('--no-progress', action='store_true', help='do not show progress bars')
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if args.verify_only:
        if args.src or args.dst:
            parser.error('--verify-only takes the database path only; do not give SRC/DST as well')
    elif not (args.src and args.dst):
        parser.error('SRC and DST are required (or use --verify-only DST)')
    if args.workers is not None and args.workers < 0:
        parser.error('--workers must be >= 0')
    return args


def precheck(args):
    """Cheap checks done before importing the (heavy) library.

    Returns:
        str | None: An error message, or None if nothing is wrong yet.
    """
    if args.verify_only:
        if not osp.isfile(osp.join(args.verify_only, 'data.mdb')):
            return f'LMDB database not found: {args.verify_only} has no data.mdb'
        return None
    if not osp.isdir(args.src):
        return not_found('source folder', args.src)
    if osp.lexists(args.dst) and not args.overwrite:
        return f'destination {args.dst} already exists; pass --overwrite to replace it'
    return None


def recover_first(path):
    """Repair an interrupted swap of ``path`` before anything looks at it."""
    path = path.rstrip('/\\') or path
    if glob.glob(glob.escape(path) + '.tmp-*') or glob.glob(glob.escape(path) + '.old-*'):
        from basicattn.data.lmdb_swap import recover_interrupted_swap

        recover_interrupted_swap(path)


def main(argv=None):
    """Run the tool; user mistakes end in one ``error:`` line and exit code 2."""
    return run_tool(_create, argv)


def _create(argv):
    args = parse_args(argv)
    if not args.verify_only:
        from basicattn.utils.output_guard import refuse_outputs_over_inputs

        # before --overwrite is looked at: it never allows this
        refuse_outputs_over_inputs([('DST', args.dst)], [('SRC', args.src)])
    recover_first(args.verify_only or args.dst)
    message = precheck(args)
    if message is not None:
        raise UserError(message)
    from basicattn.data.lmdb_builder import build_lmdb_from_folder, verify_lmdb

    progress = not args.no_progress
    try:
        if args.verify_only:
            info = verify_lmdb(args.verify_only, progress=progress)
            print(
                f'verified {info["num_images"]} images, {info["num_bytes"]} bytes: {info["path"]}'
            )
            return 0
        info = build_lmdb_from_folder(
            args.src,
            args.dst,
            overwrite=args.overwrite,
            compress_level=args.compress_level,
            num_workers=args.workers,
            progress=progress,
        )
    except KeyboardInterrupt:
        print('interrupted: nothing was written to the destination', file=sys.stderr)
        return 130
    print(f'wrote {info["num_images"]} images, {info["num_bytes"]} bytes of PNG: {info["path"]}')
    if args.verify:
        info = verify_lmdb(args.dst, progress=progress)
        print(f'verified {info["num_images"]} images, {info["num_bytes"]} bytes: {info["path"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
