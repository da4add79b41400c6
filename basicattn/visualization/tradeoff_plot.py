"""Parameters-vs-quality scatter plots, as SR papers draw them (numpy + OpenCV, and SVG).

A2N's Fig. 1 (Urban100 x2 PSNR against the parameter count of lightweight
networks) and DAN's Fig. 3 (Manga109 x3 BD PSNR against parameters) put each
method at (parameters, PSNR) and write its name beside it. :func:`tradeoff_plot`
lays such a figure out once and renders it as an RGB image
(:attr:`TradeoffPlot.image`) and as SVG text (:meth:`TradeoffPlot.svg`) with
the same coordinates:

* the x axis counts parameters in thousands (``K``) or millions (``M``):
  ``unit=None`` takes K when the largest count is below 2M (lightweight
  models, as A2N's figure) and M otherwise (as DAN's); linear by default,
  ``log_x=True`` for counts that span decades (every count must then be
  positive);
* the y axis is the metric (PSNR in dB ...); both axes get "nice" ticks
  (1, 2, 2.5 or 5 times a power of ten; 1, 2, 5 per decade on a log axis)
  and limits on ticks that leave some room around the points;
* a point is a filled circle, red for a measured run (a ``metrics.json``),
  blue for a published value (a paper's table), as A2N's figure draws the
  other methods; a legend says which when both kinds are present. Each
  name is written beside its point, on the first side (right, left, above,
  below) where it stays inside the axes and clear of the other names and
  points.

OpenCV's Hershey font only has ASCII, so the image writes ``x`` for ``×``
and drops other non-ASCII marks (``A²N`` reads ``A2N``); the SVG keeps the
text as given. :class:`TradeoffPlot` returns where everything was drawn,
so tests can check positions without reading pixels back.
"""

import math
import unicodedata
from dataclasses import dataclass, field
from html import escape
from typing import List, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    'MEASURED_COLOUR',
    'PUBLISHED_COLOUR',
    'Axis',
    'PlotPoint',
    'TradeoffPlot',
    'nice_ticks',
    'parameter_unit',
    'tradeoff_plot',
]

Rect = Tuple[int, int, int, int]

#: RGB of a measured run's point.
MEASURED_COLOUR = (214, 39, 40)
#: RGB of a published value's point.
PUBLISHED_COLOUR = (31, 119, 180)
_GRID = (225, 225, 225)
_INK = (0, 0, 0)
_WHITE = (255, 255, 255)
_RADIUS = 5
_FONT_SCALE = 0.45
_TITLE_SCALE = 0.55
_MARGINS = (78, 44, 24, 58)  # left, top, right, bottom
_UNITS = {'K': 1e3, 'M': 1e6}


@dataclass
class PlotPoint:
    """One method in the plot.

    Attributes:
        label: Its name, written beside the point.
        params: Its parameter count.
        value: Its metric value (y).
        measured: True for a run's ``metrics.json``, False for a published value.
        centre: ``(x, y)`` of the point in the image, in pixels (floats; the
            image draws the circle at the rounded position).
        label_rect: ``(x, y, w, h)`` of its name in the image.
    """

    label: str
    params: float
    value: float
    measured: bool = True
    centre: Tuple[float, float] = (0.0, 0.0)
    label_rect: Rect = (0, 0, 0, 0)


@dataclass
class Axis:
    """An axis: data limits, ticks and their text, and where it lies in pixels.

    Attributes:
        lo, hi: The data values at the two ends.
        ticks: Tick values (data units), each with its text in ``texts``.
        log: Logarithmic (base 10).
        start, end: The pixel positions of ``lo`` and ``hi``.
    """

    lo: float
    hi: float
    ticks: List[float]
    texts: List[str]
    log: bool = False
    start: float = 0.0
    end: float = 1.0

    def to_pixel(self, value: float) -> float:
        """The pixel position of ``value``."""
        if self.log:
            t = (math.log10(value) - math.log10(self.lo)) / (
                math.log10(self.hi) - math.log10(self.lo)
            )
        else:
            t = (value - self.lo) / (self.hi - self.lo)
        return self.start + t * (self.end - self.start)


