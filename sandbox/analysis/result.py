"""What an analysis gives: the memory verdict, the findings and the AnalysisResult every report
reads (built by analysis.core, judged by analysis.verdict)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox.analysis.budget import BROWSER, DEFAULT_BUDGET, Z_BOUND
from sandbox.analysis.findings import OperationsSummary
from sandbox.analysis.legacy import LegacyTrend
from sandbox.analysis.roles import RoleGrowth
from sandbox.analysis.trend import TrendResult
from sandbox.model.alert import Alert
from sandbox.model.cleanup import CleanupFacts
from sandbox.model.run_info import RunInfo


@dataclass
class Finding:
    """One judged fact. ``level`` is critical, warning or note; ``check`` one of CHECKS."""

    check: str
    level: str
    message: str


@dataclass
class Verdict:
    """The memory verdict that decides the exit code: the floor's growth against the budget
    (analysis.budget). ``label``: leak (over budget), step (within, after a level shift),
    none (within) or inconclusive; ``outcome``: within, over or inconclusive."""

    label: str
    severity: str
    signal: str | None
    slope_mb_s: float | None
    slope_ci_mb_s: tuple[float, float] | None
    p_value: float | None
    detection_limit_mb_s: float | None
    mb_per_op: float | None
    warmup_cut_s: float | None
    change_points_s: list[float]
    steps: list[dict[str, float]]
    reasons: list[str]
    trend: TrendResult
    outcome: str = "inconclusive"
    budget: str = str(DEFAULT_BUDGET)
    budget_mb_s: float | None = None
    minutes_needed: float | None = None
    #: the workload kind whose start-up was cut (browser, command, test body)
    workload_kind: str = BROWSER.kind
    #: what the rate was measured on: "floors" (each window's minimum) or "settle points"
    measured_on: str = "floors"
    settle_points: int = 0  # settle samples in the judged window
    #: --until-decided: the bounds' z over all looks, and the look that decided (s)
    z: float = float(Z_BOUND)
    decided_at_s: float | None = None


@dataclass
class AnalysisResult:
    """Everything the reports show; built by :func:`analyze`."""

    run_dir: str
    run: RunInfo
    legacy: LegacyTrend
    verdict: Verdict
    file_trend: TrendResult | None
    resource_trends: dict[str, TrendResult]
    operations: OperationsSummary
    cleanup: CleanupFacts
    alerts: list[Alert]
    events_summary: dict[str, Any]
    oom_kills: int
    kernel_peak_mb: float | None
    duration_s: float
    n_samples: int
    sample_source: str | None
    #: downsampled, for plots (None where a sample had no value)
    series: dict[str, list[float | None]] = field(default_factory=dict)
    roles: list[RoleGrowth] = field(default_factory=list)  # per process role, fastest first
    role_pss_mb: dict[str, list[float]] = field(default_factory=dict)  # "t" and role -> PSS
    #: the workload's window (workload_window), s; None where unbounded
    workload_window_s: tuple[float | None, float | None] = (None, None)
    findings: list[Finding] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)
    exit_code: int = 0

    @property
    def backend_line(self) -> str:
        """One line naming how the run was watched, e.g. ``hybrid cgroup, ebpf tracer``."""
        backend = self.run.backend
        if not isinstance(backend, dict):
            return "unknown backend"
        tracer = backend.get("tracer")
        if isinstance(tracer, dict):
            lost = f", {tracer['lost_events']} lost" if tracer.get("lost_events") else ""
            tracer = f"{tracer.get('backend')} tracer ({tracer.get('events', 0)} events{lost})"
        parts = [f"{backend.get('cgroup', '?')} cgroup", f"{backend.get('sampler', '?')} sampler",
                 tracer or "no tracer"]
        return ", ".join(parts)

    @property
    def label(self) -> str:
        """The run's name in reports and metrics: its scenario, or its command's name."""
        config = self.run.config
        return config.scenario or (config.command[0].rsplit("/", 1)[-1] if config.command
                                   else "run")

    @property
    def hostname(self) -> str:
        """The host the run was made on, as run.json recorded it."""
        return str(self.run.host.get("hostname") or "unknown")

    @property
    def status(self) -> str:
        """PASS, WARN, FAIL, INCOMPLETE, or INCONCLUSIVE: nothing failed but the memory
        verdict could not tell (never shown as PASS)."""
        if self.exit_code == 0 and self.verdict.outcome == "inconclusive":
            return "INCONCLUSIVE"
        return {0: "PASS", 1: "FAIL", 2: "WARN", 3: "INCOMPLETE"}.get(self.exit_code, "FAIL")

    @property
    def overall_success(self) -> bool:
        """The seed's ``overall_success``, following the verdict: PASS only (no finding, and
        memory within the budget; an inconclusive run is no success)."""
        return self.status == "PASS"
