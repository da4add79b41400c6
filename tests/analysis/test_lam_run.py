"""LAM of every registered arch on a tiny input (basicattn/analysis/lam_run.py).

Image archs give one map with a DI; video archs one map per clip frame,
whose shares sum to 1. The archs and their tiny sizes are those of
``tests/archs/arch_cases.py``.
"""

import os.path as osp
import sys

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT

from basicattn.analysis.lam import BlurPath
from basicattn.analysis.lam_run import Window, run_clip_lam, run_image_lam
from basicattn.errors import DataError, UserError
from basicattn.registry import ARCHS

sys.path.insert(0, osp.join(REPO_ROOT, 'tests', 'archs'))
from arch_cases import ARCH_CASES  # noqa: E402

PATH = BlurPath(fold=3)


def _build(name):
    torch.manual_seed(0)
    return ARCHS.build(dict(type=name, **ARCH_CASES[name]['kwargs'])).eval()


def _kinds():
    ARCHS.import_from_location()
    image, video = [], []
    for name in sorted(ARCHS.module_dict):
        (video if len(ARCH_CASES[name]['input']) == 5 else image).append(name)
    return image, video


IMAGE_ARCHS, VIDEO_ARCHS = _kinds()


def test_the_registry_has_both_kinds():
    assert {'A2N', 'Bicubic', 'DAN', 'EDSR'} <= set(IMAGE_ARCHS)
    assert {'MANA', 'DASAA', 'DKSAN'} <= set(VIDEO_ARCHS)


@pytest.mark.parametrize('name', IMAGE_ARCHS)
def test_every_image_arch_gives_a_map_and_a_di(name, rng):
    net = _build(name)
    _, c, h, w = ARCH_CASES[name]['input']
    lr = torch.from_numpy(rng.random((c, h, w)).astype(np.float32))
    steps = []
    result = run_image_lam(net, lr, Window(3, 4, 5), PATH, batch_size=2, progress=steps.append)
    assert steps == [2, 1]
    assert result.sr.shape == ARCH_CASES[name]['output'][1:]
    assert result.lam_map.shape == (h, w) and result.lam_map.max() == 1.0
    assert result.attribution.shape == (c, h, w) and torch.isfinite(result.attribution).all()
    assert 0 < result.diffusion_index < 100
    assert result.diffusion_index == pytest.approx((1 - result.gini) * 100)


@pytest.mark.parametrize('name', VIDEO_ARCHS)
def test_every_video_arch_gives_per_frame_maps_whose_shares_sum_to_1(name, rng):
    net = _build(name)
    _, t, c, h, w = ARCH_CASES[name]['input']
    clip = torch.from_numpy(rng.random((t, c, h, w)).astype(np.float32))
    result = run_clip_lam(net, clip, Window(5, 6, 8), path=PATH, batch_size=3, mode='window')
    assert result.lam_map.shape == (t, h, w) and result.lam_map.max() == 1.0
    shares = [f['share'] for f in result.frames]
    assert sum(shares) == pytest.approx(1.0, abs=1e-12)
    assert all(s >= 0 for s in shares) and all(f['used'] for f in result.frames)
    for f in result.frames:
        if f['share'] > 0:
            assert 0 < f['diffusion_index'] < 100
    # the output frame itself is read by every arch
    assert result.frames[t // 2]['share'] > 0


def test_image_input_too_small_for_the_kernel():
    with pytest.raises(DataError, match='LR image is 4x4'):
        run_image_lam(_build('Bicubic'), torch.rand(3, 4, 4), Window(0, 0, 2), BlurPath())


def test_window_outside_the_output_is_found_before_the_path():
    steps = []
    with pytest.raises(UserError, match='leaves the 16x16'):
        run_image_lam(
            _build('Bicubic'), torch.rand(3, 8, 8), Window(10, 0, 8), PATH, 1, steps.append
        )
    assert steps == []


def test_flat_window_has_no_di():
    # Bicubic of a constant image is constant: no gradient anywhere on the path
    steps = []
    with pytest.raises(DataError, match='window at row 2 col 2 is flat in the SR output'):
        run_image_lam(
            _build('Bicubic'), torch.full((3, 8, 8), 0.5), Window(2, 2, 4), PATH, 1, steps.append
        )
    assert steps == []  # found before the path


def test_a_video_arch_given_one_image():
    with pytest.raises(DataError, match='video arch.*at least 2 frames'):
        run_clip_lam(_build('MANA'), torch.rand(3, 8, 8), Window(0, 0, 4), path=PATH)
    with pytest.raises(DataError, match='at least 2 frames'):
        run_clip_lam(_build('MANA'), torch.rand(1, 3, 8, 8), Window(0, 0, 4), path=PATH)


@pytest.mark.slow
def test_a2n_official_uses_more_pixels_than_bicubic(testdata):
    # A2N x2 (authors' weights) against the 4x4-tap bicubic baseline on a 32x32 crop of
    # the Set5 butterfly: the deep network's DI is larger (A2N Table 7's ordering)
    from basicattn.converters.network_loading import network_from_arguments
    from basicattn.utils.img_util import img2tensor, imread

    weights = testdata('weights', 'a2n_official', 'aan_x2.pt')
    lr = img2tensor(imread(testdata('Set5', 'X2', 'LR', 'img_003.png')))[:, 40:72, 40:72]
    a2n, _ = network_from_arguments(checkpoint_path=weights, scale=2, report=lambda line: None)
    window, path = Window(24, 24, 16), BlurPath(fold=2)
    a2n_result = run_image_lam(a2n, lr, window, path, batch_size=2)
    bicubic = run_image_lam(ARCHS.build(dict(type='Bicubic', scale=2)), lr, window, path)
    assert a2n_result.sr.shape == (3, 64, 64)
    assert 0 < bicubic.diffusion_index < a2n_result.diffusion_index < 100
