"""The command-line flags that tools/train.py and tools/test.py share.

Light on purpose (argparse only): the tools parse their arguments before
torch, mmengine or any arch is imported.
"""

import argparse

from basicattn.errors import add_debug_argument


def add_set_argument(
    parser: argparse.ArgumentParser, help: str = 'override options'
) -> argparse.ArgumentParser:
    """Add ``--set KEY=VALUE ...``: repeatable, values parsed as YAML literals."""
    parser.add_argument(
        '--set',
        nargs='+',
        action='extend',
        default=[],
        metavar='KEY=VALUE',
        help=f'{help}, values parsed as YAML literals (repeat --set or list several)',
    )
    return parser


def add_run_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--launcher``, ``--set``, ``--verbose``, ``--local-rank`` and ``--debug``."""
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm'],
        default='none',
        help='job launcher (pytorch = torchrun, see tools/dist_train.sh)',
    )
    add_set_argument(parser)
    parser.add_argument(
        '--verbose',
        action='store_true',
        help="also print mmengine's environment, config and hook dumps (always in the log file)",
    )
    # torchrun's older launchers pass --local_rank; the rank is read from the environment
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0, help=argparse.SUPPRESS)
    return add_debug_argument(parser)
