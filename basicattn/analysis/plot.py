"""Plots and map colourings for the analysis figures, drawn with OpenCV and numpy.

matplotlib is not a dependency; the figures reuse the panel helpers of
:mod:`basicattn.visualization.image_panels` and the label strips of
:mod:`basicattn.visualization.comparison_figure`. One helper, :func:`column_plot`,
draws every plot of the analyses: per x position (a block) one or more
series of points, each with its mean marked.

* :func:`diverging` colours a signed map as the A2N paper's Fig. 2 (white at
  zero, red positive, blue negative, symmetric scale);
* :func:`heat` colours a non-negative map (brighter = higher);
* :func:`overlay` draws a heat map over an RGB frame.
"""

from typing import Optional, Sequence

import numpy as np

from basicattn.visualization.comparison_figure import label_strip
from basicattn.visualization.image_panels import side_by_side, upsample_nearest

__all__ = ['SERIES_COLOURS', 'diverging', 'heat', 'overlay', 'labelled', 'grid', 'column_plot']

#: RGB colours of the series of a plot (blue, orange, green, red).
SERIES_COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40))

_FONT_SCALE = 0.4


def diverging(values: np.ndarray) -> np.ndarray:
    """A signed ``HW`` map as RGB uint8: white at 0, red > 0, blue < 0, scaled by max |v|."""
    values = np.asarray(values, dtype=np.float64)
    peak = np.abs(values).max()
    t = values / peak if peak > 0 else np.zeros_like(values)
    pos, neg = np.clip(t, 0, 1), np.clip(-t, 0, 1)
    rgb = np.stack([1 - neg, 1 - pos - neg, 1 - pos], axis=-1)  # red: (1, 1-p, 1-p)
    return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def heat(values: np.ndarray, low: Optional[float] = None, high: Optional[float] = None):
    """A ``HW`` map as RGB uint8 (OpenCV's inferno colour map), ``low`` .. ``high`` (min/max)."""
    import cv2

    values = np.asarray(values, dtype=np.float64)
    low = values.min() if low is None else low
    high = values.max() if high is None else high
    t = (values - low) / (high - low) if high > low else np.zeros_like(values)
    grey = np.round(np.clip(t, 0, 1) * 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(grey, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


def overlay(frame: np.ndarray, values: np.ndarray, high: Optional[float] = None, alpha=0.6):
    """``values`` (``hw``) as a heat map over the RGB ``frame``, resized to the frame."""
    coloured = upsample_nearest(heat(values, 0.0, high), frame.shape[:2])
    mixed = (1 - alpha) * frame.astype(np.float64) + alpha * coloured
    return np.round(mixed).astype(np.uint8)


def labelled(panel: np.ndarray, *lines: str, size: Optional[int] = None) -> np.ndarray:
    """``panel`` (resized to ``size`` px on its longer side) over a text strip."""
    if size is not None:
        h, w = panel.shape[:2]
        factor = size / max(h, w)
        target = (max(1, round(h * factor)), max(1, round(w * factor)))
        if factor >= 1:
            panel = upsample_nearest(panel, target)
        else:
            import cv2

            panel = cv2.resize(panel, target[::-1], interpolation=cv2.INTER_AREA)
    panel = panel if panel.ndim == 3 else np.repeat(panel[..., None], 3, axis=2)
    strip = label_strip(list(lines), panel.shape[1])
    return np.concatenate([panel, strip], axis=0)


def grid(rows: Sequence[Sequence[np.ndarray]], gap: int = 4) -> np.ndarray:
    """Rows of panels joined side by side, the rows stacked with ``gap`` white pixels."""
    joined = [side_by_side(row, gap) for row in rows]
    width = max(r.shape[1] for r in joined)
    padded = [
        np.pad(r, ((0, gap), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in joined
    ]
    return np.concatenate(padded, axis=0)[:-gap] if gap else np.concatenate(padded, axis=0)


def _nice_ticks(low: float, high: float, count: int = 5) -> np.ndarray:
    span = high - low
    raw = span / max(count - 1, 1)
    magnitude = 10 ** np.floor(np.log10(raw))
    step = min(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return np.arange(np.ceil(low / step) * step, high + step * 1e-9, step)


def column_plot(
    columns: Sequence[Sequence[Sequence[float]]],
    x_labels: Sequence[str],
    series: Sequence[str],
    title: str,
    y_label: str,
    zero_line: bool = False,
    width: int = 720,
    height: int = 360,
) -> np.ndarray:
    """Points per column and series, each series' mean drawn as a short bar.

    Args:
        columns: ``columns[x][s]`` the values of series ``s`` at column
            ``x`` (one value per image, or a single value).
        x_labels: One label per column.
        series: Series names (legend), at most four.
        title, y_label: Texts.
        zero_line: Draw y = 0.

    Returns:
        np.ndarray: RGB uint8 ``(height, width, 3)``.
    """
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    img = np.full((height, width, 3), 255, dtype=np.uint8)
    left, right, top, bottom = 60, 12, 48, 40
    values = [v for col in columns for s in col for v in s if np.isfinite(v)]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if zero_line:
        low, high = min(low, 0.0), max(high, 0.0)
    pad = (high - low) * 0.08 or 0.5
    low, high = low - pad, high + pad
    plot_w, plot_h = width - left - right, height - top - bottom

    def ypix(v):
        return int(round(top + (high - v) / (high - low) * plot_h))

    black, grey = (0, 0, 0), (200, 200, 200)
    for tick in _nice_ticks(low, high):
        y = ypix(tick)
        cv2.line(img, (left, y), (width - right, y), grey, 1)
        cv2.putText(img, f'{tick:.3g}', (4, y + 4), font, _FONT_SCALE, black, 1, cv2.LINE_AA)
    if zero_line:
        cv2.line(img, (left, ypix(0.0)), (width - right, ypix(0.0)), black, 1)
    cv2.rectangle(img, (left, top), (width - right, top + plot_h), black, 1)
    n = len(columns)
    slot = plot_w / max(n, 1)
    label_every = max(1, int(np.ceil(n * 22 / plot_w)))
    for x, col in enumerate(columns):
        centre = left + slot * (x + 0.5)
        for s, vals in enumerate(col):
            offset = (s - (len(col) - 1) / 2) * min(slot / (len(col) + 1), 10)
            cx = int(round(centre + offset))
            colour = SERIES_COLOURS[s % len(SERIES_COLOURS)][::-1]  # OpenCV draws BGR
            finite = [v for v in vals if np.isfinite(v)]
            for v in finite:
                cv2.circle(img, (cx, ypix(v)), 2, colour, -1, cv2.LINE_AA)
            if finite:
                y = ypix(float(np.mean(finite)))
                cv2.line(img, (cx - 5, y), (cx + 5, y), colour, 2)
        if x % label_every == 0:
            text = x_labels[x]
            (tw, _), _ = cv2.getTextSize(text, font, _FONT_SCALE, 1)
            org = (int(round(centre - tw / 2)), top + plot_h + 16)
            cv2.putText(img, text, org, font, _FONT_SCALE, black, 1, cv2.LINE_AA)
    cv2.putText(img, title, (left, 18), font, 0.5, black, 1, cv2.LINE_AA)
    cv2.putText(img, y_label, (4, height - 8), font, _FONT_SCALE, black, 1, cv2.LINE_AA)
    lx = width - right - 10
    for s, name in reversed(list(enumerate(series))):
        (tw, _), _ = cv2.getTextSize(name, font, _FONT_SCALE, 1)
        lx -= tw + 24
        colour = SERIES_COLOURS[s % len(SERIES_COLOURS)][::-1]
        cv2.circle(img, (lx + 6, 34), 4, colour, -1, cv2.LINE_AA)
        cv2.putText(img, name, (lx + 14, 38), font, _FONT_SCALE, black, 1, cv2.LINE_AA)
    cv2.putText(
        img,
        'points: images, bars: means',
        (left, height - 8),
        font,
        _FONT_SCALE,
        (90, 90, 90),
        1,
        cv2.LINE_AA,
    )
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
