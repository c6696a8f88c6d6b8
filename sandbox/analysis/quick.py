"""The quick looks that are not verdicts: the live progress line's slope and the pytest
marker's per-test limit. numpy only: a running harness carries no statistics library until
its run is judged (importing scipy.stats in the live loop stalled it 1.5-3.5 s and added
100 MB)."""

from __future__ import annotations

from collections import deque

import numpy as np


def robust_slope(t: np.ndarray, y: np.ndarray) -> float:
    """Theil-Sen slope of ``y`` over ``t`` (units of y per second; NaN without two distinct
    times): the median of the slopes between every pair of points, as
    ``scipy.stats.theilslopes`` (tests/test_quick.py compares them). The quick look of the
    progress line and the pytest plugin's per-test limit, not a verdict."""
    t, y = np.asarray(t, float), np.asarray(y, float)
    first, second = np.triu_indices(len(t), 1)
    dt = t[second] - t[first]
    pairs = dt != 0
    if not pairs.any():
        return float("nan")
    return float(np.median((y[second] - y[first])[pairs] / dt[pairs]))


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
