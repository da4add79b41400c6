"""Temporal windows of a clip: which frames feed the model for one target.

A sliding-window video SR model restores frame ``c`` of a clip of ``n``
frames from ``num_frame`` (odd) frames centred on it, ``interval`` frames
apart: ``c + (k - num_frame // 2) * interval`` for ``k = 0 .. num_frame-1``.
Near the ends of the clip some of these positions fall outside ``[0, n)``;
the *padding* (border policy) maps them back inside:

* ``'reflection'`` (default): mirror at the first and last frame without
  repeating them, ``-1 -> 1``, ``n -> n - 2`` (BasicSR's ``reflection``);
  positions further out keep bouncing between the ends, so any window size
  is valid. Example ``c=0, num_frame=5``: ``[2, 1, 0, 1, 2]``.
* ``'replicate'``: clamp to the first / last frame: ``[0, 0, 0, 1, 2]``.
* ``'reflection_circle'`` and ``'circle'``: the two extra modes of
  BasicSR's / MMagic's video test datasets, kept so that published EDVR
  numbers can be reproduced: ``[4, 3, 0, 1, 2]`` and ``[3, 4, 0, 1, 2]``
  for ``c=0, num_frame=5``. They are defined for ``interval = 1`` only and
  need a window that fits in the clip.
"""

from typing import List

from basicattn.utils.bounds import is_int, is_positive_int

__all__ = ['PADDING_MODES', 'check_num_frame', 'frame_window']

#: Border policies accepted by :func:`frame_window` (first is the default).
PADDING_MODES = ('reflection', 'replicate', 'reflection_circle', 'circle')


def check_num_frame(num_frame: int, where: str = 'num_frame') -> int:
    """Check that a window size is an odd positive int.

    Args:
        num_frame (int): The window size.
        where (str): How the caller names the option in the error.

    Returns:
        int: ``num_frame``.

    Raises:
        ValueError: Not an int, not positive or even.
    """
    if not is_positive_int(num_frame) or num_frame % 2 == 0:
        raise ValueError(
            f'{where} must be an odd positive integer (the '
            f'target frame is the centre of the window), got '
            f'{num_frame!r}'
        )
    return num_frame


def _mirror(i: int, n: int) -> int:
    if n == 1:
        return 0
    period = 2 * (n - 1)
    i %= period
    return i if i < n else period - i


def frame_window(
    center: int,
    num_frames_in_clip: int,
    num_frame: int,
    interval: int = 1,
    padding: str = 'reflection',
) -> List[int]:
    """Frame indices of the window centred on ``center``.

    Args:
        center (int): Index of the target frame, in ``[0, n)``.
        num_frames_in_clip (int): ``n``, the number of frames of the clip.
        num_frame (int): Window size, odd.
        interval (int): Distance between neighbouring window frames.
            Defaults to 1.
        padding (str): Border policy, one of :data:`PADDING_MODES`.
            Defaults to ``'reflection'``.

    Returns:
        list[int]: ``num_frame`` indices in ``[0, n)``; the middle one is
        ``center``.

    Raises:
        ValueError: An invalid argument, or a ``'reflection_circle'`` /
            ``'circle'`` window that does not fit in the clip.
    """
    n = num_frames_in_clip
    check_num_frame(num_frame)
    if not is_positive_int(n):
        raise ValueError(f'num_frames_in_clip must be a positive integer, got {n!r}')
    if not is_int(center) or not 0 <= center < n:
        raise ValueError(f'center {center!r} is outside the clip of {n} frames')
    if not is_positive_int(interval):
        raise ValueError(f'interval must be a positive integer, got {interval!r}')
    if padding not in PADDING_MODES:
        raise ValueError(
            f'padding {padding!r} is not supported; choose one of {", ".join(PADDING_MODES)}'
        )
    half = num_frame // 2
    raw = [center + (k - half) * interval for k in range(num_frame)]
    if padding == 'reflection':
        return [_mirror(i, n) for i in raw]
    if padding == 'replicate':
        return [min(max(i, 0), n - 1) for i in raw]
    if interval != 1:
        raise ValueError(
            f'padding {padding!r} is defined for interval 1 only, got interval {interval}'
        )
    out = []
    last = n - 1
    for i in raw:
        if 0 <= i <= last:
            j = i
        elif padding == 'reflection_circle':
            j = center + half - i if i < 0 else center - half - (i - last)
        else:  # circle
            j = num_frame + i if i < 0 else i - num_frame
        if not 0 <= j <= last:
            raise ValueError(
                f'padding {padding!r} cannot fill a window of {num_frame} '
                f'frames around frame {center} of a clip of {n} frames; use '
                "'reflection' or 'replicate'"
            )
        out.append(j)
    return out