@dataclass
class TradeoffPlot:
    """A laid-out parameters-vs-metric plot.

    Attributes:
        image: uint8 ``(H, W, 3)`` RGB.
        axes_rect: ``(x, y, w, h)`` of the axes box in pixels.
        x_axis, y_axis: The axes (``x_axis`` in parameters, not in the unit).
        points: The points, with their pixel positions.
        title, x_title, y_title: The texts (as given; the image writes ASCII).
        unit: ``'K'`` or ``'M'``.
    """

    image: np.ndarray
    axes_rect: Rect
    x_axis: Axis
    y_axis: Axis
    points: List[PlotPoint] = field(default_factory=list)
    title: str = ''
    x_title: str = ''
    y_title: str = ''
    unit: str = 'K'

    def svg(self) -> str:
        """The same plot as an SVG document (text; the coordinates of :attr:`image`)."""
        height, width = self.image.shape[:2]
        x0, y0, w, h = self.axes_rect
        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
            f'<rect width="{width}" height="{height}" fill="white"/>',
        ]
        for value, text in zip(self.x_axis.ticks, self.x_axis.texts):
            x = self.x_axis.to_pixel(value)
            out.append(_svg_line(x, y0, x, y0 + h, _GRID))
            out.append(_svg_line(x, y0 + h, x, y0 + h + 5, _INK))
            out.append(_svg_text(x, y0 + h + 19, text, 'middle'))
        for value, text in zip(self.y_axis.ticks, self.y_axis.texts):
            y = self.y_axis.to_pixel(value)
            out.append(_svg_line(x0, y, x0 + w, y, _GRID))
            out.append(_svg_line(x0 - 5, y, x0, y, _INK))
            out.append(_svg_text(x0 - 8, y + 4, text, 'end'))
        out.append(f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="black"/>')
        out.append(_svg_text(width / 2, 24, self.title, 'middle', 14))
        out.append(_svg_text(x0 + w / 2, height - 12, self.x_title, 'middle'))
        cy = y0 + h / 2
        out.append(
            f'<text x="18" y="{cy:.2f}" text-anchor="middle" '
            f'transform="rotate(-90 18 {cy:.2f})">{escape(self.y_title)}</text>'
        )
        for point in self.points:
            colour = _rgb(MEASURED_COLOUR if point.measured else PUBLISHED_COLOUR)
            cx, cy = point.centre
            out.append(
                f'<circle cx="{cx:.2f}" cy="{cy:.2f}" r="{_RADIUS}" fill="{colour}" '
                f'data-params="{point.params:g}" data-value="{point.value:g}">'
                f'<title>{escape(point.label)}</title></circle>'
            )
            lx, ly, _, lh = point.label_rect
            out.append(_svg_text(lx, ly + lh - 2, point.label, 'start'))
        for text, colour, (x, y) in _legend_entries(self):
            out.append(f'<circle cx="{x + 4}" cy="{y - 4}" r="4" fill="{_rgb(colour)}"/>')
            out.append(_svg_text(x + 12, y, text, 'start'))
        out.append('</svg>')
        return '\n'.join(out) + '\n'


def _rgb(colour: Sequence[int]) -> str:
    return 'rgb({},{},{})'.format(*colour)


def _svg_line(x1, y1, x2, y2, colour) -> str:
    return (
        f'<line x1="{x1:.2f}" y1="{y1:.2f}" x2="{x2:.2f}" y2="{y2:.2f}" stroke="{_rgb(colour)}"/>'
    )


def _svg_text(x, y, text, anchor, size=None) -> str:
    font = f' font-size="{size}"' if size else ''
    return f'<text x="{x:.2f}" y="{y:.2f}" text-anchor="{anchor}"{font}>{escape(text)}</text>'


def _ascii(text: str) -> str:
    """``text`` in the characters OpenCV's Hershey font has (``×`` -> ``x``)."""
    text = text.replace('×', 'x').replace('↓', '')
    text = unicodedata.normalize('NFKD', text)
    return text.encode('ascii', 'ignore').decode('ascii')


def parameter_unit(counts: Sequence[float]) -> str:
    """``'K'`` when the largest count is below 2M, else ``'M'``."""
    return 'K' if max(counts) < 2e6 else 'M'


def _nice_step(span: float, count: int) -> float:
    raw = span / max(count, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= factor * power * (1 + 1e-9):
            return factor * power
    return 10.0 * power


def _decimals(step: float) -> int:
    """Decimals that show every multiple of ``step`` exactly (0.25 -> 2, 5 -> 0)."""
    for decimals in range(0, 8):
        if abs(round(step * 10**decimals) - step * 10**decimals) < 1e-6:
            return decimals
    return 8


def nice_ticks(
    values: Sequence[float], count: int = 5, floor: Optional[float] = None
) -> Tuple[float, float, List[float]]:
    """``(lo, hi, ticks)`` of a linear axis showing ``values`` with room around them.

    The limits are multiples of a step of 1, 2, 2.5 or 5 times a power of ten,
    chosen for about ``count`` intervals over the values padded by 8% of their
    range on each side; ``floor`` (e.g. 0 for parameter counts) is the lowest
    limit allowed.
    """
    lo, hi = min(values), max(values)
    span = hi - lo
    if span <= 0:
        span = abs(hi) * 0.1 or 1.0
    lo, hi = lo - 0.08 * span, hi + 0.08 * span
    if floor is not None:
        lo = max(lo, floor)
    step = _nice_step(hi - lo, count)
    first = math.floor(lo / step + 1e-9) * step
    last = math.ceil(hi / step - 1e-9) * step
    n = int(round((last - first) / step))
    ticks = [round(first + i * step, 12) for i in range(n + 1)]
    return ticks[0], ticks[-1], ticks


def _log_ticks(values: Sequence[float]) -> Tuple[float, float, List[float]]:
    lo = 10.0 ** math.floor(math.log10(min(values) / 1.2))
    hi = 10.0 ** math.ceil(math.log10(max(values) * 1.2))
    decades = range(int(round(math.log10(lo))), int(round(math.log10(hi))))
    factors = (1, 2, 5) if len(decades) <= 3 else (1,)
    ticks = [f * 10.0**d for d in decades for f in factors] + [hi]
    return lo, hi, ticks


def _x_axis(counts: Sequence[float], unit: str, log: bool) -> Axis:
    scale = _UNITS[unit]
    if log:
        lo, hi, ticks = _log_ticks(counts)
        texts = [f'{t / scale:g}' for t in ticks]
        return Axis(lo, hi, ticks, texts, log=True)
    lo, hi, ticks = nice_ticks([c / scale for c in counts], floor=0.0)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    texts = [f'{t:.{_decimals(step)}f}' for t in ticks]
    return Axis(lo * scale, hi * scale, [t * scale for t in ticks], texts)


def _y_axis(values: Sequence[float]) -> Axis:
    lo, hi, ticks = nice_ticks(values)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    return Axis(lo, hi, ticks, [f'{t:.{_decimals(step)}f}' for t in ticks])


def _text_size(text: str, scale: float = _FONT_SCALE) -> Tuple[int, int]:
    import cv2

    (w, h), baseline = cv2.getTextSize(_ascii(text), cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    return w, h + baseline


def _put(img, text, x, y, scale=_FONT_SCALE, colour=_INK) -> None:
    """Write ``text`` with its baseline at ``y`` and its left end at ``x``."""
    import cv2

    org = (int(round(x)), int(round(y)))
    cv2.putText(img, _ascii(text), org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _inside(a: Rect, box: Rect) -> bool:
    return (
        a[0] >= box[0]
        and a[1] >= box[1]
        and a[0] + a[2] <= box[0] + box[2]
        and (a[1] + a[3] <= box[1] + box[3])
    )


def _place_labels(points: Sequence[PlotPoint], box: Rect) -> None:
    """Give each point a label rectangle clear of the others (first fitting side)."""
    taken = [
        (int(p.centre[0]) - _RADIUS, int(p.centre[1]) - _RADIUS, 2 * _RADIUS + 1, 2 * _RADIUS + 1)
        for p in points
    ]
    for point in points:
        w, h = _text_size(point.label)
        cx, cy = (int(round(c)) for c in point.centre)
        gap = _RADIUS + 3
        candidates = [
            (cx + gap, cy - h // 2),  # right
            (cx - gap - w, cy - h // 2),  # left
            (cx - w // 2, cy - gap - h),  # above
            (cx - w // 2, cy + gap),  # below
            (cx + gap, cy - gap - h),  # right, above
            (cx + gap, cy + gap),  # right, below
            (cx - gap - w, cy - gap - h),  # left, above
            (cx - gap - w, cy + gap),  # left, below
        ]
        rects = [(x, y, w, h) for x, y in candidates]
        fitting = [r for r in rects if _inside(r, box)] or rects
        clear = [r for r in fitting if not any(_overlaps(r, t) for t in taken)]
        point.label_rect = (clear or fitting)[0]
        taken.append(point.label_rect)


def _legend_entries(plot: TradeoffPlot):
    """``(text, colour, (x, baseline y))`` of the legend; empty unless both kinds are present."""
    kinds = {p.measured for p in plot.points}
    if len(kinds) < 2:
        return []
    x0, y0, w, _ = plot.axes_rect
    entries = [('measured', MEASURED_COLOUR), ('published', PUBLISHED_COLOUR)]
    widths = [_text_size(text)[0] + 24 for text, _ in entries]
    x = x0 + w - sum(widths)
    placed = []
    for (text, colour), width in zip(entries, widths):
        placed.append((text, colour, (x, y0 - 8)))
        x += width
    return placed


def tradeoff_plot(
    points: Sequence[PlotPoint],
    y_title: str,
    title: str = '',
    unit: Optional[str] = None,
    log_x: bool = False,
    size: Tuple[int, int] = (720, 480),
) -> TradeoffPlot:
    """Lay out and draw a parameters-vs-metric plot (see the module docstring).

    Args:
        points: The methods (their ``centre`` and ``label_rect`` are set).
        y_title: The y axis's title, e.g. ``'PSNR (dB)'``.
        title: The line above the plot (set, scale, metric).
        unit: ``'K'`` or ``'M'`` (None: :func:`parameter_unit`).
        log_x: Logarithmic parameter axis (every count must be positive).
        size: ``(width, height)`` of the image in pixels.

    Returns:
        TradeoffPlot: The image and where everything is.

    Raises:
        ValueError: No points, a non-finite value or count, a negative count,
            a count of 0 on a log axis, or an unknown unit.
    """
    import cv2

    if not points:
        raise ValueError('tradeoff_plot: no points')
    for p in points:
        if not (math.isfinite(p.params) and math.isfinite(p.value)) or p.params < 0:
            raise ValueError(f'tradeoff_plot: {p.label}: bad point ({p.params}, {p.value})')
        if log_x and p.params <= 0:
            raise ValueError(f'tradeoff_plot: {p.label} has {p.params:g} parameters: no log axis')
    counts = [p.params for p in points]
    unit = unit or parameter_unit(counts)
    if unit not in _UNITS:
        raise ValueError(f'tradeoff_plot: unit must be K or M, got {unit!r}')
    width, height = size
    left, top, right, bottom = _MARGINS
    box = (left, top, width - left - right, height - top - bottom)
    x_axis = _x_axis(counts, unit, log_x)
    y_axis = _y_axis([p.value for p in points])
    x_axis.start, x_axis.end = float(box[0]), float(box[0] + box[2])
    y_axis.start, y_axis.end = float(box[1] + box[3]), float(box[1])
    placed = [
        PlotPoint(
            p.label,
            p.params,
            p.value,
            p.measured,
            centre=(x_axis.to_pixel(p.params), y_axis.to_pixel(p.value)),
        )
        for p in points
    ]
    _place_labels(placed, box)
    x_title = f'Parameters ({unit})' + (', log scale' if log_x else '')
    plot = TradeoffPlot(
        image=np.full((height, width, 3), 255, np.uint8),
        axes_rect=box,
        x_axis=x_axis,
        y_axis=y_axis,
        points=placed,
        title=title,
        x_title=x_title,
        y_title=y_title,
        unit=unit,
    )
    _draw(plot, cv2)
    return plot


def _draw(plot: TradeoffPlot, cv2) -> None:
    img = plot.image
    height, width = img.shape[:2]
    x0, y0, w, h = plot.axes_rect
    for value, text in zip(plot.x_axis.ticks, plot.x_axis.texts):
        x = int(round(plot.x_axis.to_pixel(value)))
        cv2.line(img, (x, y0), (x, y0 + h), _GRID, 1)
        cv2.line(img, (x, y0 + h), (x, y0 + h + 5), _INK, 1)
        tw, _ = _text_size(text)
        _put(img, text, x - tw / 2, y0 + h + 19)
    for value, text in zip(plot.y_axis.ticks, plot.y_axis.texts):
        y = int(round(plot.y_axis.to_pixel(value)))
        cv2.line(img, (x0, y), (x0 + w, y), _GRID, 1)
        cv2.line(img, (x0 - 5, y), (x0, y), _INK, 1)
        tw, _ = _text_size(text)
        _put(img, text, x0 - 8 - tw, y + 4)
    cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), _INK, 1)
    tw, _ = _text_size(plot.title, _TITLE_SCALE)
    _put(img, plot.title, (width - tw) / 2, 24, _TITLE_SCALE)
    tw, _ = _text_size(plot.x_title)
    _put(img, plot.x_title, x0 + (w - tw) / 2, height - 12)
    _draw_y_title(img, plot.y_title, y0 + h / 2)
    for point in plot.points:
        colour = MEASURED_COLOUR if point.measured else PUBLISHED_COLOUR
        centre = tuple(int(round(c)) for c in point.centre)
        cv2.circle(img, centre, _RADIUS, colour, -1, cv2.LINE_AA)
        lx, ly, _, lh = point.label_rect
        _put(img, point.label, lx, ly + lh - 4)
    for text, colour, (x, y) in _legend_entries(plot):
        cv2.circle(img, (int(x) + 4, int(y) - 4), 4, colour, -1, cv2.LINE_AA)
        _put(img, text, x + 12, y)


def _draw_y_title(img: np.ndarray, text: str, centre_y: float) -> None:
    """The y title, written bottom to top, centred on ``centre_y``, near the left edge."""
    tw, th = _text_size(text)
    strip = np.full((th + 4, tw + 4, 3), 255, np.uint8)
    _put(strip, text, 2, th - 2)
    rotated = np.ascontiguousarray(np.rot90(strip))  # counter-clockwise: reads bottom to top
    rh, rw = rotated.shape[:2]
    y = int(round(centre_y - rh / 2))
    y = max(0, min(y, img.shape[0] - rh))
    rh = min(rh, img.shape[0] - y)
    img[y : y + rh, 8 : 8 + rw] = rotated[:rh]
