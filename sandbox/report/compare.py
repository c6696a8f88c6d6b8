"""compare_runs(): is NEW worse than BASE beyond noise (growth rate, peak, latency)?"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from sandbox.analysis import analyze
from sandbox.analysis.core import AnalysisResult
from sandbox.analysis.findings import operation_latencies
from sandbox.analysis.legacy import MB
from sandbox.runreader import RunData

ALPHA = 0.01


@dataclass
class Comparison:
    """One metric of BASE against NEW."""

    metric: str
    base: float | None
    new: float | None
    worse: bool
    detail: str


@dataclass
class CompareResult:
    """All comparisons; ``exit_code`` 1 when any metric is worse, else 0."""

    base_dir: str
    new_dir: str
    items: list[Comparison] = field(default_factory=list)

    @property
    def worse(self) -> bool:
        """True when NEW is worse than BASE on any metric."""
        return any(c.worse for c in self.items)

    @property
    def exit_code(self) -> int:
        """0 not worse, 1 worse."""
        return 1 if self.worse else 0

    def render(self) -> str:
        """Plain-text table for a terminal or CI log."""
        rows = [f"compare BASE {self.base_dir}  NEW {self.new_dir}"]
        for c in self.items:
            mark = "WORSE" if c.worse else "ok"
            rows.append(f"  {c.metric:<22} base {_f(c.base):>10}  new {_f(c.new):>10}  "
                        f"{mark:<5} {c.detail}")
        rows.append("NEW is worse than BASE" if self.worse else "NEW is not worse than BASE")
        return "\n".join(rows)


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def _growth(b: AnalysisResult, n: AnalysisResult) -> Comparison:
    vb, vn = b.verdict, n.verdict
    sb, sn = vb.trend.slope_se, vn.trend.slope_se
    if vb.slope_mb_s is None or vn.slope_mb_s is None or sb is None or sn is None:
        return Comparison("growth MB/s", vb.slope_mb_s, vn.slope_mb_s, False,
                          "not comparable (a run has no tested steady state)")
    diff, se = vn.slope_mb_s - vb.slope_mb_s, math.hypot(sb, sn)
    p = float(stats.norm.sf(diff / se)) if se > 0 else (0.0 if diff > 0 else 1.0)
    worse = p < ALPHA and diff >= 0.01
    return Comparison("growth MB/s", vb.slope_mb_s, vn.slope_mb_s, worse,
                      f"difference {diff:+.4f} MB/s, se {se:.4f}, one-sided p={p:.2g}")


def _peak(b: AnalysisResult, n: AnalysisResult, base: RunData, new: RunData) -> Comparison:
    sig = b.verdict.signal if b.verdict.signal == n.verdict.signal else None
    if sig is None:
        return Comparison("peak MB", None, None, False, "runs have different memory signals")
    pb = float(np.nanmax(base.samples[sig])) / MB
    pn = float(np.nanmax(new.samples[sig])) / MB
    noise = math.hypot(b.verdict.trend.noise_sd or 0.0, n.verdict.trend.noise_sd or 0.0)
    margin = max(3 * noise, 0.05 * pb)
    return Comparison(f"peak {sig} MB", pb, pn, pn - pb > margin,
                      f"worse only beyond +{margin:.1f} MB (3 x noise or 5%)")


def _latency(base: RunData, new: RunData) -> Comparison:
    lb, ln = operation_latencies(base.operations), operation_latencies(new.operations)
    if len(lb) < 5 or len(ln) < 5:
        return Comparison("latency p50 s", None, None, False, "fewer than 5 operations")
    mb, mn = float(np.median(lb)), float(np.median(ln))
    p = float(stats.mannwhitneyu(ln, lb, alternative="greater").pvalue)
    worse = p < ALPHA and mn > 1.1 * mb
    return Comparison("latency p50 s", mb, mn, worse,
                      f"Mann-Whitney one-sided p={p:.2g}; worse needs p<{ALPHA} and +10%")


def compare_runs(base: RunData, new: RunData) -> CompareResult:
    """Compare two runs; NEW is worse on a metric only when the difference exceeds the noise."""
    b, n = analyze(base), analyze(new)
    return CompareResult(str(base.path), str(new.path),
                         [_growth(b, n), _peak(b, n, base, new), _latency(base, new)])
