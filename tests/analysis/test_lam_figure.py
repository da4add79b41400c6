"""The LAM figures (basicattn/analysis/lam_figure.py): layout, colours, blend."""

import numpy as np

from basicattn.analysis.lam_figure import blend, clip_figure, colour_map, image_figure
from basicattn.analysis.lam_run import Window
from basicattn.visualization.comparison_figure import BOX_COLOUR, LABEL_HEIGHT


def test_colour_map_runs_blue_to_red():
    rgb = colour_map(np.array([[0.0, 1.0]]))
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 2, 3)
    assert rgb[0, 0, 2] > 100 and rgb[0, 0, 0] == 0  # 0: blue
    assert rgb[0, 1, 0] > 100 and rgb[0, 1, 2] == 0  # 1: red


def test_blend_is_half_and_half():
    a, b = np.full((2, 2, 3), 100, np.uint8), np.full((2, 2, 3), 201, np.uint8)
    assert np.all(blend(a, b) == 150)  # 150.5 rounds half to even


def test_image_figure(rng):
    lr = (rng.random((6, 8, 3)) * 255).astype(np.uint8)
    sr = (rng.random((12, 16, 3)) * 255).astype(np.uint8)
    lam_map = np.zeros((6, 8))
    lam_map[2, 3] = 1.0
    figure = image_figure(lr, sr, lam_map, Window(2, 5, 4), 12.5, 'img')
    assert figure.image.shape == (12 + LABEL_HEIGHT, 3 * 16 + 2 * 4, 3)
    assert figure.box == (5, 2, 4, 4)
    assert tuple(figure.image[2, 5]) == BOX_COLOUR  # the window outline on the SR output
    assert figure.tile('LAM').lines == ('LAM map (on LR pixels)', 'DI 12.50')
    x, y, _, _ = figure.tile('LAM').rect
    # LR pixel (2, 3) is the 2x2 block at SR (4, 6): red; the rest blue
    assert tuple(figure.image[y + 4, x + 6]) == tuple(colour_map(np.ones((1, 1)))[0, 0])
    assert tuple(figure.image[y, x]) == tuple(colour_map(np.zeros((1, 1)))[0, 0])


def test_clip_figure(rng):
    frames = [(rng.random((5, 7, 3)) * 255).astype(np.uint8) for _ in range(3)]
    sr = (rng.random((20, 28, 3)) * 255).astype(np.uint8)
    maps = rng.random((3, 5, 7))
    summary = [
        dict(share=0.25, diffusion_index=3.5),
        dict(share=0.75, diffusion_index=1.0),
        dict(share=0.0, diffusion_index=None),
    ]
    figure = clip_figure(frames, sr, maps, summary, Window(1, 2, 8), 1, ['a', 'b', 'c'])
    zoom = 256 // 7
    assert figure.zoom == zoom
    assert [t.label for t in figure.tiles] == ['LR'] * 3 + ['LAM'] * 3 + ['blend'] * 3
    assert figure.tile('LR', 'b').lines[0] == 'frame b (output)'
    assert figure.tile('LAM', 'a').lines[1] == 'share 25.0%  DI 3.50'
    assert figure.tile('LAM', 'c').lines[1] == 'share 0.0%  DI -'
    assert figure.tile('LAM', 'c').rect[2:] == (7 * zoom, 5 * zoom)
