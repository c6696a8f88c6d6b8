"""The seed's rule, reported under its own name: OLS slope + Pearson r and its severity table.

Known to be wrong on warm-up, GC sawtooth and steps (docs/statistics.md); it never decides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

MB = 1024 * 1024


@dataclass
class LegacyTrend:
    """Seed keys ``memory_trend`` and ``memory_stats`` (MB, MB/s)."""

    series: str | None
    slope_mb_per_second: float
    correlation: float
    leak_severity: str
    initial_mb: float
    final_mb: float
    peak_mb: float
    average_mb: float


def seed_severity(slope: float, correlation: float) -> str:
    """The seed's severity table, verbatim."""
    if slope > 0.1 and correlation > 0.8:
        return "critical"
    if slope > 0.1 and correlation > 0.6:
        return "moderate"
    if slope > 0.1 and correlation > 0.4:
        return "minor"
    return "none"


def legacy_trend(t: np.ndarray, y_bytes: np.ndarray, series: str | None) -> LegacyTrend:
    """OLS slope (MB/s) and Pearson r over the whole run, plus initial/final/peak/average MB."""
    ok = np.isfinite(t) & np.isfinite(y_bytes)
    t, y = t[ok], y_bytes[ok] / MB
    if len(y) == 0:
        return LegacyTrend(series, 0.0, 0.0, "none", 0.0, 0.0, 0.0, 0.0)
    slope, r = 0.0, 0.0
    if len(y) >= 2 and np.ptp(t) > 0 and np.ptp(y) > 0:
        fit = stats.linregress(t, y)
        slope, r = float(fit.slope), float(fit.rvalue)
    return LegacyTrend(
        series=series,
        slope_mb_per_second=slope,
        correlation=r,
        leak_severity=seed_severity(slope, r),
        initial_mb=float(y[0]),
        final_mb=float(y[-1]),
        peak_mb=float(np.max(y)),
        average_mb=float(np.mean(y)),
    )
