"""Parameters-vs-PSNR plots: points where the data says, ticks, labels, SVG = image."""

import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest

from basicattn.visualization.tradeoff_plot import (
    MEASURED_COLOUR,
    PUBLISHED_COLOUR,
    PlotPoint,
    nice_ticks,
    parameter_unit,
    tradeoff_plot,
)

# A2N's Table 5, x2, Urban100 (parameters, PSNR): A2N and three of the methods it plots
URBAN100_X2 = [
    PlotPoint('A2N', 1_036_443, 32.43),
    PlotPoint('IMDN', 694_000, 32.17, measured=False),
    PlotPoint('CARN', 1_592_000, 31.92, measured=False),
    PlotPoint('SRCNN', 57_000, 29.50, measured=False),
]
SVG = '{http://www.w3.org/2000/svg}'


def _blobs(image, colour, rect):
    """Centroids ``(x, y)`` of the regions of exactly ``colour`` inside ``rect``, left to right.

    (The legend's markers lie outside the axes.)
    """
    x0, y0, w, h = rect
    mask = np.zeros(image.shape[:2], np.uint8)
    inside = np.all(image[y0 : y0 + h, x0 : x0 + w] == np.array(colour, np.uint8), axis=2)
    mask[y0 : y0 + h, x0 : x0 + w] = inside
    count, _, stats, centroids = cv2.connectedComponentsWithStats(mask)
    return sorted(tuple(c) for c, s in zip(centroids[1:], stats[1:]) if s[cv2.CC_STAT_AREA] > 20)


def test_nice_ticks_cover_the_values_with_room():
    assert nice_ticks([29.5, 32.43]) == (29.0, 33.0, [29.0, 30.0, 31.0, 32.0, 33.0])
    lo, hi, ticks = nice_ticks([57.0, 1592.0], floor=0.0)
    assert (lo, hi, ticks) == (0.0, 2000.0, [0.0, 500.0, 1000.0, 1500.0, 2000.0])
    lo, hi, ticks = nice_ticks([38.0])  # one value: a range around it
    assert lo < 38.0 < hi and len(ticks) >= 2
    assert parameter_unit([1_036_443, 1_592_000]) == 'K'
    assert parameter_unit([11_460_745, 15_600_000]) == 'M'


