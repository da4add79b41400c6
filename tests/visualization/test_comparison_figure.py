"""Comparison figures on synthetic images: layout, box, crops, labels, metrics, profiles."""

import numpy as np
import pytest

from basicattn.errors import DataError, UserError
from basicattn.metrics.psnr_ssim import calculate_psnr, calculate_ssim
from basicattn.visualization.comparison_figure import (
    BOX_COLOUR,
    LABEL_HEIGHT,
    auto_box,
    check_box,
    clip_strip,
    crop_comparison,
    difference_map,
    label_strip,
    profile_figure,
    temporal_profile,
)
from basicattn.visualization.image_panels import GAP, upsample_nearest


def _image(rng, h, w):
    return (rng.random((h, w, 3)) * 255).astype(np.uint8)


def _noisy(rng, img, sigma):
    noise = rng.normal(0, sigma, img.shape)
    return np.clip(img + noise, 0, 255).round().astype(np.uint8)


@pytest.fixture
def scene():
    """GT 60x80, its x2 LR, and two methods."""
    rng = np.random.default_rng(0)
    gt = _image(rng, 60, 80)
    lr = gt[::2, ::2].copy()
    return gt, lr, {'A': _noisy(rng, gt, 5), 'B': _noisy(rng, gt, 20)}


def _zoomed(img, zoom):
    return img.repeat(zoom, 0).repeat(zoom, 1)


def _region(image, rect):
    x, y, w, h = rect
    return image[y : y + h, x : x + w]


def test_layout_sizes_follow_the_documented_formula(scene):
    gt, lr, srs = scene
    fig = crop_comparison(gt, lr, srs, box=(10, 12, 16, 8), zoom=3)
    tile_w, tile_h = 16 * 3, 8 * 3 + LABEL_HEIGHT
    grid_w, grid_h = 2 * tile_w + GAP, 2 * tile_h + GAP  # 4 tiles, two rows
    assert fig.image.shape == (max(60 + LABEL_HEIGHT, grid_h), 80 + GAP + grid_w, 3)
    assert fig.image.dtype == np.uint8
    assert [t.label for t in fig.tiles] == ['GT', 'LR', 'A', 'B']
    assert fig.frame_rect == (0, 0, 80, 60)
    assert fig.tiles[1].rect == (80 + GAP + tile_w + GAP, 0, 48, 24)
    assert fig.tiles[2].rect == (80 + GAP, tile_h + GAP, 48, 24)
    wide = crop_comparison(gt, lr, srs, box=(10, 12, 16, 8), zoom=3, columns=4)
    assert wide.image.shape == (60 + LABEL_HEIGHT, 80 + GAP + 4 * tile_w + 3 * GAP, 3)


def test_box_is_drawn_inside_its_outline_and_nowhere_else(scene):
    gt, lr, srs = scene
    x, y, w, h = 10, 12, 16, 8
    frame = _region(crop_comparison(gt, lr, srs, box=(x, y, w, h), zoom=2).image, (0, 0, 80, 60))
    outline = np.zeros((60, 80), bool)
    outline[y : y + h, x : x + w] = True
    outline[y + 2 : y + h - 2, x + 2 : x + w - 2] = False  # thickness 2, drawn inside the box
    assert (frame[outline] == BOX_COLOUR).all()
    assert np.array_equal(frame[~outline], gt[~outline])


def test_tiles_are_the_zoomed_crops_and_lr_is_nearest(scene):
    gt, lr, srs = scene
    box = (10, 12, 16, 8)
    fig = crop_comparison(gt, lr, srs, box=box, zoom=3)
    crop = (slice(12, 20), slice(10, 26))
    lr_big = upsample_nearest(lr, (60, 80))
    assert np.array_equal(_region(fig.image, fig.tile('GT').rect), _zoomed(gt[crop], 3))
    assert np.array_equal(_region(fig.image, fig.tile('LR').rect), _zoomed(lr_big[crop], 3))
    assert np.array_equal(_region(fig.image, fig.tile('B').rect), _zoomed(srs['B'][crop], 3))
    assert fig.box == box and fig.zoom == 3


