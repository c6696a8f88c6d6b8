"""compare_runs(): is NEW worse than BASE, better, the same, or can't the runs tell?
(Statistics only; report.compare renders the answer.)

Each metric gets one of four answers, with the difference, its 95% interval where the metric
has one, and the ratio NEW/BASE:

- growth rate (the budget verdict's floor rate and its HAC standard error): the interval of
  the difference; worse or better when it excludes 0 and the difference is at least
  :data:`MIN_RATE_DIFF`; the same when it lies within ±:data:`MIN_RATE_DIFF`; else can't tell;
- peak of the memory signal: worse or better beyond max(3 x noise, 5%), else the same;
- median operation latency: Mann-Whitney (one-sided, alpha 0.01) and a change of 10% or more.

NEW is worse (exit 1) when any metric is worse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from sandbox.analysis import analyze
from sandbox.analysis.budget import Z
from sandbox.analysis.findings import operation_latencies
from sandbox.analysis.legacy import MB
from sandbox.analysis.result import AnalysisResult
from sandbox.runreader import RunData

ALPHA = 0.01
MIN_RATE_DIFF = 0.01  # MB/s: smaller differences of growth rate do not matter (36 MB/h)


@dataclass
class Comparison:
    """One metric of BASE against NEW."""

    metric: str
    base: float | None
    new: float | None
    answer: str  # worse, better, same or "can't tell"
    detail: str
    ratio: float | None = None  # NEW / BASE
    interval: tuple[float, float] | None = None  # 95% interval of NEW - BASE

    @property
    def worse(self) -> bool:
        return self.answer == "worse"


@dataclass
class CompareResult:
    """All comparisons; ``exit_code`` 1 when any metric is worse, else 0."""

    base_dir: str
    new_dir: str
    items: list[Comparison] = field(default_factory=list)
    #: each run's own verdict, as `sandbox run` and `sandbox report` give it: "BASE"/"NEW" ->
    #: (status, exit code, memory outcome against its budget)
    own: dict[str, tuple[str, int, str]] = field(default_factory=dict)

    @property
    def worse(self) -> bool:
        """True when NEW is worse than BASE on any metric."""
        return any(c.worse for c in self.items)

    @property
    def exit_code(self) -> int:
        """0 not worse, 1 worse."""
        return 1 if self.worse else 0

    @property
    def own_verdicts(self) -> str:
        """Each run's own verdict in words, and, where compare's exit code differs from a
        run's own, why: the two answer different questions."""
        line = "each run alone: " + ", ".join(
            f"{name} {status} (exit {code}, memory {outcome})"
            for name, (status, code, outcome) in self.own.items())
        if any(code != self.exit_code for _, code, _ in self.own.values()):
            line += ("; compare asks whether NEW is worse than BASE beyond the runs' noise, "
                     "each run's own exit code whether it is within its budget and clean, so "
                     "the two can differ")
        return line

    @property
    def summary(self) -> str:
        if self.worse:
            return "NEW is worse than BASE"
        if any(c.answer == "better" for c in self.items):
            return "NEW is better than BASE, and nowhere worse"
        if any(c.answer == "can't tell" for c in self.items):
            return "NEW is not worse than BASE as far as these runs can tell"
        return "NEW is the same as BASE"


def _ratio(base: float | None, new: float | None) -> float | None:
    return new / base if base and new is not None and abs(base) > 1e-12 else None


def _growth(b: AnalysisResult, n: AnalysisResult) -> Comparison:
    vb, vn = b.verdict, n.verdict
    sb, sn = vb.trend.slope_se, vn.trend.slope_se
    if vb.slope_mb_s is None or vn.slope_mb_s is None or sb is None or sn is None:
        return Comparison("growth MB/s", vb.slope_mb_s, vn.slope_mb_s, "can't tell",
                          "a run has no measured growth (too short)")
    diff, se = vn.slope_mb_s - vb.slope_mb_s, math.hypot(sb, sn)
    low, high = diff - Z * se, diff + Z * se
    if low > 0 and diff >= MIN_RATE_DIFF:
        answer = "worse"
    elif high < 0 and diff <= -MIN_RATE_DIFF:
        answer = "better"
    elif low >= -MIN_RATE_DIFF and high <= MIN_RATE_DIFF:
        answer = "same"
    else:
        answer = "can't tell"
    return Comparison("growth MB/s", vb.slope_mb_s, vn.slope_mb_s, answer,
                      f"difference {diff:+.4f} MB/s, 95% interval {low:+.4f}..{high:+.4f}",
                      _ratio(vb.slope_mb_s, vn.slope_mb_s), (low, high))


def _peak(b: AnalysisResult, n: AnalysisResult, base: RunData, new: RunData) -> Comparison:
    sig = b.verdict.signal if b.verdict.signal == n.verdict.signal else None
    if sig is None:
        return Comparison("peak MB", None, None, "can't tell",
                          "runs have different memory signals")
    pb = float(np.nanmax(base.samples[sig])) / MB
    pn = float(np.nanmax(new.samples[sig])) / MB
    noise = math.hypot(b.verdict.trend.noise_sd or 0.0, n.verdict.trend.noise_sd or 0.0)
    margin = max(3 * noise, 0.05 * pb)
    answer = "worse" if pn - pb > margin else "better" if pb - pn > margin else "same"
    return Comparison(f"peak {sig} MB", pb, pn, answer,
                      f"a change counts beyond {margin:.1f} MB (3 x noise or 5%)",
                      _ratio(pb, pn))


def _latency(base: RunData, new: RunData) -> Comparison:
    lb, ln = operation_latencies(base.operations), operation_latencies(new.operations)
    if len(lb) < 5 or len(ln) < 5:
        return Comparison("latency p50 s", None, None, "can't tell", "fewer than 5 operations")
    mb, mn = float(np.median(lb)), float(np.median(ln))
    p_up = float(stats.mannwhitneyu(ln, lb, alternative="greater").pvalue)
    p_down = float(stats.mannwhitneyu(ln, lb, alternative="less").pvalue)
    if p_up < ALPHA and mn > 1.1 * mb:
        answer = "worse"
    elif p_down < ALPHA and mn < mb / 1.1:
        answer = "better"
    else:
        answer = "same"
    return Comparison("latency p50 s", mb, mn, answer,
                      f"Mann-Whitney one-sided p={min(p_up, p_down):.2g}; a change needs "
                      f"p<{ALPHA} and 10%", _ratio(mb, mn))


def compare_runs(base: RunData, new: RunData) -> CompareResult:
    """Compare two runs; NEW is worse on a metric only when the difference exceeds the noise."""
    b, n = analyze(base), analyze(new)
    return CompareResult(str(base.path), str(new.path),
                         [_growth(b, n), _peak(b, n, base, new), _latency(base, new)],
                         own={name: (r.status, r.exit_code, r.verdict.outcome)
                              for name, r in (("BASE", b), ("NEW", n))})
