"""Analyse a trained network: its attention, and the input pixels it uses.

    python tools/analyze.py COMMAND ... (python tools/analyze.py -h lists the commands)

Each command is a module of :mod:`basicattn.analysis.commands`; see
docs/analysis.md for what each one computes and the paper it comes from.
Everything a command writes goes under its ``--out`` folder.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # tools/, also when imported
import _bootstrap  # noqa: F401,E402  (the checkout's .venv and package)

from basicattn.utils.tool_runner import add_debug_argument, run_tool  # noqa: E402


def parse_args(argv=None):
    from basicattn.analysis.commands import available_commands

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    subparsers = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    for name, module in available_commands().items():
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        add_debug_argument(sub)
        sub.set_defaults(run=module.run)
    return parser.parse_args(argv)


def _analyze(argv) -> int:
    args = parse_args(argv)
    from basicattn.checkpoint.io import install as install_safe_checkpoint_io

    install_safe_checkpoint_io()  # the studies train and test through mmengine runners
    return args.run(args)


def main(argv=None) -> int:
    """Run the tool; user mistakes end in one ``error:`` line and exit code 2."""
    return run_tool(_analyze, argv)


if __name__ == '__main__':
    sys.exit(main())
