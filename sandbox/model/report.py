"""report.json as a typed model (pydantic): the JSON reporter builds it, readers validate
against it, and docs/report.schema.json is generated from it (``python -m
sandbox.model.report``). Field meanings: docs/report-format.md; ``schema_version`` history
there too."""

from __future__ import annotations

import json
import sys
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from sandbox.rundir import FILE_FORMATS, REPORT

SCHEMA_VERSION = FILE_FORMATS[REPORT]
Level = Literal["critical", "warning", "note", "incomplete"]
Outcome = Literal["within", "over", "inconclusive"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MemoryTrend(_Model):
    """The seed's ``memory_trend``: an OLS slope of the whole series and its severity."""

    slope_mb_per_second: float | None
    correlation: float | None
    leak_severity: str
    series: str | None


class MemoryStats(_Model):
    """The seed's ``memory_stats`` (MB)."""

    initial_mb: float | None
    final_mb: float | None
    peak_mb: float | None
    average_mb: float | None
    kernel_peak_mb: float | None


class ProcessCleanup(_Model):
    orphaned_browser_processes: list[int]
    process_leak_detected: bool
    orphans: list[dict[str, Any]]


class FileCleanup(_Model):
    remaining_temp_files: list[str]
    file_leak_detected: bool
    leftover_files: list[dict[str, Any]]


class Trend(_Model):
    """A trend test in the series' unit per second (MB, processes, files)."""

    label: str
    reasons: list[str]
    slope: float | None
    slope_ci: tuple[float | None, float | None] | None
    ols_slope: float | None
    slope_se: float | None
    p_value: float | None
    detection_limit: float | None
    warmup_cut_s: float | None
    change_points_s: list[float]
    steps: list[dict[str, float | None]]
    test_start_s: float | None
    test_end_s: float | None
    n_samples: int
    n_test_samples: int
    noise_sd: float | None
    growth_total: float | None
    fit_line: list[tuple[float | None, float | None]]


class Verdict(_Model):
    """The memory verdict that decides the exit code: the floor's growth against the budget."""

    label: Literal["leak", "step", "none", "inconclusive"]
    severity: str
    signal: str | None
    slope_mb_per_second: float | None
    slope_ci_mb_per_second: tuple[float | None, float | None] | None
    p_value: float | None
    detection_limit_mb_per_second: float | None
    mb_per_operation: float | None
    warmup_cut_s: float | None
    change_points_s: list[float]
    steps: list[dict[str, float | None]]
    reasons: list[str]
    outcome: Outcome
    budget: str
    budget_mb_per_second: float | None
    minutes_needed: float | None
    workload_kind: str = "browser"  # whose start-up was cut: browser, command, test body
    measured_on: Literal["floors", "settle points"] = "floors"
    settle_points: int = 0  # settle samples in the judged window
    bounds_z: float = 1.6449  # the rate's bounds: rate -/+ bounds_z standard errors
    decided_at_s: float | None = None  # --until-decided: the look that decided
    trend: Trend | None


class Finding(_Model):
    check: str
    level: Level
    message: str


class Operations(_Model):
    count: int
    failed: int
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_max_s: float | None
    errors: dict[str, int]
    failed_fraction: float


class Role(_Model):
    """One process role over the workload's window (analysis.roles.RoleGrowth)."""

    role: str
    processes: int
    pss_first_mb: float | None
    pss_last_mb: float | None
    fds: int
    threads: int
    outcome: Outcome | Literal["transient"]  # transient: its processes come and go
    measure: Literal["pss", "rss"]
    rate_mb_s: float | None
    ci_mb_s: tuple[float | None, float | None] | None
    mb_per_op: float | None


class Report(_Model):
    """The report.json document."""

    schema_version: int
    run_dir: str
    overall_success: bool
    legacy_note: str = ""  # the seed's keys beside it do not decide (sandbox.report.common)
    exit_code: Literal[0, 1, 2, 3]
    status: Literal["PASS", "WARN", "FAIL", "INCOMPLETE", "INCONCLUSIVE"]
    memory_trend: MemoryTrend
    memory_stats: MemoryStats
    recommendations: list[str]
    process_cleanup: ProcessCleanup
    file_cleanup: FileCleanup
    escapes: list[Any]
    cleanup_successful: bool | None
    issues_found: list[str]
    cleanup_verified: bool
    after_teardown: dict[str, Any] | None
    run_user: dict[str, Any] | str | None
    workload_exit: dict[str, Any] | None
    verdict: Verdict
    file_cache_trend: Trend | None
    resource_trends: dict[str, Trend | None]
    findings: list[Finding]
    host: dict[str, Any] | None
    backend: dict[str, Any] | None
    config: dict[str, Any] | None
    sample_source: str | None
    duration_s: float | None
    n_samples: int
    oom_kills: int
    operations: Operations
    alerts: list[dict[str, Any]]
    events_summary: dict[str, Any] | None
    roles: list[Role]


def json_schema() -> dict[str, Any]:
    """The JSON Schema of report.json (what docs/report.schema.json holds)."""
    schema = Report.model_json_schema()
    schema["$id"] = f"https://sandbox.invalid/report.schema.v{SCHEMA_VERSION}.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


if __name__ == "__main__":
    sys.stdout.write(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
