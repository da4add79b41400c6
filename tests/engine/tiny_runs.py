"""In-process tiny training runs (EDSR x2 on generated images) for the AMP and
accumulation tests: a straight run and a stopped-then-resumed one compare."""

import os
import os.path as osp

import numpy as np
import yaml

from basicattn.checkpoint.io import safe_load


def write_images(folder, count=8, size=32, seed=0):
    """``count`` smooth random PNG images of ``size`` pixels into ``folder``."""
    import cv2

    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        img = (rng.random((size, size, 3)) * 255).astype(np.uint8)
        cv2.imwrite(osp.join(folder, f'im{i}.png'), cv2.GaussianBlur(img, (5, 5), 1.5))


def options(root, name, batch=2, total_iter=4, **train):
    """Option dict of a run without validation; ``train`` keys override."""
    return {
        'name': name,
        'scale': 2,
        'manual_seed': 3,
        'datasets': {
            'train': {
                'type': 'PairedImageDataset',
                'dataroot_gt': osp.join(root, 'images'),
                'gt_size': 16,
                'use_hflip': True,
                'use_rot': True,
                'batch_size_per_gpu': batch,
            }
        },
        'network_g': {'type': 'EDSR', 'num_feat': 8, 'num_block': 1},
        'path': {'experiments_root': osp.join(root, name)},
        'train': {
            'optim_g': {'type': 'Adam', 'lr': 1e-3},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [2], 'gamma': 0.5},
            'total_iter': total_iter,
            'warmup_iter': 1,
            'losses': {'pixel': {'type': 'L1Loss'}},
            **train,
        },
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 1, 'use_tb_logger': False},
    }


def train(root, opt, stop_at=None, auto_resume=False):
    """Run tools/train.py's steps in this process; return the work dir."""
    from basicattn.config import read_options
    from basicattn.engine import build_runner

    path = osp.join(root, f'{opt["name"]}.yml')
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    runner = build_runner(read_options(path), stop_at=stop_at, auto_resume=auto_resume)
    runner.train()
    return opt['path']['experiments_root']


def checkpoint(work_dir, iteration):
    """The saved training checkpoint of an iteration."""
    return safe_load(osp.join(work_dir, f'iter_{iteration}.pth'))
