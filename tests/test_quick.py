"""The live quick look's Theil-Sen slope (numpy only) against scipy's."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sandbox.analysis.quick import RecentSlope, robust_slope


@pytest.mark.parametrize("seed", range(5))
def test_robust_slope_is_scipys_theil_sen(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 60, 200))
    t[10] = t[11]  # a repeated time: that pair has no slope
    y = 0.3 * t + rng.standard_t(2, len(t)) * 5
    if seed % 2:
        order = rng.permutation(len(t))
        t, y = t[order], y[order]
    assert robust_slope(t, y) == pytest.approx(stats.theilslopes(y, t)[0], rel=1e-12)


def test_no_slope_without_two_distinct_times() -> None:
    assert np.isnan(robust_slope(np.array([5.0, 5.0]), np.array([1.0, 2.0])))


def test_recent_slope_looks_at_its_window_only() -> None:
    recent = RecentSlope(window_s=10.0, min_points=3)
    assert recent.add(0.0, 100.0) is None
    for t in range(1, 30):  # flat at first, then 2 per second for the last 10 s
        slope = recent.add(float(t), 100.0 + max(0, t - 19) * 2.0)
    assert slope == pytest.approx(2.0)
