"""OpenCV plots and colourings of the analysis figures (basicattn/analysis/plot.py)."""

import numpy as np

from basicattn.analysis.plot import column_plot, diverging, grid, heat, labelled, overlay


def test_diverging_is_white_at_zero_red_positive_blue_negative():
    rgb = diverging(np.array([[0.0, 2.0, -2.0, 1.0]]))
    assert rgb[0, 0].tolist() == [255, 255, 255]
    assert rgb[0, 1].tolist() == [255, 0, 0]
    assert rgb[0, 2].tolist() == [0, 0, 255]
    assert rgb[0, 3].tolist() == [255, 128, 128]  # half of the largest magnitude
    assert diverging(np.zeros((2, 2))).min() == 255  # an all-zero map stays white


def test_heat_is_brighter_for_higher_values():
    rgb = heat(np.linspace(0, 1, 5)[None]).astype(int)
    brightness = rgb.sum(axis=2)[0]
    assert (np.diff(brightness) > 0).all()
    assert (heat(np.full((2, 2), 3.0)) == heat(np.zeros((2, 2)))).all()  # flat: lowest colour
    frame = np.zeros((4, 4, 3), np.uint8)
    assert overlay(frame, np.ones((2, 2)), alpha=1.0).shape == (4, 4, 3)


def test_panels_and_plot_sizes():
    panel = labelled(np.zeros((10, 20, 3), np.uint8), 'a', 'b', size=40)
    assert panel.shape[1] == 40 and panel.shape[0] > 20  # 20 px of image, then the strip
    assert labelled(np.zeros((100, 50, 3), np.uint8), 'x', size=40)[:40].shape[1] == 20
    joined = grid([[panel, panel], [panel]], gap=4)
    assert joined.shape == (2 * panel.shape[0] + 4, 2 * 40 + 4, 3)
    plot = column_plot([[[0.1, 0.2]], [[0.5]]], ['0', '1'], ['pi_att'], 't', 'y', width=300)
    assert plot.shape == (360, 300, 3) and plot.dtype == np.uint8
    # the series colour (blue, RGB 31, 119, 180) is drawn
    assert ((plot == (31, 119, 180)).all(axis=2)).any()
    empty = column_plot([[[float('nan')]]], ['0'], ['s'], 't', 'y', zero_line=True)
    assert empty.shape == (360, 720, 3)
