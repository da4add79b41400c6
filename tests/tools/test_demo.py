"""The embedded demo: its data preparation and option files work end to end."""

import os.path as osp

import pytest

from basicattn.config import read_options
from basicattn.data.demo_photos import HELDOUT_PHOTOS, TRAIN_PHOTOS, prepare_demo_data
from basicattn.data.lmdb_builder import verify_lmdb

pytest.importorskip('skimage', reason='the demo photographs come with scikit-image')


@pytest.mark.slow
def test_demo_data_and_two_training_iterations(tmp_path, tool):
    paths = prepare_demo_data(str(tmp_path / 'demo'), progress=False)
    assert verify_lmdb(paths['train_hr_lmdb'], progress=False)['num_images'] == len(TRAIN_PHOTOS)
    assert verify_lmdb(paths['train_lr_lmdb'], progress=False)['num_images'] == len(TRAIN_PHOTOS)
    assert sorted(n[:-4] for n in __import__('os').listdir(paths['heldout_hr'])) == sorted(
        HELDOUT_PHOTOS
    )
    overrides = [
        f'datasets.train.dataroot_gt={paths["train_hr_lmdb"]}',
        f'datasets.train.dataroot_lq={paths["train_lr_lmdb"]}',
        f'datasets.val.dataroot_gt={paths["heldout_hr"]}',
        f'datasets.val.dataroot_lq={paths["heldout_lr"]}',
        f'path.experiments_root={tmp_path / "exp"}',
        'train.total_iter=2',
        'val.val_freq=2',
        'datasets.train.batch_size_per_gpu=2',
    ]
    from conftest import REPO_ROOT

    read_options(osp.join(REPO_ROOT, 'options/demo/demo_edsr_x2.yml'), overrides)  # validates
    out = tool('tools/train.py', '-opt', 'options/demo/demo_edsr_x2.yml', '--set', *overrides)
    assert out.returncode == 0, out.stderr[-3000:]
    assert osp.isfile(tmp_path / 'exp' / 'iter_2.pth')
    bicubic = tool(
        'tools/test.py',
        '-opt',
        'options/demo/demo_bicubic_x2.yml',
        '--set',
        f'datasets.test_heldout.dataroot_gt={paths["heldout_hr"]}',
        f'datasets.test_heldout.dataroot_lq={paths["heldout_lr"]}',
        f'path.experiments_root={tmp_path / "bic"}',
    )
    assert bicubic.returncode == 0, bicubic.stderr[-3000:]
    assert osp.isfile(bicubic.stdout.strip().splitlines()[-1])
