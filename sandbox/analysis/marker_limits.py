"""The memory limits a pytest test adds to its run's verdict (the plugin's
``@pytest.mark.sandbox(...)``), judged on its body's memory: a Theil-Sen slope, the growth in
MB and the peak. The budget is not here: it is the run's own verdict (analysis.core, a test
body's start-up), which ``sandbox report`` on the run directory gives too. Statistics and
policy only, no I/O; the plugin picks the samples and reports the findings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sandbox.analysis.quick import robust_slope


@dataclass(frozen=True)
class MemoryLimits:
    max_growth_mb_per_s: float | None = None
    max_growth_mb: float | None = None  # last sample over the lowest of the first tenth
    max_memory_mb: float | None = None


def memory_findings(t: np.ndarray, mb: np.ndarray, limits: MemoryLimits) -> list[str]:
    """One line per limit the series (s, MB) breaks."""
    findings = []
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
