"""The quick looks that are not verdicts: the live progress line's slope and the pytest
marker's per-test limit. Light to import: scipy loads with the first slope, so a run
without a progress line carries no statistics library until it is judged."""

from __future__ import annotations

from collections import deque

import numpy as np


def robust_slope(t: np.ndarray, y: np.ndarray) -> float:
    """Theil-Sen slope of ``y`` over ``t`` (units of y per second): the quick look of the
    progress line and the pytest plugin's per-test limit, not a verdict."""
    from scipy import stats

    return float(stats.theilslopes(y, t)[0])


class RecentSlope:
    """:func:`robust_slope` of the last ``window_s`` seconds of a series fed one point at a
    time (the live progress line's quick look); None until it holds ``min_points``."""

    def __init__(self, window_s: float = 60.0, min_points: int = 8) -> None:
        self.window_s = window_s
        self.min_points = min_points
        self._points: deque[tuple[float, float]] = deque()

    def add(self, t: float, y: float | None) -> float | None:
        """Add ``(t, y)`` (none when ``y`` is None) and return the slope now."""
        if y is not None:
            self._points.append((t, y))
        while self._points and self._points[0][0] < t - self.window_s:
            self._points.popleft()
        if len(self._points) < self.min_points:
            return None
        ts, ys = zip(*self._points, strict=True)
        return robust_slope(np.asarray(ts), np.asarray(ys))
