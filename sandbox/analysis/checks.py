"""The table of checks: each check's name (its findings' ``check`` and its JUnit case), when it
applies to a run, and the count or size trends it reads with their named thresholds and
wording. analysis.core measures the trends, analysis.verdict words them and report.junit makes
one case per applicable check from this table: adding a check is one entry here plus its
tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sandbox.analysis.budget import Startup
from sandbox.analysis.counts import MIN_PER_PART, count_growth
from sandbox.analysis.result import AnalysisResult
from sandbox.analysis.trend import TrendResult

#: least growth of a count that is a leak: one process, file, fd or thread per 5 minutes
ONE_PER_5_MIN = 1 / 300
#: least growth of the DOM nodes: one node a minute
ONE_PER_MIN = 1 / 60
#: least growth of the temp files' size and of the JS heap: 0.01 MB/s (36 MB/h)
SIZE_MB_S = 0.01
#: smallest change that counts: one of a count, 0.01 MB of temp files, 0.05 MB of JS heap
ONE = 1.0
TMP_RESOLUTION_MB = 0.01
JS_HEAP_RESOLUTION_MB = 0.05
#: least share of samples a series read on the sampler's full records needs: memory.stat (anon)
#: and cgroup.procs are read on those only, about two samples in three and at least one a
#: second (sampler.cgroup_reader.FULL_PERIOD_S); the temp areas are walked once a second
FULL_RECORD_SHARE = 0.3
#: JS heap measurements are taken after a forced GC every 10 s: no transient to outvote, two a
#: part will do
JS_HEAP_PER_PART = 2


@dataclass(frozen=True)
class Trend:
    """One count or size series a check reads: its name in ``resource_trends``, its wording
    in a finding, the smallest change that counts (``resolution``, in its unit) and the least
    growth that is a leak (``min_rate``, its unit per second)."""

    series: str
    words: str
    resolution: float
    min_rate: float
    min_per_part: int = MIN_PER_PART

    def growth(self, t: np.ndarray, y: np.ndarray, startup: Startup) -> TrendResult:
        """The series' growth (analysis.counts) with this trend's thresholds."""
        return count_growth(t, y, startup=startup, resolution=self.resolution,
                            min_rate=self.min_rate, min_per_part=self.min_per_part)


def _always(r: AnalysisResult) -> bool:
    return True


def shows_operations(r: AnalysisResult) -> bool:
    """Operations and their latency apply to the screenshot workload, or to a workload that
    recorded some; a command run has none."""
    return r.run.workload == "screenshot" or r.operations.count > 0


def _js_heap_measured(r: AnalysisResult) -> bool:
    return bool(r.run.config.js_heap) or any(f.check == "js_heap" for f in r.findings)


@dataclass(frozen=True)
class Check:
    """One check: its name (findings and JUnit case), the trends it reads, and whether it
    applies to a run (a JUnit case only where it does)."""

    name: str
    trends: tuple[Trend, ...] = ()
    applies: Callable[[AnalysisResult], bool] = _always


PROCESSES = Trend("processes", "processes", ONE, ONE_PER_5_MIN)
FDS = Trend("fds", "open file descriptors", ONE, ONE_PER_5_MIN)
THREADS = Trend("threads", "threads", ONE, ONE_PER_5_MIN)
TMP_MB = Trend("tmp_mb", "temp MB", TMP_RESOLUTION_MB, SIZE_MB_S)
TMP_FILES = Trend("tmp_files", "temp files", ONE, ONE_PER_5_MIN)
JS_HEAP_MB = Trend("js_heap_mb", "JS heap MB of the long-lived pages (after a forced GC)",
                   JS_HEAP_RESOLUTION_MB, SIZE_MB_S, JS_HEAP_PER_PART)
DOM_NODES = Trend("dom_nodes", "DOM nodes of the long-lived pages", ONE, ONE_PER_MIN,
                  JS_HEAP_PER_PART)

#: every check, in report order
CHECKS = (
    Check("trend"),
    Check("orphans"),
    Check("escapes"),
    Check("files", (TMP_MB, TMP_FILES)),
    Check("operations", applies=shows_operations),
    Check("workload"),
    Check("processes", (PROCESSES,)),
    Check("fds", (FDS,)),
    Check("threads", (THREADS,)),
    Check("js_heap", (JS_HEAP_MB, DOM_NODES), applies=_js_heap_measured),
    Check("cleanup"),
)
#: trend series -> (its Trend, the check a growing one is reported under)
TRENDS = {trend.series: (trend, check.name) for check in CHECKS for trend in check.trends}


def applicable_checks(r: AnalysisResult) -> list[str]:
    """The checks that apply to the run (its JUnit cases)."""
    return [c.name for c in CHECKS if c.applies(r)]
