"""Alerts on the working set: a threshold crossing, and growth over a sliding window.

Each alert is logged once per crossing (logger ``sandbox.sampler``) and kept as a dict for the
report. A level re-arms when the value falls back under it.
"""

from __future__ import annotations

import logging
from collections import deque

from sandbox.analysis.budget import CRITICAL_MB_S, DEFAULT_BUDGET_MB_S
from sandbox.model.alert import Alert

log = logging.getLogger("sandbox.sampler")

MB = 1024 * 1024
WARNING_RATE_MB_S = DEFAULT_BUDGET_MB_S  # the seed's table, defined once (analysis.budget)
CRITICAL_RATE_MB_S = CRITICAL_MB_S
#: The growth rate's sliding window, and the seconds from the start before it is watched.
GROWTH_WINDOW_S = 30.0
GROWTH_WARMUP_S = 30.0


class GrowthWindow:
    """Least-squares slope (MB/s) over the last ``window_s`` seconds, O(1) per point."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._points: deque[tuple[float, float]] = deque()
        self._t0: float | None = None
        self._n = 0
        self._st = self._sy = self._stt = self._sty = 0.0

    def _add(self, t: float, y: float, sign: int) -> None:
        self._n += sign
        self._st += sign * t
        self._sy += sign * y
        self._stt += sign * t * t
        self._sty += sign * t * y

    def add(self, t: float, y_mb: float) -> float | None:
        """Add a point; return the slope once the window is full (else None)."""
        if self._t0 is None:
            self._t0 = t
        t -= self._t0
        self._points.append((t, y_mb))
        self._add(t, y_mb, +1)
        while self._points and self._points[0][0] < t - self.window_s:
            old_t, old_y = self._points.popleft()
            self._add(old_t, old_y, -1)
        if self._n < 3 or t - self._points[0][0] < 0.9 * self.window_s:
            return None
        denom = self._n * self._stt - self._st * self._st
        if denom <= 0:
            return None
        return (self._n * self._sty - self._st * self._sy) / denom


class AlertMonitor:
    """Feeds on (t, wall, working set bytes); returns the alerts each sample raised."""

    def __init__(self, threshold_mb: float, *, window_s: float = GROWTH_WINDOW_S,
                 warmup_s: float = GROWTH_WARMUP_S,
                 warning_rate: float = WARNING_RATE_MB_S,
                 critical_rate: float = CRITICAL_RATE_MB_S) -> None:
        self.threshold_mb = threshold_mb
        self.warmup_s = warmup_s
        self.warning_rate = warning_rate
        self.critical_rate = critical_rate
        self.window = GrowthWindow(window_s)
        self._above = False
        self._rate_level = 0  # 0 none, 1 warning, 2 critical

    def update(self, t: float, wall: float, working_set: int | None) -> list[Alert]:
        if working_set is None:
            return []
        value_mb = working_set / MB
        raised: list[Alert] = []
        above = value_mb >= self.threshold_mb
        if above and not self._above:
            raised.append(_alert(
                t, wall, "threshold", "warning", value_mb, self.threshold_mb, "MB",
                f"working set {value_mb:.1f} MB crossed the alert threshold "
                f"{self.threshold_mb:.1f} MB at t={t:.1f} s"))
        self._above = above
        if t >= self.warmup_s:
            rate = self.window.add(t, value_mb)
            if rate is not None:
                level = 2 if rate >= self.critical_rate else 1 if rate >= self.warning_rate else 0
                if level > self._rate_level:
                    severity = "critical" if level == 2 else "warning"
                    limit = self.critical_rate if level == 2 else self.warning_rate
                    raised.append(_alert(
                        t, wall, "growth_rate", severity, rate, limit, "MB/s",
                        f"working set growing {rate:.3f} MB/s over the last "
                        f"{self.window.window_s:g} s ({severity}: >= {limit} MB/s) "
                        f"at t={t:.1f} s"))
                self._rate_level = level
        for alert in raised:
            # A 30 s growth rate is a live hint that a GC sawtooth trips on clean Chromium
            # runs: it goes to the run's log file only; the verdict decides (analysis.budget).
            level = logging.INFO if alert.kind == "growth_rate" else logging.WARNING
            log.log(level, "%s", alert.message)
        return raised


def _alert(t: float, wall: float, kind: str, severity: str, value: float, limit: float,
           unit: str, message: str) -> Alert:
    return Alert(t=round(t, 3), wall=round(wall, 3), kind=kind, severity=severity,
                 value=round(value, 4), limit=limit, unit=unit, message=message)
