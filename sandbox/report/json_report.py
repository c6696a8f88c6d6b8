"""report.json: the seed's keys plus the robust verdict, built as the typed model
(sandbox.model.report; docs/report-format.md, docs/report.schema.json)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any

from sandbox.analysis import AnalysisResult
from sandbox.analysis.trend import TrendResult
from sandbox.config import recorded
from sandbox.model.report import SCHEMA_VERSION, Report
from sandbox.report.common import LEGACY_NOTE


def _clean(obj: Any) -> Any:
    """JSON-safe copy: NaN and infinities become null, tuples lists."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def _trend(tr: TrendResult | None) -> dict[str, Any] | None:
    return None if tr is None else asdict(tr)


def to_dict(r: AnalysisResult) -> dict[str, Any]:
    """The report.json document, checked against the model (sandbox.model.report.Report)."""
    lg, v, c = r.legacy, r.verdict, r.cleanup
    doc = {
        "schema_version": SCHEMA_VERSION,
        "run_dir": r.run_dir,
        "overall_success": r.overall_success,
        "exit_code": r.exit_code,
        "status": r.status,
        "legacy_note": LEGACY_NOTE,
        "memory_trend": {
            "slope_mb_per_second": lg.slope_mb_per_second,
            "correlation": lg.correlation,
            "leak_severity": lg.leak_severity,
            "series": lg.series,
        },
        "memory_stats": {
            "initial_mb": lg.initial_mb,
            "final_mb": lg.final_mb,
            "peak_mb": lg.peak_mb,
            "average_mb": lg.average_mb,
            "kernel_peak_mb": r.kernel_peak_mb,
        },
        "recommendations": r.recommendations,
        "process_cleanup": {
            "orphaned_browser_processes": [o.pid for o in c.orphans if o.is_browser],
            "process_leak_detected": c.process_leak_detected,
            "orphans": [o.to_record() for o in c.orphans],
        },
        "file_cleanup": {
            "remaining_temp_files": [f.path for f in c.leftover_files],
            "file_leak_detected": c.file_leak_detected,
            "leftover_files": [f.to_record() for f in c.leftover_files],
        },
        "escapes": [e.to_record() for e in c.escapes],
        "cleanup_successful": c.cleanup_successful,
        "issues_found": c.issues_found,
        "cleanup_verified": c.available,
        "after_teardown": c.after_teardown,
        "run_user": r.run.user,
        "workload_exit": r.run.workload_exit,
        "verdict": {
            "label": v.label,
            "severity": v.severity,
            "signal": v.signal,
            "slope_mb_per_second": v.slope_mb_s,
            "slope_ci_mb_per_second": v.slope_ci_mb_s,
            "p_value": v.p_value,
            "detection_limit_mb_per_second": v.detection_limit_mb_s,
            "mb_per_operation": v.mb_per_op,
            "warmup_cut_s": v.warmup_cut_s,
            "change_points_s": v.change_points_s,
            "steps": v.steps,
            "reasons": v.reasons,
            "outcome": v.outcome,
            "budget": v.budget,
            "budget_mb_per_second": v.budget_mb_s,
            "minutes_needed": v.minutes_needed,
            "workload_kind": v.workload_kind,
            "measured_on": v.measured_on,
            "settle_points": v.settle_points,
            "bounds_z": round(v.z, 4),
            "decided_at_s": v.decided_at_s,
            "trend": _trend(v.trend),
        },
        "file_cache_trend": _trend(r.file_trend),
        "resource_trends": {k: _trend(tr) for k, tr in r.resource_trends.items()},
        "findings": [asdict(f) for f in r.findings],
        "host": r.run.host,
        "backend": r.run.backend,
        "config": recorded(r.run.config),
        "sample_source": r.sample_source,
        "duration_s": r.duration_s,
        "n_samples": r.n_samples,
        "oom_kills": r.oom_kills,
        "operations": {**asdict(r.operations), "failed_fraction": r.operations.failed_fraction},
        "alerts": [a.to_record() for a in r.alerts],
        "events_summary": r.events_summary,
        "roles": [g.to_dict() for g in r.roles],
    }
    return Report.model_validate(_clean(doc)).model_dump(mode="json")


def render_json(r: AnalysisResult) -> str:
    """report.json text."""
    return json.dumps(to_dict(r), indent=2, default=str) + "\n"
