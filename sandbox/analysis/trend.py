"""Robust trend test: smoothing, change points (ruptures), HAC slope test (statsmodels), Theil-Sen.

The method is described in docs/statistics.md ("change points + HAC"). One function,
:func:`trend_test`, labels a series ``none``, ``step``, ``decelerating``, ``leak`` or
``inconclusive`` and measures the growth rate with its uncertainty and detection limit.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import ruptures as rpt
from scipy import stats
from statsmodels.regression.linear_model import GLSAR, OLS

from sandbox.analysis.budget import DEFAULT_BUDGET_MB_S

LABELS = ("none", "step", "decelerating", "leak", "inconclusive")


@dataclass(frozen=True)
class TrendParams:
    """Decision rules of one trend test (rates are units per second)."""

    min_rate: float = 0.01  # growth below this is never called a leak
    inconclusive_rate: float = DEFAULT_BUDGET_MB_S  # detection limit above this -> inconclusive
    alpha: float = 0.01  # one-sided significance level of the HAC slope test
    min_samples: int = 20
    min_steady_s: float = 20.0
    resolution: float = 0.1  # smallest meaningful change (noise floor), in the series' unit
    penalty_factor: float = 9.0  # Pelt penalty = factor * sigma^2 * ln(n)
    limit_factor: float = 4.0  # detection limit = factor * HAC standard error
    late_alpha: float = 0.1  # growth must persist in the last half of the steady state


@dataclass
class TrendResult:
    """Outcome of :func:`trend_test`. Times are seconds of the run, rates units per second."""

    label: str
    reasons: list[str] = field(default_factory=list)
    slope: float | None = None  # Theil-Sen slope of the tested (steady) region
    slope_ci: tuple[float, float] | None = None  # Theil-Sen 95% CI (assumes independence)
    ols_slope: float | None = None  # OLS slope of the tested region
    slope_se: float | None = None  # autocorrelation-robust standard error (larger of HAC, GLSAR)
    p_value: float | None = None  # one-sided, H1: slope > 0
    detection_limit: float | None = None
    warmup_cut_s: float | None = None
    change_points_s: list[float] = field(default_factory=list)
    steps: list[dict[str, float]] = field(default_factory=list)  # upward level shifts
    test_start_s: float | None = None
    test_end_s: float | None = None
    n_samples: int = 0
    n_test_samples: int = 0
    noise_sd: float | None = None
    growth_total: float | None = None  # last minus first value of the smoothed series
    fit_line: list[tuple[float, float]] = field(default_factory=list)  # (t, y) ends of the fit



def smooth(t: np.ndarray, y: np.ndarray, window_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Median of ``y`` over consecutive time windows; returns (window median t, median y)."""
    t0 = t[0]
    n_bins = max(1, int(np.ceil((t[-1] - t0) / window_s + 1e-9)))
    edges = t0 + window_s * np.arange(n_bins + 1)
    edges[-1] = max(edges[-1], t[-1]) + 1e-9
    ym = stats.binned_statistic(t, y, statistic="median", bins=edges).statistic
    tm = stats.binned_statistic(t, t, statistic="median", bins=edges).statistic
    keep = np.isfinite(ym)
    return tm[keep], ym[keep]


def _noise_sd(tb: np.ndarray, yb: np.ndarray, resolution: float) -> float:
    """Robust noise level: normal-scaled MAD of Theil-Sen residuals and of first differences."""
    ts = stats.theilslopes(yb, tb)
    resid = yb - (ts.intercept + ts.slope * tb)
    mad_resid = stats.median_abs_deviation(resid, scale="normal")
    mad_diff = stats.median_abs_deviation(np.diff(yb), scale="normal") / np.sqrt(2)
    return float(max(min(mad_resid, mad_diff) if mad_diff > 0 else mad_resid, resolution))


def _change_points(tb: np.ndarray, yb: np.ndarray, sigma: float, factor: float) -> list[int]:
    """Indices (into the smoothed series) where a new linear segment starts."""
    n = len(yb)
    if n < 6:
        return []
    span = max(tb[-1] - tb[0], 1e-9)
    signal = np.column_stack([yb, (tb - tb[0]) / span, np.ones(n)])
    algo = rpt.Pelt(model="linear", min_size=3, jump=1).fit(signal)
    bkps = algo.predict(pen=factor * sigma**2 * np.log(n))
    return [b for b in bkps if b < n]


def _segment_fits(tb: np.ndarray, yb: np.ndarray, cps: list[int]) -> list[tuple[float, float]]:
    """(intercept, slope) of a straight line through each segment."""
    bounds = [0, *cps, len(yb)]
    fits = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        slope, intercept = np.polyfit(tb[a:b], yb[a:b], 1)
        fits.append((float(intercept), float(slope)))
    return fits


def _slope_test(
    tb: np.ndarray, yb: np.ndarray, step_at: float | None
) -> tuple[float, float, float]:
    """Slope, standard error and one-sided p (H1: slope > 0) of a straight line, optional step term.

    Two autocorrelation-robust fits must agree: OLS with Newey-West (HAC) errors and AR(1) feasible
    GLS (GLSAR). The larger p-value and standard error are kept: on short series HAC alone rejects
    too often (docs/statistics.md).
    """
    tc = tb - tb[0]
    cols = [np.ones_like(tc), tc]
    if step_at is not None and 0 < np.sum(tb >= step_at) < len(tb):
        cols.append((tb >= step_at).astype(float))
    exog = np.column_stack(cols)
    maxlags = max(1, int(np.ceil(len(tb) ** (1 / 3))))
    hac = OLS(yb, exog).fit(cov_type="HAC", cov_kwds={"maxlags": maxlags}, use_t=True)
    with warnings.catch_warnings():  # a flat series makes the AR(1) estimate singular
        warnings.simplefilter("ignore")
        gls = GLSAR(yb, exog, rho=1).iterative_fit(maxiter=5)
    slope = float(hac.params[1])
    se = float(max(hac.bse[1], gls.bse[1]))
    if not np.isfinite(se) or se <= 0:
        return slope, 0.0, 0.0 if slope > 0 else 1.0
    p_values = [stats.t.sf(fit.params[1] / fit.bse[1], df=fit.df_resid)
                for fit in (hac, gls) if np.isfinite(fit.bse[1]) and fit.bse[1] > 0]
    return slope, se, float(max(p_values))


