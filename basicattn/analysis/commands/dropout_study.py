"""``tools/analyze.py dropout-study``: A2N's attention-dropout study (Table 2).

    python tools/analyze.py dropout-study \\
        -opt options/train/attention_dropout/a2n_probe_x4_all.yml \\
        [--variants all none 1-5 6-10 even] --out experiments/attention_dropout_x4 \\
        [--stop-at ITER] [--set KEY=VALUE ...] [--digits 2] [--verbose]

Trains the listed variants of the option file's network one after the other
(each in ``<out>/<variant>/``, resumable), tests each, and writes
``<out>/results.md`` and ``results.json``: variant, blocks with attention,
PSNR, parameters. See :mod:`basicattn.analysis.dropout_study`.
"""

import argparse

from basicattn.utils.run_arguments import add_set_argument

COMMAND = 'dropout-study'
HELP = (
    "A2N's attention-dropout study: train the variants (blocks that keep attention) in "
    'turn and write a Table-2-shaped results.md (resumable)'
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's flags (``-opt``, ``--variants``, ``--out``, ``--stop-at``, ``--set``)."""
    from basicattn.analysis.dropout_study import TABLE_2_VARIANTS  # lazy: cheap

    parser.add_argument(
        '-opt',
        '--opt',
        required=True,
        help='training option file of an arch with attention_blocks (type: AttentionProbe)',
    )
    parser.add_argument(
        '--variants',
        nargs='+',
        default=list(TABLE_2_VARIANTS),
        metavar='SPEC',
        help='blocks that keep attention, one spec per row: all, none, even, odd or 1-based '
        "block numbers and ranges (1-5, 2,4,6,8,10); default: the rows of the paper's "
        f'Table 2, {" ".join(TABLE_2_VARIANTS)}',
    )
    parser.add_argument(
        '--out', required=True, help='study folder: one experiment folder per variant, results.md'
    )
    parser.add_argument(
        '--stop-at',
        type=int,
        metavar='ITER',
        help='save a resume checkpoint after iteration ITER of the first unfinished variant '
        'and stop (time-limited jobs; the same command again continues)',
    )
    parser.add_argument(
        '--digits', type=int, default=2, help='decimals of PSNR in results.md (default 2)'
    )
    parser.add_argument(
        '--verbose', action='store_true', help="also print mmengine's dumps on the console"
    )
    add_set_argument(parser, help='override options of every variant')


def run(args: argparse.Namespace) -> int:
    """Run the study (:func:`basicattn.analysis.dropout_study.run_study`)."""
    from basicattn.analysis.dropout_study import run_study  # lazy: cheap
    from basicattn.errors import UserError  # lazy: cheap

    if args.stop_at is not None and args.stop_at < 1:
        raise UserError(f'--stop-at must be >= 1, got {args.stop_at}')
    if not 0 <= args.digits <= 10:
        raise UserError(f'--digits must be between 0 and 10, got {args.digits}')
    return run_study(
        args.opt,
        args.variants,
        args.out,
        overrides=args.set,
        stop_at=args.stop_at,
        digits=args.digits,
        verbose=args.verbose,
    )