def test_points_drawn_where_the_data_says():
    plot = tradeoff_plot(URBAN100_X2, 'PSNR (dB)', 'Urban100 x2: psnr_y_crop2')
    assert plot.unit == 'K' and plot.x_axis.texts == ['0', '500', '1000', '1500', '2000']
    assert plot.y_axis.texts == ['29', '30', '31', '32', '33']
    x0, y0, w, h = plot.axes_rect
    # the axis ends are the box's edges; the box is drawn there
    assert plot.x_axis.to_pixel(0) == x0 and plot.x_axis.to_pixel(2_000_000) == x0 + w
    assert plot.y_axis.to_pixel(29.0) == y0 + h and plot.y_axis.to_pixel(33.0) == y0
    assert (plot.image[y0 + h // 2, x0] == 0).all() and (plot.image[y0, x0 + w // 2] == 0).all()
    # read the circles back from the pixels: 1 red, 3 blue, centred on the data positions
    (red,) = _blobs(plot.image, MEASURED_COLOUR, plot.axes_rect)
    blue = _blobs(plot.image, PUBLISHED_COLOUR, plot.axes_rect)
    found = {'A2N': red, 'SRCNN': blue[0], 'IMDN': blue[1], 'CARN': blue[2]}
    for point in URBAN100_X2:
        x = x0 + point.params / 2_000_000 * w
        y = y0 + h - (point.value - 29.0) / 4.0 * h
        assert found[point.label] == pytest.approx((x, y), abs=0.6)  # drawn at whole pixels
    # independently of the axes' limits: pixel distances are proportional to data distances
    a2n, srcnn, carn = found['A2N'], found['SRCNN'], found['CARN']
    assert (a2n[0] - srcnn[0]) / (carn[0] - srcnn[0]) == pytest.approx(
        (1_036_443 - 57_000) / (1_592_000 - 57_000), abs=0.005
    )
    assert (a2n[1] - srcnn[1]) / (carn[1] - srcnn[1]) == pytest.approx(
        (32.43 - 29.50) / (31.92 - 29.50), abs=0.005
    )


def test_labels_beside_their_points_inside_the_axes_and_apart():
    crowded = [PlotPoint(f'M{i}', 1_000_000 + i * 5_000, 30.0 + 0.01 * i) for i in range(4)]
    crowded.append(PlotPoint('A method with a long name', 2_000_000, 31.0))  # at the right
    plot = tradeoff_plot(crowded, 'PSNR (dB)')
    x0, y0, w, h = plot.axes_rect
    rects = [p.label_rect for p in plot.points]
    for i, (x, y, rw, rh) in enumerate(rects):
        assert x0 <= x and x + rw <= x0 + w and y0 <= y and y + rh <= y0 + h
        for ox, oy, ow, oh in rects[i + 1 :]:
            assert x >= ox + ow or ox >= x + rw or y >= oy + oh or oy >= y + rh
    edge = plot.points[-1]
    assert edge.label_rect[0] + edge.label_rect[2] < edge.centre[0]  # no room right: left
    alone = tradeoff_plot(URBAN100_X2, 'PSNR (dB)').points[0]
    assert alone.label_rect[0] > alone.centre[0]  # room: right of the point, centred on it
    assert alone.label_rect[1] < alone.centre[1] < alone.label_rect[1] + alone.label_rect[3]
    # text is drawn inside each label rectangle
    x, y, rw, rh = plot.points[0].label_rect
    assert (plot.image[y : y + rh, x : x + rw] < 128).any()


def test_svg_has_the_image_coordinates_and_the_text_as_given():
    points = URBAN100_X2[:2] + [PlotPoint('A²N-M', 831_643, 32.34)]
    plot = tradeoff_plot(points, 'PSNR (dB)', 'Urban100 ×2')
    root = ET.fromstring(plot.svg())
    height, width = plot.image.shape[:2]
    assert (root.get('width'), root.get('height')) == (str(width), str(height))
    circles = {
        c.find(f'{SVG}title').text: c
        for c in root.iter(f'{SVG}circle')
        if c.find(f'{SVG}title') is not None
    }
    assert list(circles) == ['A2N', 'IMDN', 'A²N-M']
    for point in plot.points:
        circle = circles[point.label]
        cx, cy = float(circle.get('cx')), float(circle.get('cy'))
        assert (cx, cy) == pytest.approx(point.centre, abs=0.005)
        assert float(circle.get('data-params')) == pytest.approx(point.params, rel=1e-5)
        assert float(circle.get('data-value')) == pytest.approx(point.value, rel=1e-5)
    red = 'rgb({},{},{})'.format(*MEASURED_COLOUR)
    assert [c.get('fill') == red for c in circles.values()] == [True, False, True]
    texts = [t.text for t in root.iter(f'{SVG}text')]
    for expected in ('Urban100 ×2', 'A²N-M', 'Parameters (K)', 'PSNR (dB)', '800', 'measured'):
        assert expected in texts
    # the image writes what its font has: the same picture, ASCII text
    assert _blobs(plot.image, MEASURED_COLOUR, plot.axes_rect)[0] == pytest.approx(
        min(p.centre for p in plot.points if p.measured), abs=0.6
    )


def test_log_axis_in_millions_decades_evenly_spaced():
    points = [PlotPoint('DAN', 11_460_745, 30.0), PlotPoint('Small', 150_000, 28.0)]
    plot = tradeoff_plot(points, 'PSNR (dB)', unit='M', log_x=True)
    axis = plot.x_axis
    assert axis.log and (axis.lo, axis.hi) == (1e5, 1e8)
    assert axis.ticks[:3] == [1e5, 2e5, 5e5] and axis.texts[:4] == ['0.1', '0.2', '0.5', '1']
    decade = axis.to_pixel(1e6) - axis.to_pixel(1e5)
    assert axis.to_pixel(1e7) - axis.to_pixel(1e6) == pytest.approx(decade)
    assert plot.x_title == 'Parameters (M), log scale'


@pytest.mark.parametrize(
    'points, kwargs, says',
    [
        ([], {}, 'no points'),
        ([PlotPoint('A', 0, 30.0)], {'log_x': True}, 'no log axis'),
        ([PlotPoint('A', 10, float('nan'))], {}, 'bad point'),
        ([PlotPoint('A', -1, 30.0)], {}, 'bad point'),
        ([PlotPoint('A', 10, 30.0)], {'unit': 'G'}, 'unit must be K or M'),
    ],
)
def test_bad_plots_refused(points, kwargs, says):
    with pytest.raises(ValueError, match=says):
        tradeoff_plot(points, 'PSNR (dB)', **kwargs)
