"""Summaries of what a run did besides memory: its operations and process events."""

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
