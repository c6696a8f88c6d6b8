"""metrics.prom: OpenMetrics text exposition, ending in ``# EOF``."""

from __future__ import annotations

import math

from sandbox.analysis import AnalysisResult
from sandbox.analysis.trend import LABELS


def _num(x: float | None) -> str:
    return "NaN" if x is None or not math.isfinite(x) else repr(float(x))


def _esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_openmetrics(r: AnalysisResult) -> str:
    """Gauges: slope, verdict (one labelled series per label), peak, orphans, escapes, files."""
    v, c = r.verdict, r.cleanup
    sig = _esc(str(v.signal))
    lines: list[str] = []

    def gauge(name: str, help_: str, samples: list[tuple[str, float | None]]) -> None:
        lines.extend([f"# TYPE {name} gauge", f"# HELP {name} {help_}"])
        lines.extend(f"{name}{labels} {_num(val)}" for labels, val in samples)

    gauge("sandbox_memory_slope_mb_per_second", "Robust (Theil-Sen) growth rate after warm-up.",
          [(f'{{signal="{sig}"}}', v.slope_mb_s)])
    gauge("sandbox_memory_detection_limit_mb_per_second", "Smallest growth rate this run resolves.",
          [(f'{{signal="{sig}"}}', v.detection_limit_mb_s)])
    gauge("sandbox_leak_verdict", "1 for the verdict label of this run, 0 for the others.",
          [(f'{{label="{lab}",severity="{v.severity if lab == v.label else "none"}"}}',
            1.0 if lab == v.label else 0.0) for lab in LABELS])
    gauge("sandbox_memory_peak_mb", "Peak memory (sampled maximum of the seed's series).",
          [(f'{{series="{_esc(str(r.legacy.series))}"}}', r.legacy.peak_mb)])
    gauge("sandbox_orphan_processes", "Processes that outlived the workload.",
          [("", float(len(c.orphans)))])
    gauge("sandbox_escaped_processes", "Processes of the run found outside its cgroup.",
          [("", float(len(c.escapes)))])
    gauge("sandbox_leftover_files", "Temporary files left after the run.",
          [("", float(len(c.remaining_temp_files)))])
    gauge("sandbox_operations_failed", "Failed workload operations.",
          [("", float(r.operations.failed))])
    gauge("sandbox_exit_code", "0 ok, 1 critical, 2 warnings, 3 incomplete.",
          [("", float(r.exit_code))])
    lines.append("# EOF")
    return "\n".join(lines) + "\n"
