"""The command-line flags that several tools share.

``--launcher``/``--set``/``--verbose``: tools/train.py and tools/test.py;
the network flags (:func:`add_network_arguments`): tools/infer.py and
tools/export.py, read by :func:`basicattn.converters.network_loading.network_from_arguments`.

Light on purpose (argparse only): the tools parse their arguments before
torch, mmengine or any arch is imported.
"""

import argparse

from basicattn.utils.tool_runner import add_debug_argument


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


def add_network_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--checkpoint``, ``-opt``, ``--arch``, ``--arch-args``, ``--param-key``, ``--scale``."""
    parser.add_argument(
        '--checkpoint',
        help="weights: basicattn/training checkpoint (.pth, .safetensors) or authors' file",
    )
    parser.add_argument('-opt', '--opt', help='option file whose network_g to build')
    parser.add_argument('--arch', help='registered arch name (instead of -opt)')
    parser.add_argument('--arch-args', default='{}', help='JSON keyword arguments of --arch')
    parser.add_argument(
        '--param-key',
        default=None,
        help='key of the weights in the checkpoint (default: found: state_dict, params_ema, '
        'params, model or a bare state dict; '
        "a training checkpoint's state_dict holds the EMA weights when the run kept EMA, "
        "'ema_state_dict' then the raw ones)",
    )
    parser.add_argument(
        '--scale',
        type=int,
        default=None,
        help="scale of weights whose file does not show it (A2N x2/x3 authors' files)",
    )
    return parser
