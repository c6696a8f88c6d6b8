"""The memory limits of a pytest test (the plugin's ``@pytest.mark.sandbox(...)``), judged on
its body's memory: the run's budget (analysis.budget's growth estimate, from 1 s of samples on:
test bodies are short), a Theil-Sen slope, the growth in MB and the peak. Statistics and
policy only, no I/O; the plugin picks the samples and reports the findings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sandbox.analysis.budget import estimate_growth, judge_budget, parse_budget
from sandbox.analysis.trend import robust_slope

#: A test body's steady state: shorter than a run's, the estimate's own bounds say how sure.
MIN_TESTED_S = 1.0


@dataclass(frozen=True)
class MemoryLimits:
    budget: str | None = None  # "100MB/h", "0.1MB/s"
    max_growth_mb_per_s: float | None = None
    max_growth_mb: float | None = None  # last sample over the lowest of the first tenth
    max_memory_mb: float | None = None


def memory_findings(t: np.ndarray, mb: np.ndarray, limits: MemoryLimits) -> list[str]:
    """One line per limit the series (s, MB) breaks."""
    findings = []
    if limits.budget is not None:
        growth, why = estimate_growth(t, mb, min_tested_s=MIN_TESTED_S)
        verdict = judge_budget(growth, parse_budget(limits.budget), ops_per_s=None, why_none=why)
        if verdict.outcome == "over" and growth is not None:
            findings.append(f"memory grew {growth.rate:.3f} MB/s, over the budget "
                            f"{verdict.budget} (95% bounds {growth.ci[0]:.3f}.."
                            f"{growth.ci[1]:.3f} MB/s)")
    if len(mb) >= 3 and limits.max_growth_mb_per_s is not None:
        slope = robust_slope(t, mb)
        if slope > limits.max_growth_mb_per_s:
            findings.append(f"memory grew at {slope:.2f} MB/s "
                            f"(limit {limits.max_growth_mb_per_s} MB/s)")
    if len(mb) >= 2 and limits.max_growth_mb is not None:
        grown = float(mb[-1] - mb[: max(1, len(mb) // 10)].min())
        if grown > limits.max_growth_mb:
            findings.append(f"memory grew by {grown:.1f} MB (limit {limits.max_growth_mb} MB)")
    if len(mb) and limits.max_memory_mb is not None and mb.max() > limits.max_memory_mb:
        findings.append(f"memory peaked at {mb.max():.1f} MB (limit {limits.max_memory_mb} MB)")
    return findings
