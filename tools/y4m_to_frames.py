"""Convert y4m videos (Youku-VESR) to PNG frame folders the video datasets read.

Examples::

    python tools/y4m_to_frames.py datasets/Youku-VESR/raw/train datasets/Youku-VESR/train
    python tools/y4m_to_frames.py datasets/Youku-VESR/raw/val datasets/Youku-VESR/val
    python tools/create_lmdb.py ...   # then, if wanted, LMDBs of the folders

Every ``.y4m`` file under SRC (a folder, any depth, or one file) becomes a
folder of PNG frames ``00000000.png, 00000001.png, ...`` under OUT_DIR, read
frame by frame (a video is never loaded whole). Youku-VESR's names choose the
side: ``Youku_00000_h_GT.y4m`` (HR) -> ``OUT_DIR/GT/Youku_00000/``,
``Youku_00000_l.y4m`` (LR) -> ``OUT_DIR/LQ/Youku_00000/``: the same clip and
frame names on both sides, the layout of ``REDSClipDataset`` and
``VideoTestDataset`` (``dataroot_gt: OUT_DIR/GT``, ``dataroot_lq:
OUT_DIR/LQ``). Any other name ``NAME.y4m`` -> ``OUT_DIR/NAME/``.

Colour: BT.601, limited range (``--full-range`` for JPEG-range files);
4:2:0 chroma is interpolated at the siting the header names
(:mod:`basicattn.data.y4m_io`). Existing frame folders are never replaced
without ``--overwrite``; the frames reach OUT_DIR only once every video was
converted. The last line printed is OUT_DIR.

Why a converter and not a dataset reading y4m: training draws random windows
of frames from random clips many times per clip; PNG (or LMDB) folders let
the existing datasets, LMDB builder, ``tools/test.py`` per-clip metrics and
``tools/rank_motion.py`` work unchanged, and the colour conversion runs once.
"""

import argparse
import os
import os.path as osp
import re
import sys

import _bootstrap  # noqa: F401

from basicattn.errors import UserError
from basicattn.utils.tool_runner import add_debug_argument, run_tool

#: Youku-VESR file names: clip, then ``_h_GT`` (HR) or ``_l`` (LR).
YOUKU_NAME = re.compile(r'^(?P<clip>.+?)_(?P<side>h_GT|l)$')
SIDES = {'h_GT': 'GT', 'l': 'LQ'}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Write the frames of y4m videos as PNG folders (Youku-VESR: '
        'OUT_DIR/GT/<clip>/ and OUT_DIR/LQ/<clip>/).'
    )
    parser.add_argument('src', metavar='SRC', help='a .y4m file or a folder of them (any depth)')
    parser.add_argument('out_dir', metavar='OUT_DIR', help='output folder')
    parser.add_argument(
        '--full-range',
        action='store_true',
        help='the videos use full-range (JPEG) YUV; default: limited range (16-235)',
    )
    parser.add_argument(
        '--max-frames', type=int, help='write only the first N frames of each video'
    )
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='write into existing frame folders (frames of the same name are replaced)',
    )
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if args.max_frames is not None and args.max_frames < 1:
        parser.error(f'--max-frames must be >= 1, got {args.max_frames}')
    return args


def video_files(src):
    """Sorted ``.y4m`` files of SRC (a file or a folder)."""
    if osp.isfile(src):
        return [src]
    if not osp.isdir(src):
        raise UserError(f'SRC not found: {src}')
    found = []
    for root, dirs, files in os.walk(src):
        dirs.sort()
        found += [osp.join(root, f) for f in sorted(files) if f.lower().endswith('.y4m')]
    if not found:
        raise UserError(f'no .y4m files found in {src}')
    return found


def frame_folder(path):
    """The output folder of a video, relative to OUT_DIR."""
    stem = osp.splitext(osp.basename(path))[0]
    match = YOUKU_NAME.match(stem)
    if match:
        return osp.join(SIDES[match['side']], match['clip'])
    return stem


def main(argv=None):
    """Run the tool; user mistakes end in one ``error:`` line and exit code 2."""
    return run_tool(_convert, argv)


def _convert(argv):
    args = parse_args(argv)
    from basicattn.data.y4m_io import Y4MReader
    from basicattn.utils.atomic_file import StagedFolder
    from basicattn.utils.img_util import imwrite

    videos = video_files(args.src)
    targets = {}
    for path in videos:
        rel = frame_folder(path)
        if rel in targets:
            raise UserError(f'{path} and {targets[rel]} both write {rel}; convert them separately')
        targets[rel] = path
    if not args.overwrite:
        taken = [rel for rel in targets if osp.exists(osp.join(args.out_dir, rel))]
        if taken:
            raise UserError(
                f'{len(taken)} frame folder(s) exist, e.g. {osp.join(args.out_dir, taken[0])}; '
                'pass --overwrite to replace them'
            )
    out = StagedFolder(args.out_dir)
    frames = 0
    try:
        for rel, path in targets.items():
            with Y4MReader(path, full_range=args.full_range) as video:
                count = len(video) if args.max_frames is None else min(len(video), args.max_frames)
                if not count:
                    raise UserError(f'{path}: the video has no frames')
                for index in range(count):
                    with out.writing(osp.join(rel, f'{index:08d}.png')) as staged:
                        imwrite(staged, video.read(index))
                frames += count
                print(f'{path}: {count} frame(s) {video.size[1]}x{video.size[0]} -> {rel}')
        out.commit()
    except BaseException:
        out.abort()
        raise
    print(f'wrote {frames} frame(s) of {len(targets)} video(s)')
    print(args.out_dir)
    return 0


if __name__ == '__main__':
    sys.exit(main())