def trend_test(t: np.ndarray, y: np.ndarray, params: TrendParams | None = None) -> TrendResult:
    """Judge whether ``y`` (sampled at times ``t``, seconds) keeps growing after warm-up.

    NaNs are ignored. See docs/statistics.md for the method and what the labels mean.
    """
    p = params or TrendParams()
    ok = np.isfinite(t) & np.isfinite(y)
    t, y = np.asarray(t, float)[ok], np.asarray(y, float)[ok]
    n = len(t)
    res = TrendResult(label="inconclusive", n_samples=n)
    if n < p.min_samples or t[-1] - t[0] < p.min_steady_s:
        res.reasons.append(
            f"too few samples ({n}, {t[-1] - t[0] if n else 0:.0f} s); "
            f"need {p.min_samples} and {p.min_steady_s:.0f} s"
        )
        return res
    if np.ptp(y) <= p.resolution:
        res.label, res.slope, res.p_value, res.noise_sd = "none", 0.0, 1.0, 0.0
        res.slope_ci, res.ols_slope, res.slope_se, res.detection_limit = (0.0, 0.0), 0.0, 0.0, 0.0
        res.warmup_cut_s, res.test_start_s, res.test_end_s = float(t[0]), float(t[0]), float(t[-1])
        res.n_test_samples, res.growth_total = n, float(y[-1] - y[0])
        return res

    # statistics.md: windows of max(5 s, T/240); runs under 2.5 min keep 30 windows instead,
    # or the change-point search has too few points to place a warm-up cut.
    span = t[-1] - t[0]
    window = max(min(5.0, span / 30.0), span / 240.0)
    tb, yb = smooth(t, y, window)
    sigma = _noise_sd(tb, yb, p.resolution)
    res.noise_sd = sigma
    res.growth_total = float(yb[-1] - yb[0])
    cps = _change_points(tb, yb, sigma, p.penalty_factor)
    fits = _segment_fits(tb, yb, cps)
    res.change_points_s = [float(tb[i]) for i in cps]

    # Warm-up: the first change point, if it lies in the first half of the run.
    first = 1 if cps and tb[cps[0]] - tb[0] <= 0.5 * (tb[-1] - tb[0]) else 0
    res.warmup_cut_s = float(tb[cps[0]]) if first else float(tb[0])

    # Level shifts after the warm-up; upward ones beyond 3 sigma are steps.
    for k in range(first, len(cps)):
        tc = tb[cps[k]]
        (a0, b0), (a1, b1) = fits[k], fits[k + 1]
        jump = (a1 + b1 * tc) - (a0 + b0 * tc)
        if jump > 3 * sigma:
            res.steps.append({"t": float(tc), "size": float(jump)})

    # Test region: from the warm-up cut (or the step before the last step) to the end, with a
    # step term at the last step. Slope changes and downward shifts (GC) do not cut the region.
    step_times = [s["t"] for s in res.steps if s["t"] > res.warmup_cut_s + window]
    step_at = step_times[-1] if step_times else None
    t_lo = step_times[-2] if len(step_times) > 1 else res.warmup_cut_s
    sel = tb >= t_lo
    tt, yy = tb[sel], yb[sel]
    res.test_start_s, res.test_end_s = float(tt[0]), float(tt[-1])
    res.n_test_samples = int(np.sum(t >= t_lo - window / 2))
    if res.n_test_samples < p.min_samples or t[-1] - t_lo < p.min_steady_s or len(tt) < 5:
        res.reasons.append("steady state after warm-up is too short to test")
        return res

    res.ols_slope, res.slope_se, res.p_value = _slope_test(tt, yy, step_at)
    shift = 0.0
    if step_at is not None:
        shift = float(np.median(yy[tt >= step_at]) - np.median(yy[tt < step_at]))
        yy = yy - shift * (tt >= step_at)
    ts = stats.theilslopes(yy, tt, alpha=0.95)
    res.slope, res.slope_ci = float(ts.slope), (float(ts.low_slope), float(ts.high_slope))
    res.detection_limit = p.limit_factor * res.slope_se
    t_fit = tt[0] if step_at is None else step_at
    res.fit_line = [(float(x), float(ts.intercept + shift + ts.slope * x)) for x in (t_fit, tt[-1])]

    significant = res.p_value < p.alpha and res.slope >= p.min_rate
    late = tt >= tt[0] + (tt[-1] - tt[0]) / 2
    late_p = _slope_test(tt[late], yy[late], None)[2] if np.sum(late) >= 5 else 1.0
    if significant and (late_p < p.late_alpha or res.slope >= p.inconclusive_rate):
        res.label = "leak"
    elif significant:
        res.label = "decelerating"
        res.reasons.append("growth in the first half of the steady state did not go on")
    elif res.detection_limit > p.inconclusive_rate:
        res.label = "inconclusive"
        res.reasons.append(
            f"too noisy: detection limit {res.detection_limit:.3g}/s is above "
            f"{p.inconclusive_rate:.3g}/s"
        )
    elif res.steps:
        res.label = "step"
    else:
        res.label = "none"
    return res
