"""Rank the clips of a video set by motion (mean optical-flow magnitude) and write subsets.

    python tools/rank_motion.py ROOT --out DIR [--top PERCENT ...] [--clips LIST]
        [--preset ultrafast|fast|medium]

For every clip under ROOT (a folder holding frames; with Vimeo-90K's
``ROOT/sequences/<5 digits>/<4 digits>/im1..im7.png`` the clips are
``00001/0001`` ..., plain clip folders such as ``Vid4/GT/calendar`` work the
same), the mean optical-flow magnitude between consecutive frames, in pixels
per frame: OpenCV's DIS flow on grayscale frames (``--preset``, default
``medium``), averaged over pixels, then over the pairs
(``basicattn/data/motion_rank.py``). ``--clips`` restricts the ranking to the
clips of a list file (``sep_testlist.txt`` for Vimeo-90K-T).

Written to DIR, all files together or none (existing files of the same name
are replaced):

* ``motion.json``: ``{clip: magnitude}``, largest first;
* per ``--top P``: ``top<P>.txt``, the ``max(1, round(n * P / 100))`` clips of
  largest motion, in clip order, one ``<clip> <frames> (<h>,<w>,<c>)`` line
  each: a ``meta_info_file`` of the video datasets.

MANA's Vimeo90K-Motion (the 6 % of the Vimeo-90K test clips that move most)::

    python tools/rank_motion.py datasets/vimeo90k --clips datasets/vimeo90k/sep_testlist.txt \\
        --out datasets/vimeo90k/motion --top 6

The ranking is printed (the 10 clips that move most and least); the last line
is DIR. A missing ROOT or list, a listed clip that is not there, a clip of one
frame and unreadable frames end in one ``error:`` line.
"""

import argparse
import json
import sys

import _bootstrap  # noqa: F401

from basicattn.utils.tool_runner import add_debug_argument, run_tool


def _percent(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a percentage, got {text!r}') from None
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f'expected a percentage in (0, 100], got {text}')
    return value


def parse_args(argv=None):
    from basicattn.data.motion_rank import PRESETS

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('root', metavar='ROOT', help='folder of the clips (or of sequences/)')
    parser.add_argument('--out', required=True, metavar='DIR', help='where the files go')
    parser.add_argument(
        '--top',
        nargs='+',
        action='extend',
        type=_percent,
        default=[],
        metavar='PERCENT',
        help='write a clip list of the PERCENT %% of clips that move most (repeatable)',
    )
    parser.add_argument('--clips', metavar='LIST', help='rank only the clips of this list file')
    parser.add_argument(
        '--preset', choices=PRESETS, default='medium', help='DIS optical-flow preset'
    )
    add_debug_argument(parser)
    return parser.parse_args(argv)


def list_name(percent):
    """``top6.txt``, ``top2.5.txt``."""
    return f'top{percent:g}.txt'


def _progress(done, total):
    if done == total or done % 200 == 0:
        print(f'ranked {done}/{total} clips', file=sys.stderr, flush=True)


def main(argv=None):
    """Run the tool; user mistakes end in one ``error:`` line and exit code 2."""
    return run_tool(_rank, argv)


def _rank(argv):
    from basicattn.data.motion_rank import (
        clip_list_text,
        clips_of_list,
        find_clips,
        motion_root,
        rank_motion,
        top_clips,
    )
    from basicattn.utils.atomic_file import StagedFolder

    args = parse_args(argv)
    only = clips_of_list(args.clips) if args.clips else None
    root = motion_root(args.root)
    clips = find_clips(root, only, where=args.clips or '')
    motion, info = rank_motion(clips, args.preset, _progress)
    staging = StagedFolder(args.out)
    try:
        with staging.writing('motion.json') as path, open(path, 'w', encoding='utf-8') as f:
            json.dump(motion, f, indent=1)
            f.write('\n')
        written = {}
        for percent in dict.fromkeys(args.top):
            chosen = top_clips(motion, percent)
            with staging.writing(list_name(percent)) as path:
                with open(path, 'w', encoding='utf-8') as f:
                    f.write(clip_list_text(chosen, info))
            written[percent] = len(chosen)
        staging.commit()
    except BaseException:
        staging.abort()
        raise
    ranked = list(motion.items())
    shown = ranked if len(ranked) <= 20 else ranked[:10] + [('...', None)] + ranked[-10:]
    print(f'{len(ranked)} clips of {root}, mean flow magnitude (px/frame, DIS {args.preset}):')
    for rank, (clip, value) in enumerate(shown, start=1):
        if value is None:
            print('  ...')
        else:
            place = rank if rank <= 10 or len(ranked) <= 20 else len(ranked) - len(shown) + rank
            print(f'  {place:>5}  {clip}  {value:.3f}')
    for percent, count in written.items():
        print(f'top {percent:g} %: {count} clips -> {list_name(percent)}')
    print(args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
