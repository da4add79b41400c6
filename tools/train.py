"""Train a model from one option file.

python tools/train.py -opt options/train/a2n_x4.yml [--auto-resume]
    [--launcher none|pytorch|slurm] [--stop-at ITER] [--verbose] [--set train.total_iter=1000 ...]
"""

import argparse
import sys

import _bootstrap  # noqa: F401

from basicattn.utils.run_arguments import add_run_arguments
from basicattn.utils.tool_runner import run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('-opt', '--opt', required=True, help='YAML option file')
    parser.add_argument(
        '--auto-resume',
        action='store_true',
        help='resume from the newest checkpoint of the experiment',
    )
    parser.add_argument(
        '--stop-at',
        type=int,
        metavar='ITER',
        help='save a resume checkpoint after iteration ITER and exit '
        '(for time-limited jobs; continue with --auto-resume)',
    )
    add_run_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None):
    """Run the tool; user mistakes end in one ``error:`` line and exit code 2."""
    return run_tool(_train, argv)


def _train(argv):
    args = parse_args(argv)
    from basicattn.checkpoint.io import install as install_safe_checkpoint_io
    from basicattn.config import read_options
    from basicattn.engine import build_runner

    install_safe_checkpoint_io()
    opt = read_options(args.opt, args.set, purpose='train')
    runner = build_runner(
        opt,
        purpose='train',
        launcher=args.launcher,
        auto_resume=args.auto_resume,
        stop_at=args.stop_at,
        verbose=args.verbose,
    )
    from basicattn.checkpoint.run_lock import release
    from basicattn.engine.dist_env import collective_timeout_report

    try:
        with collective_timeout_report():
            runner.train()
    finally:  # also after a failure: the folder is free again (the hook did it otherwise)
        release(runner.work_dir, remove=True)
    from mmengine.dist import get_dist_info

    rank, world_size = get_dist_info()
    print(
        f'basicattn: rank {rank}/{world_size} finished training at iteration '
        f'{runner.iter}; work dir {runner.work_dir}',
        flush=True,
    )
    return 0


if __name__ == '__main__':
    exit_code = main()
    from basicattn.engine.dist_env import finish_distributed

    finish_distributed(wait_for_others=exit_code == 0)
    sys.exit(exit_code)
