"""Summaries of what a run left besides memory: operations, processes events, cleanup."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sandbox.model.event import Event
from sandbox.model.operation import Operation


@dataclass
class OperationsSummary:
    """Count, failures and latency percentiles (seconds) of the workload's operations."""

    count: int = 0
    failed: int = 0
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    latency_max_s: float | None = None
    errors: dict[str, int] = field(default_factory=dict)  # error message -> count (top 5)

    @property
    def failed_fraction(self) -> float:
        """Share of failed operations (0 when there were none)."""
        return self.failed / self.count if self.count else 0.0


def operation_latencies(operations: list[Operation]) -> np.ndarray:
    """Latencies (s) of the operations that report one."""
    return np.array([o.latency_s for o in operations if o.latency_s is not None], dtype=float)


def summarize_operations(operations: list[Operation]) -> OperationsSummary:
    """Count operations, failures (``ok`` false) and latency p50/p95/max."""
    lat = operation_latencies(operations)
    failed = [o for o in operations if o.failed]
    errors = Counter(o.error or "unknown error" for o in failed)
    summary = OperationsSummary(count=len(operations), failed=len(failed),
                                errors=dict(errors.most_common(5)))
    if len(lat):
        p50, p95 = np.percentile(lat, [50, 95])
        summary.latency_p50_s, summary.latency_p95_s = float(p50), float(p95)
        summary.latency_max_s = float(lat.max())
    return summary


def summarize_events(events: list[Event]) -> dict[str, Any]:
    """Event counts by kind, distinct pids, and the most frequent process names."""
    kinds = Counter(e.kind for e in events)
    comms = Counter(e.comm for e in events if e.comm)
    pids = {e.pid for e in events}
    return {
        "count": len(events),
        "by_kind": dict(sorted(kinds.items())),
        "distinct_pids": len(pids),
        "top_comms": dict(comms.most_common(10)),
    }


@dataclass
class CleanupFindings:
    """The verifier's cleanup.json, with the seed's keys and the escapes list."""

    available: bool
    orphans: list[dict[str, Any]] = field(default_factory=list)
    process_leak_detected: bool = False
    remaining_temp_files: list[dict[str, Any]] = field(default_factory=list)
    file_leak_detected: bool = False
    escapes: list[Any] = field(default_factory=list)
    cleanup_successful: bool | None = None
    issues_found: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)


def cleanup_findings(cleanup: dict[str, Any] | None) -> CleanupFindings:
    """Read the seed's cleanup keys (missing keys read as 'nothing found')."""
    if cleanup is None:
        return CleanupFindings(available=False)
    proc = cleanup.get("process_cleanup") or {}
    files = cleanup.get("file_cleanup") or {}
    # The verifier's detailed lists cover every process and file; the seed's keys only
    # browser pids and paths (all a seed-format cleanup.json has).
    orphans = list(proc.get("orphans")
                   or [{"pid": pid, "is_browser": True}
                       for pid in proc.get("orphaned_browser_processes") or []])
    remaining = list(files.get("leftover_files")
                     or [{"path": path} for path in files.get("remaining_temp_files") or []])
    return CleanupFindings(
        available=True,
        orphans=orphans,
        process_leak_detected=bool(proc.get("process_leak_detected", bool(orphans))),
        remaining_temp_files=remaining,
        file_leak_detected=bool(files.get("file_leak_detected", bool(remaining))),
        escapes=list(cleanup.get("escapes") or []),
        cleanup_successful=cleanup.get("cleanup_successful"),
        issues_found=[str(i) for i in cleanup.get("issues_found") or []],
        raw=cleanup,
    )
