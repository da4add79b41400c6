"""One item of each video dataset against a stored expectation.

The datasets share their constructor checks, item assembly and ``__repr__``
through ``VideoFrameDataset``; these cases pin what each one returns (keys,
dtypes, shapes, values as a hash, paths and the repr) for a fixed tree and
seed, so that a change of the shared code cannot alter an item unnoticed.
The trees are written from a seeded generator with LQ frames taken as
``GT[::2, ::2]`` (exact uint8 values); two cases make LQ frames with the DN
and BI degradations.
"""

import hashlib
import os.path as osp

import numpy as np
import pytest
import torch

from basicattn.data.video_reds_dataset import REDSClipDataset
from basicattn.data.video_test_dataset import VideoTestDataset
from basicattn.data.video_vimeo_dataset import VimeoSeptupletDataset
from basicattn.utils.img_util import imwrite

H, W, SCALE = 16, 20, 2


@pytest.fixture(scope='module')
def roots(tmp_path_factory):
    """REDS-like (2 clips x 5 frames) and Vimeo-like (2 septuplets) trees."""
    base = tmp_path_factory.mktemp('stored')
    rng = np.random.default_rng(123)
    layouts = (
        ('reds', ('000', '001'), [f'{i:08d}' for i in range(5)]),
        ('vimeo', ('00001/0001', '00001/0002'), [f'im{i}' for i in range(1, 8)]),
    )
    for kind, clips, names in layouts:
        for clip in clips:
            for name in names:
                gt = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
                imwrite(str(base / kind / 'GT' / clip / f'{name}.png'), gt)
                imwrite(str(base / kind / 'LQ' / clip / f'{name}.png'), gt[::SCALE, ::SCALE])
    return str(base)


def _summary(item: dict, root: str) -> dict:
    out = {}
    for key, value in item.items():
        if isinstance(value, torch.Tensor) and not value.is_floating_point():
            out[key] = (str(value.dtype), value.tolist())
        elif isinstance(value, torch.Tensor):
            digest = hashlib.sha256(value.numpy().tobytes()).hexdigest()[:16]
            out[key] = (str(value.dtype), tuple(value.shape), digest)
        elif isinstance(value, str):
            out[key] = value.replace(root, '<root>').replace(osp.sep, '/')
        else:
            out[key] = (type(value).__name__, value)
    return out


TRAIN = dict(scale=SCALE, gt_size=8, use_hflip=True, use_rot=True, random_reverse=True)


def _build(name: str, root: str):
    reds_gt, reds_lq = osp.join(root, 'reds', 'GT'), osp.join(root, 'reds', 'LQ')
    vimeo_gt, vimeo_lq = osp.join(root, 'vimeo', 'GT'), osp.join(root, 'vimeo', 'LQ')
    if name == 'reds_given_lq':
        return REDSClipDataset(
            reds_gt, reds_lq, num_frame=3, interval_list=[1, 2], return_all_gt=True, **TRAIN
        ), (4, 7)
    if name == 'reds_dn':
        return REDSClipDataset(
            reds_gt, num_frame=5, degradation='DN', exclude_clips=['000'], repeat=2, **TRAIN
        ), (6, 3)
    if name == 'vimeo_given_lq':
        return VimeoSeptupletDataset(vimeo_gt, vimeo_lq, num_frame=5, **TRAIN), (1, 3)
    if name == 'vimeo_all_gt':
        return VimeoSeptupletDataset(
            vimeo_gt, vimeo_lq, scale=SCALE, num_frame=3, return_all_gt=True, repeat=3
        ), (4, 0)
    if name == 'test_bi_crop':
        return VideoTestDataset(
            reds_gt, scale=SCALE, num_frame=5, padding='reflection_circle', gt_size=8
        ), 5
    if name == 'test_given_lq_all_gt':
        return VideoTestDataset(
            vimeo_gt, vimeo_lq, clips=['00001/0002'], scale=SCALE, num_frame=3, return_all_gt=True
        ), 6
    raise KeyError(name)


