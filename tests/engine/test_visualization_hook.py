"""SRVisualizationHook: LR | SR | GT to the visualizer, the SR alone to disk."""

import os.path as osp
from types import SimpleNamespace

import numpy as np
import torch

from basicattn.engine.hooks import SRVisualizationHook
from basicattn.utils.img_util import imread, tensor2img
from basicattn.visualization.comparison_image import GAP


class FakeVisualizer:
    def __init__(self):
        self.images = []

    def add_image(self, name, image, step=0):
        self.images.append((name, image, step))


def _runner(tmp_path, current_set='tinyval'):
    loop = SimpleNamespace(current_set=current_set)
    return SimpleNamespace(
        val_loop=loop, test_loop=loop, work_dir=str(tmp_path), iter=7, visualizer=FakeVisualizer()
    )


def _sample(key, lq_shape=(3, 4, 5), scale=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    h, w = lq_shape[-2:]
    return dict(
        key=key,
        lq=torch.rand(*lq_shape, generator=g),
        pred=torch.rand(3, h * scale, w * scale, generator=g),
        gt=torch.rand(3, h * scale, w * scale, generator=g),
    )


def _nearest(lq, scale):
    img = tensor2img(lq)
    return np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)


def _check_panels(image, sample, lq_frame, scale=2):
    sr, gt = tensor2img(sample['pred']), tensor2img(sample['gt'])
    height, width = sr.shape[:2]
    assert image.shape == (height, 3 * width + 2 * GAP, 3)
    assert np.array_equal(image[:, :width], _nearest(lq_frame, scale))
    assert np.array_equal(image[:, width + GAP : 2 * width + GAP], sr)
    assert np.array_equal(image[:, 2 * (width + GAP) :], gt)
    assert (image[:, width : width + GAP] == 255).all()


def test_lr_sr_gt_side_by_side_and_sr_only_on_disk(tmp_path):
    runner = _runner(tmp_path)
    hook = SRVisualizationHook(save_img=True, num_tb_images=1)
    samples = [_sample('a', seed=1), _sample('b', seed=2)]
    hook.after_val_iter(runner, 0, outputs=samples)
    assert len(runner.visualizer.images) == 1  # num_tb_images per set
    name, image, step = runner.visualizer.images[0]
    assert (name, step) == ('tinyval/a', 7)
    _check_panels(image, samples[0], samples[0]['lq'])
    for sample in samples:  # every image saved, the output alone
        saved = imread(osp.join(tmp_path, 'visualization', 'tinyval', f'{sample["key"]}_7.png'))
        assert np.array_equal(saved, tensor2img(sample['pred']))


def test_video_window_shows_its_centre_frame(tmp_path):
    runner = _runner(tmp_path)
    sample = _sample('clip/0003', lq_shape=(5, 3, 4, 5), scale=4)
    SRVisualizationHook().after_val_iter(runner, 0, outputs=[sample])
    _check_panels(runner.visualizer.images[0][1], sample, sample['lq'][2], scale=4)


def test_model_val_step_outputs_carry_the_input(tmp_path):
    from basicattn.models.sr_model import SRModel

    model = SRModel(dict(type='EDSR', num_feat=8, num_block=1, upscale=2))
    batch = {'lq': torch.rand(2, 3, 4, 5), 'gt': torch.rand(2, 3, 8, 10), 'key': ['x', 'y']}
    outputs = model.val_step(batch)
    runner = _runner(tmp_path)
    SRVisualizationHook(num_tb_images=2).after_val_iter(runner, 0, outputs=outputs)
    assert [name for name, _, _ in runner.visualizer.images] == ['tinyval/x', 'tinyval/y']
    for (_, image, _), lq, out in zip(runner.visualizer.images, batch['lq'], outputs):
        _check_panels(image, out, lq)


def test_test_phase_sends_nothing(tmp_path):
    runner = _runner(tmp_path)
    SRVisualizationHook(save_img=True).after_test_iter(runner, 0, outputs=[_sample('a')])
    assert runner.visualizer.images == []
    assert osp.isfile(osp.join(tmp_path, 'results', 'tinyval', 'a.png'))