def test_label_text_changes_only_its_label_strip(scene):
    gt, lr, srs = scene
    box = (10, 12, 16, 8)
    one = crop_comparison(gt, lr, {'A': srs['A']}, box=box, zoom=3)
    other = crop_comparison(gt, lr, {'Z9': srs['A']}, box=box, zoom=3)
    x, y, w, h = one.tile('A').rect
    changed = np.argwhere((one.image != other.image).any(axis=2))
    assert len(changed)
    assert changed[:, 0].min() >= y + h and changed[:, 0].max() < y + h + LABEL_HEIGHT
    assert changed[:, 1].min() >= x and changed[:, 1].max() < x + w
    assert (label_strip(['A'], 40) != 255).any() and (label_strip(['', ''], 40) == 255).all()


def test_label_metrics_are_the_metric_modules_values(scene):
    gt, lr, srs = scene
    fig = crop_comparison(gt, lr, srs, box=(10, 12, 16, 8), zoom=2)
    for label, sr in srs.items():
        tile = fig.tile(label)
        assert tile.psnr == calculate_psnr(sr, gt, crop_border=2, test_y_channel=True)
        assert tile.ssim == calculate_ssim(sr, gt, crop_border=2, test_y_channel=True)
        assert tile.lines == (label, f'{tile.psnr:.2f}/{tile.ssim:.4f}')
    assert fig.metric == 'PSNR / SSIM: Y, crop 2'
    assert fig.tile('GT').psnr is None
    rgb = crop_comparison(gt, lr, srs, box=(0, 0, 8, 8), test_y_channel=False, crop_border=3)
    assert rgb.tile('A').psnr == calculate_psnr(srs['A'], gt, crop_border=3)
    assert rgb.metric == 'PSNR / SSIM: RGB, crop 3'


def test_auto_box_finds_where_the_methods_disagree():
    rng = np.random.default_rng(1)
    gt = _image(rng, 64, 64)
    good, bad = gt.copy(), gt.copy()
    bad[20:32, 30:42] = _noisy(rng, gt[20:32, 30:42], 40)
    fig = crop_comparison(gt, gt[::2, ::2], {'good': good, 'bad': bad})
    assert fig.box == (30, 20, 12, 12)  # size = 64 // 5 rounded to a multiple of 2
    assert fig.zoom >= 2
    alone = crop_comparison(gt, None, {'bad': bad}, scale=2)
    assert alone.box == (30, 20, 12, 12)
    assert [t.label for t in alone.tiles] == ['GT', 'bad']


def test_auto_box_alignment_border_and_ties():
    score = np.zeros((20, 20))
    score[7:10, 7:10] = 1.0
    assert auto_box(score, 4, scale=3) == (6, 6, 4, 4)  # starts on multiples of 3
    flat = np.ones((20, 20))
    assert auto_box(flat, 4, scale=1, border=5) == (5, 5, 4, 4)  # first (top-left) maximum
    assert auto_box(flat, 18, scale=1, border=5) == (0, 0, 18, 18)  # no room: border ignored
    gt = np.zeros((4, 4, 3), np.uint8)
    # Y gain of a grey step: (65.481 + 128.553 + 24.966) / 255 = 219 / 255
    assert np.allclose(difference_map(gt, [gt, gt + 3]), 3 * 219 / 255)


def test_temporal_profile_is_the_stacked_rows():
    rng = np.random.default_rng(2)
    frames = [_image(rng, 12, 20) for _ in range(5)]
    profile = temporal_profile(frames, 7)
    assert np.array_equal(profile, np.stack([f[7] for f in frames]))
    assert profile.shape == (5, 20, 3)
    with pytest.raises(UserError, match=r'row must be an int in \[0, 11\]'):
        temporal_profile(frames, 12)


