"""MemoryLeakDetector: the seed's Python API, usable from asyncio code."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

from sandbox.config import RunConfig
from sandbox.runner import run

CLEANUP_KEYS = ("process_cleanup", "escapes", "file_cleanup", "cleanup_successful",
                "issues_found")


class MemoryLeakDetector:
    """Runs the screenshot workload in a slice and judges it, as the seed describes::

        detector = MemoryLeakDetector(sample_interval=0.5, alert_threshold_mb=1024.0)
        results = await detector.run_extended_memory_test(duration_minutes=60,
                                                          operations_per_minute=10)
        if results["overall_success"]: ...

    Any other RunConfig setting (urls, inject, context_policy, runs_dir, ...) may be given as a
    keyword argument.
    """

    def __init__(self, sample_interval: float = 0.5, alert_threshold_mb: float = 1024.0,
                 **settings: Any) -> None:
        self.config = RunConfig(sample_interval=sample_interval,
                                alert_threshold_mb=alert_threshold_mb, **settings).validate()

    async def run_extended_memory_test(self, duration_minutes: float,
                                       operations_per_minute: float) -> dict[str, Any]:
        """One run in a worker thread; returns the seed's results dict."""
        config = replace(self.config, duration_s=duration_minutes * 60,
                         operations_per_minute=operations_per_minute)
        outcome = await asyncio.to_thread(run, config, show_progress=False)
        report = outcome.report
        return {
            "overall_success": outcome.result.overall_success,
            "status": report.get("status"),
            "exit_code": outcome.exit_code,
            "test_config": {"duration_minutes": duration_minutes,
                            "operations_per_minute": operations_per_minute,
                            "sample_interval": config.sample_interval,
                            "alert_threshold_mb": config.alert_threshold_mb},
            "memory_analysis": {key: report.get(key) for key in
                                ("memory_trend", "memory_stats", "recommendations", "verdict")},
            "cleanup_verification": {key: report.get(key) for key in CLEANUP_KEYS},
            "operations": report.get("operations"),
            "alerts": report.get("alerts"),
            "run_dir": str(Path(outcome.run_dir)),
        }