# Recorded from the datasets before their item assembly moved into the base.
EXPECTED = {
    'reds_given_lq': (
        {
            'lq': ('torch.float32', (3, 3, 4, 4), '1d2db3db317e1857'),
            'gt': ('torch.float32', (3, 3, 8, 8), '932d169f32db4650'),
            'key': '000/00000004',
            'clip': '000',
            'frame_idx': ('int', 4),
            'num_frames_in_clip': ('int', 5),
            'interval': ('int', 2),
            'neighbors': ('torch.int64', [2, 4, 2]),
            'gt_path': '<root>/reds/GT/000/00000004.png',
            'lq_path': '<root>/reds/LQ/000/00000004.png',
        },
        "REDSClipDataset(name='GT', num_clips=2, num_frames=10, num_frame=3, "
        "interval_list=[1, 2], padding='reflection', repeat=1, scale=2, backend='disk', "
        "gt='<root>/reds/GT', lq='<root>/reds/LQ')",
    ),
    'reds_dn': (
        {
            'lq': ('torch.float32', (5, 3, 4, 4), 'e34c4eba1e6c7cd7'),
            'gt': ('torch.float32', (3, 8, 8), '86bda4507503e786'),
            'key': '001/00000001',
            'clip': '001',
            'frame_idx': ('int', 1),
            'num_frames_in_clip': ('int', 5),
            'interval': ('int', 1),
            'neighbors': ('torch.int64', [3, 2, 1, 0, 1]),
            'gt_path': '<root>/reds/GT/001/00000001.png',
            'lq_path': '<root>/reds/GT/001/00000001.png (DN x2)',
        },
        "REDSClipDataset(name='GT', num_clips=1, num_frames=5, num_frame=5, "
        "interval_list=[1], padding='reflection', repeat=2, scale=2, backend='disk', "
        "gt='<root>/reds/GT', lq='DN from GT')",
    ),
    'vimeo_given_lq': (
        {
            'lq': ('torch.float32', (5, 3, 4, 4), '0839cd017cb43dc3'),
            'gt': ('torch.float32', (3, 8, 8), 'd479a21c89a08cb8'),
            'key': '00001/0002/im4',
            'clip': '00001/0002',
            'frame_idx': ('int', 3),
            'num_frames_in_clip': ('int', 7),
            'neighbors': ('torch.int64', [5, 4, 3, 2, 1]),
            'gt_path': '<root>/vimeo/GT/00001/0002/im4.png',
            'lq_path': '<root>/vimeo/LQ/00001/0002/im4.png',
        },
        "VimeoSeptupletDataset(name='GT', num_clips=2, num_frame=5, repeat=1, scale=2, "
        "backend='disk', gt='<root>/vimeo/GT', lq='<root>/vimeo/LQ')",
    ),
    'vimeo_all_gt': (
        {
            'lq': ('torch.float32', (3, 3, 8, 10), '3f672f6e22700287'),
            'gt': ('torch.float32', (3, 3, 16, 20), '7642bb5afb765897'),
            'key': '00001/0001/im4',
            'clip': '00001/0001',
            'frame_idx': ('int', 3),
            'num_frames_in_clip': ('int', 7),
            'neighbors': ('torch.int64', [2, 3, 4]),
            'gt_path': '<root>/vimeo/GT/00001/0001/im4.png',
            'lq_path': '<root>/vimeo/LQ/00001/0001/im4.png',
        },
        "VimeoSeptupletDataset(name='GT', num_clips=2, num_frame=3, repeat=3, scale=2, "
        "backend='disk', gt='<root>/vimeo/GT', lq='<root>/vimeo/LQ')",
    ),
    'test_bi_crop': (
        {
            'lq': ('torch.float32', (5, 3, 4, 4), '2d9070d2f94a1d75'),
            'gt': ('torch.float32', (3, 8, 8), '428c35f2f0021882'),
            'key': '001/00000000',
            'clip': '001',
            'frame_idx': ('int', 0),
            'num_frames_in_clip': ('int', 5),
            'border': ('bool', True),
            'neighbors': ('torch.int64', [4, 3, 0, 1, 2]),
            'gt_path': '<root>/reds/GT/001/00000000.png',
            'lq_path': '<root>/reds/GT/001/00000000.png (BI x2)',
        },
        "VideoTestDataset(name='GT', num_clips=2, num_frames=10, num_frame=5, "
        "padding='reflection_circle', scale=2, backend='disk', gt='<root>/reds/GT', "
        "lq='BI from GT')",
    ),
    'test_given_lq_all_gt': (
        {
            'lq': ('torch.float32', (3, 3, 8, 10), '602550f8b774e308'),
            'gt': ('torch.float32', (3, 3, 16, 20), '50926ca76b8097bb'),
            'key': '00001/0002/im7',
            'clip': '00001/0002',
            'frame_idx': ('int', 6),
            'num_frames_in_clip': ('int', 7),
            'border': ('bool', True),
            'neighbors': ('torch.int64', [5, 6, 5]),
            'gt_path': '<root>/vimeo/GT/00001/0002/im7.png',
            'lq_path': '<root>/vimeo/LQ/00001/0002/im7.png',
        },
        "VideoTestDataset(name='GT', num_clips=1, num_frames=7, num_frame=3, "
        "padding='reflection', scale=2, backend='disk', gt='<root>/vimeo/GT', "
        "lq='<root>/vimeo/LQ')",
    ),
}


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_item_and_repr_match_the_stored_expectation(roots, name):
    ds, item = _build(name, roots)
    expected_item, expected_repr = EXPECTED[name]
    assert _summary(ds[item], roots) == expected_item
    assert repr(ds).replace(roots, '<root>').replace(osp.sep, '/') == expected_repr
