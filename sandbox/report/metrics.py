"""The run's results as Prometheus metrics (prometheus_client): metrics.prom in the run
directory, a node_exporter textfile (written atomically), or a push to a Pushgateway.

Base units (bytes, seconds), one stable label set on every series (``scenario``, ``host``),
outcomes as state sets (``sandbox_status{sandbox_status="PASS"} 1``, the others 0), and the
run's start time, so a dashboard can tell a stale machine from a healthy one.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from prometheus_client import CollectorRegistry, Enum, Gauge, generate_latest, push_to_gateway
from prometheus_client import write_to_textfile as _write_textfile

from sandbox.analysis import AnalysisResult
from sandbox.untrusted import shown

log = logging.getLogger(__name__)

MB = 2**20
LABELS = ("scenario", "host")
STATUSES = ["PASS", "WARN", "FAIL", "INCONCLUSIVE", "INCOMPLETE"]
OUTCOMES = ["within", "over", "inconclusive"]
JOB = "sandbox"
PUSH_TIMEOUT_S = 10.0


def _value(x: float | None, scale: float = 1.0) -> float:
    return float(x) * scale if x is not None and math.isfinite(x) else math.nan


def _labels(r: AnalysisResult) -> dict[str, str]:
    """The label set: the scenario or command and the host, shown escaped."""
    return {"scenario": shown(r.label), "host": shown(r.hostname)}


def registry_for(r: AnalysisResult) -> CollectorRegistry:
    """A registry holding this run's metrics (see the module docstring)."""
    registry = CollectorRegistry(auto_describe=True)
    labels = _labels(r)
    v, c = r.verdict, r.cleanup
    ci = v.slope_ci_mb_s or (None, None)

    def gauge(name: str, doc: str, value: float) -> None:
        Gauge(name, doc, LABELS, registry=registry).labels(**labels).set(value)

    Enum("sandbox_status", "The run's outcome (PASS, WARN, FAIL, INCONCLUSIVE, INCOMPLETE).",
         LABELS, states=STATUSES, registry=registry).labels(**labels).state(r.status)
    Enum("sandbox_memory_budget_outcome", "Memory growth against the budget.", LABELS,
         states=OUTCOMES, registry=registry).labels(**labels).state(v.outcome)
    gauge("sandbox_exit_code", "0 ok, 1 critical, 2 warnings, 3 harness error or incomplete.",
          float(r.exit_code))
    gauge("sandbox_run_start_timestamp_seconds", "When the run started (Unix time).",
          _value(r.run.started))
    gauge("sandbox_run_duration_seconds", "How long the workload ran.", _value(r.duration_s))
    gauge("sandbox_memory_growth_bytes_per_second", "Growth rate of the memory floor.",
          _value(v.slope_mb_s, MB))
    gauge("sandbox_memory_growth_low_bytes_per_second", "Its lower 95% bound.",
          _value(ci[0], MB))
    gauge("sandbox_memory_growth_high_bytes_per_second", "Its upper 95% bound.",
          _value(ci[1], MB))
    gauge("sandbox_memory_budget_bytes_per_second", "The growth budget the run was judged by.",
          _value(v.budget_mb_s, MB))
    gauge("sandbox_memory_peak_bytes", "Peak of the sampled memory series.",
          _value(r.legacy.peak_mb, MB))
    gauge("sandbox_orphan_processes", "Processes that outlived the workload.",
          float(len(c.orphans)))
    gauge("sandbox_escaped_processes", "Processes of the run found outside its cgroup.",
          float(len(c.escapes)))
    gauge("sandbox_leftover_files", "Temporary files left after the run.",
          float(len(c.leftover_files)))
    gauge("sandbox_operations", "Workload operations in the run.", float(r.operations.count))
    gauge("sandbox_operations_failed", "Failed workload operations.", float(r.operations.failed))
    return registry


def render_prometheus(r: AnalysisResult) -> str:
    """Prometheus text exposition (what node_exporter's textfile collector reads)."""
    return generate_latest(registry_for(r)).decode()


def write_textfile(r: AnalysisResult, path: str | Path) -> None:
    """Write the metrics to ``path`` atomically (a temporary file renamed over it)."""
    _write_textfile(str(path), registry_for(r))


def push(r: AnalysisResult, url: str) -> None:
    """Replace this scenario's and host's group on the Pushgateway at ``url``."""
    push_to_gateway(url, job=JOB, registry=registry_for(r), timeout=PUSH_TIMEOUT_S,
                    grouping_key=_labels(r))


def export(r: AnalysisResult, *, textfile: str | Path | None = None,
           pushgateway: str | None = None) -> bool:
    """Write the textfile and push, as asked; a failure is one error line in the log (the
    run's reports are already on disk). Returns whether everything asked for was done."""
    done = True
    if textfile:
        try:
            write_textfile(r, textfile)
        except OSError as exc:
            log.error("cannot write the metrics textfile %s: %s", textfile, exc.strerror or exc)
            done = False
    if pushgateway:
        try:
            push(r, pushgateway)
        except OSError as exc:  # URLError and HTTPError are OSErrors
            log.error("cannot push the metrics to %s: %s", pushgateway, exc)
            done = False
    return done