def _clip(rng, count=3, h=24, w=32):
    gts = [_image(rng, h, w) for _ in range(count)]
    lrs = [g[::2, ::2].copy() for g in gts]
    srs = {'A': [_noisy(rng, g, 10) for g in gts], 'B': [_noisy(rng, g, 3) for g in gts]}
    return gts, lrs, srs


def test_profile_figure_shows_each_source_profile_stretched():
    gts, lrs, srs = _clip(np.random.default_rng(3))
    fig = profile_figure(gts, lrs, srs, row=5, row_height=4)
    assert [t.label for t in fig.tiles] == ['GT', 'LR', 'A', 'B']
    tile_h = 3 * 4 + LABEL_HEIGHT
    assert fig.image.shape == (max(24 + LABEL_HEIGHT, 4 * tile_h + 3 * GAP), 32 + GAP + 32, 3)
    for label, frames in (('GT', gts), ('B', srs['B'])):
        expected = temporal_profile(frames, 5).repeat(4, axis=0)
        assert np.array_equal(_region(fig.image, fig.tile(label).rect), expected)
    lr_rows = temporal_profile([upsample_nearest(f, (24, 32)) for f in lrs], 5)
    assert np.array_equal(_region(fig.image, fig.tile('LR').rect), lr_rows.repeat(4, axis=0))
    assert (fig.image[5, :32] == BOX_COLOUR).all() and fig.row == 5


def test_clip_strip_has_a_row_per_source_and_per_frame_metrics():
    gts, lrs, srs = _clip(np.random.default_rng(4))
    fig = clip_strip(gts, lrs, srs, ['f1', 'f2', 'f3'], box=(4, 6, 8, 8), zoom=2)
    tile_w, tile_h = 16, 16 + LABEL_HEIGHT
    grid_h = 4 * tile_h + 3 * GAP
    assert fig.image.shape == (max(24 + LABEL_HEIGHT, grid_h), 32 + GAP + 3 * tile_w + 2 * GAP, 3)
    tile = fig.tile('A', frame='f2')
    assert tile.psnr == calculate_psnr(srs['A'][1], gts[1], crop_border=2, test_y_channel=True)
    assert tile.lines[0] == 'A f2' and tile.rect[1] == 2 * (tile_h + GAP)
    crop = srs['A'][1][6:14, 4:12]
    assert np.array_equal(_region(fig.image, tile.rect), _zoomed(crop, 2))
    frame = _region(fig.image, fig.frame_rect)  # the centre frame, boxed
    assert (frame[6, 4:12] == BOX_COLOUR).all() and np.array_equal(frame[0], gts[1][0])


def test_user_mistakes_raise_one_clear_error(scene):
    gt, lr, srs = scene
    with pytest.raises(UserError, match=r'img: box: box x=70 y=0 w=20 h=5 does not fit .*80x60'):
        crop_comparison(gt, lr, srs, box=(70, 0, 20, 5), where='img')
    with pytest.raises(UserError, match='four ints'):
        check_box((1, 2, 3), gt.shape)
    with pytest.raises(DataError, match=r'img: B: shape \(60, 79, 3\) differs'):
        crop_comparison(gt, lr, {'B': gt[:, :79]}, where='img')
    with pytest.raises(DataError, match='LR size 27x30 and GT size 80x60'):
        crop_comparison(gt, lr[:, :27], srs)
    with pytest.raises(DataError, match='do not match scale 4'):
        crop_comparison(gt, lr, srs, scale=4)
    with pytest.raises(UserError, match='give the scale'):
        crop_comparison(gt, None, srs)
    with pytest.raises(UserError, match='zoom must be a positive int'):
        crop_comparison(gt, lr, srs, zoom=0)
    gts, lrs, clip_srs = _clip(np.random.default_rng(5))
    with pytest.raises(DataError, match='A has 2 frames, GT has 3'):
        clip_strip(gts, lrs, {'A': clip_srs['A'][:2]}, ['1', '2', '3'])
    with pytest.raises(UserError, match=r'row must be an int in \[0, 23\]'):
        profile_figure(gts, lrs, clip_srs, row=24)
