"""The embedded demo: train a small SR network on photographs shipped inside
scikit-image and show that it beats bicubic on held-out photographs.

    python tools/demo.py [--set train.total_iter=200 ...]

Steps: (1) write HR/LR pairs (MATLAB-exact bicubic) and LMDBs to
datasets/demo/; (2) train options/demo/demo_edsr_x2.yml with tools/train.py;
(3) evaluate the trained network and the Bicubic baseline
(options/demo/demo_bicubic_x2.yml) with tools/test.py; (4) print both and the
gain. Exits with status 1 if the network does not beat bicubic.
"""
import argparse
import json
import os.path as osp
import subprocess
import sys

import _bootstrap  # noqa: F401

TOOLS = osp.dirname(osp.abspath(__file__))
TRAIN_OPT = 'options/demo/demo_edsr_x2.yml'
BICUBIC_OPT = 'options/demo/demo_bicubic_x2.yml'


def _run(args):
    """Run a tool in its own process; return the path on its last stdout line."""
    print('$ python ' + ' '.join(args), flush=True)
    proc = subprocess.run([sys.executable] + args, stdout=subprocess.PIPE, text=True)
    sys.stdout.write(proc.stdout[-2000:])
    if proc.returncode != 0:
        sys.exit(f'demo: {args[0]} failed with status {proc.returncode}')
    return proc.stdout.strip().splitlines()[-1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--set', nargs='+', default=[], metavar='KEY=VALUE',
                        help='overrides for the training options')
    parser.add_argument('--data-root', default='datasets/demo')
    args = parser.parse_args(argv)
    root = osp.dirname(TOOLS)

    from basicattn.data.demo_photos import HELDOUT_PHOTOS, TRAIN_PHOTOS, prepare_demo_data
    print(f'[1/4] preparing data from scikit-image photographs: train {", ".join(TRAIN_PHOTOS)}; '
          f'held out {", ".join(HELDOUT_PHOTOS)}', flush=True)
    prepare_demo_data(osp.join(root, args.data_root) if not osp.isabs(args.data_root)
                      else args.data_root)

    print('[2/4] training', flush=True)
    train_opt = osp.join(root, TRAIN_OPT)
    _run([osp.join(TOOLS, 'train.py'), '-opt', train_opt, '--set'] + args.set
         if args.set else [osp.join(TOOLS, 'train.py'), '-opt', train_opt])
    from basicattn.engine import read_options
    from basicattn.engine.builder import default_work_dir
    work_dir = default_work_dir(read_options(train_opt, args.set), 'train')
    checkpoint = osp.join(work_dir, 'latest.pth')

    print('[3/4] evaluating on the held-out photographs', flush=True)
    ours = _run([osp.join(TOOLS, 'test.py'), '-opt', train_opt, '--checkpoint', checkpoint,
                 '--set', f'path.experiments_root={work_dir}/test'])
    bicubic = _run([osp.join(TOOLS, 'test.py'), '-opt', osp.join(root, BICUBIC_OPT)])
    ours = json.load(open(ours))['skimage_heldout']
    bicubic = json.load(open(bicubic))['skimage_heldout']

    gain = ours['psnr_y_crop2'] - bicubic['psnr_y_crop2']
    print('[4/4] result on held-out photographs (x2, Y channel, crop 2)')
    print(f'  bicubic : PSNR {bicubic["psnr_y_crop2"]:.2f} dB  SSIM {bicubic["ssim_y_crop2"]:.4f}')
    print(f'  EDSR    : PSNR {ours["psnr_y_crop2"]:.2f} dB  SSIM {ours["ssim_y_crop2"]:.4f}')
    print(f'  gain    : {gain:+.2f} dB', flush=True)
    return 0 if gain > 0 else 1


if __name__ == '__main__':
    sys.exit(main())
