"""analyze(): one RunData in, one AnalysisResult out (the single source of every report)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sandbox.analysis.findings import (
    CleanupFindings,
    OperationsSummary,
    cleanup_findings,
    summarize_events,
    summarize_operations,
)
from sandbox.analysis.legacy import MB, LegacyTrend, legacy_trend
from sandbox.analysis.trend import TrendParams, TrendResult, trend_test
from sandbox.analysis.verdict import (
    Finding,
    Thresholds,
    exit_code,
    judge,
    recommendations,
    severity,
)
from sandbox.runreader import RunData

#: Robust-verdict signal, in order of preference (never memory.current with its page cache).
VERDICT_SIGNALS = ("anon", "working_set", "uss")
#: Series of the seed's legacy fields, in order of preference.
LEGACY_SIGNALS = ("memory_current", "working_set", "uss", "anon")


@dataclass
class Verdict:
    """The robust leak verdict that decides the exit code."""

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


@dataclass
class AnalysisResult:
    """Everything the reports show; built by :func:`analyze`."""

    run_dir: str
    run: dict[str, Any]
    legacy: LegacyTrend
    verdict: Verdict
    file_trend: TrendResult | None
    resource_trends: dict[str, TrendResult]
    operations: OperationsSummary
    cleanup: CleanupFindings
    alerts: list[dict[str, Any]]
    events_summary: dict[str, Any]
    oom_kills: int
    kernel_peak_mb: float | None
    duration_s: float
    n_samples: int
    sample_source: str | None
    series: dict[str, list[float]] = field(default_factory=dict)  # downsampled, for plots
    findings: list[Finding] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)
    exit_code: int = 0

    @property
    def backend_line(self) -> str:
        """One line naming how the run was watched, e.g. ``hybrid cgroup, ebpf tracer``."""
        backend = self.run.get("backend")
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
    def overall_success(self) -> bool:
        """The seed's ``overall_success``: no critical finding and no warning."""
        return self.exit_code == 0


def _pick(samples: dict[str, np.ndarray], names: tuple[str, ...]) -> str | None:
    """First series with at least 80% finite values."""
    for name in names:
        arr = samples.get(name)
        if arr is not None and len(arr) and np.mean(np.isfinite(arr)) >= 0.8:
            return name
    return None


def _downsample(samples: dict[str, np.ndarray], max_points: int = 600) -> dict[str, list[float]]:
    """Plot series (t s, memory MB, pids) thinned to at most ``max_points`` points."""
    t = samples.get("t", np.empty(0))
    step = max(1, int(np.ceil(len(t) / max_points)))
    out: dict[str, list[float]] = {"t": t[::step].round(3).tolist()}
    for name in ("working_set", "anon", "file", "memory_current"):
        if name in samples and np.isfinite(samples[name]).any():
            out[name] = [None if not np.isfinite(v) else round(v / MB, 3)  # type: ignore[misc]
                         for v in samples[name][::step]]
    pids = _pick(samples, ("nprocs", "pids_current"))
    if pids:
        out["pids"] = [None if not np.isfinite(v) else float(v)  # type: ignore[misc]
                       for v in samples[pids][::step]]
    return out


def _mb_per_op(tr: TrendResult, operations: list[dict[str, Any]]) -> float | None:
    """Growth per operation over the tested steady state (slope x span / operations in it)."""
    if tr.slope is None or tr.test_start_s is None or tr.test_end_s is None:
        return None
    lo, hi = tr.test_start_s, tr.test_end_s
    n_ops = sum(1 for o in operations if isinstance(o.get("t"), int | float) and lo <= o["t"] <= hi)
    return tr.slope * (hi - lo) / n_ops if n_ops else None


def _resource_trends(t: np.ndarray, s: dict[str, np.ndarray], th: Thresholds
                     ) -> dict[str, TrendResult]:
    """Same test on process count and temp-dir size/files (counts: 1 per 5 min is growth)."""
    counts = TrendParams(min_rate=1 / 300, inconclusive_rate=1 / 60, alpha=th.alpha,
                         min_samples=th.min_samples, min_steady_s=th.min_steady_s, resolution=0.5)
    sizes = TrendParams(min_rate=th.minor_mb_s, inconclusive_rate=th.warning_mb_s, alpha=th.alpha,
                        min_samples=th.min_samples, min_steady_s=th.min_steady_s, resolution=0.01)
    out: dict[str, TrendResult] = {}
    pids = _pick(s, ("nprocs", "pids_current"))
    if pids:
        out["processes"] = trend_test(t, s[pids], counts)
    if _pick(s, ("tmp_bytes",)):
        out["tmp_mb"] = trend_test(t, s["tmp_bytes"] / MB, sizes)
    if _pick(s, ("tmp_files",)):
        out["tmp_files"] = trend_test(t, s["tmp_files"], counts)
    return out


def workload_window(run: RunData) -> tuple[float, float]:
    """The part of the run the workload was working: from its first operation's start to its
    last operation's end (screenshots), else until the runner stopped it (``workload_end_t``
    in run.json). Browser start-up before it and teardown after it are not the workload's
    steady state, and the seed's initial/final values would otherwise read an empty slice."""
    starts = [o["t"] for o in run.operations if isinstance(o.get("t"), int | float)]
    ends = [o["t"] + (o.get("latency_s") or 0.0) for o in run.operations
            if isinstance(o.get("t"), int | float)]
    lo = min(starts) if starts else -np.inf
    hi = max(ends) if ends else run.run.get("workload_end_t", np.inf)
    return lo, hi


def analyze(run: RunData, thresholds: Thresholds | None = None) -> AnalysisResult:
    """Analyse one run: seed fields, robust verdict, resource trends, findings, exit code.
    Trends are judged on the samples inside :func:`workload_window`; plots show them all."""
    th = thresholds or Thresholds()
    lo, hi = workload_window(run)
    t_all = run.samples.get("t", np.empty(0))
    inside = (t_all >= lo) & (t_all <= hi)
    s = {name: values[inside] for name, values in run.samples.items()}
    t = s.get("t", np.empty(0))
    mem = TrendParams(min_rate=th.minor_mb_s, inconclusive_rate=th.warning_mb_s, alpha=th.alpha,
                      min_samples=th.min_samples, min_steady_s=th.min_steady_s)

    legacy_name = _pick(s, LEGACY_SIGNALS)
    legacy = legacy_trend(t, s[legacy_name] if legacy_name else np.full(len(t), np.nan),
                          legacy_name)

    signal = _pick(s, VERDICT_SIGNALS)
    tr = trend_test(t, s[signal] / MB, mem) if signal else trend_test(t, np.full(len(t), np.nan))
    if signal is None:
        tr.reasons.append("no anon, working-set or USS series in samples.jsonl")
    verdict = Verdict(
        label=tr.label,
        severity=severity(tr.label, tr.slope, th),
        signal=signal,
        slope_mb_s=tr.slope,
        slope_ci_mb_s=tr.slope_ci,
        p_value=tr.p_value,
        detection_limit_mb_s=tr.detection_limit,
        mb_per_op=_mb_per_op(tr, run.operations),
        warmup_cut_s=tr.warmup_cut_s,
        change_points_s=tr.change_points_s,
        steps=tr.steps,
        reasons=tr.reasons,
        trend=tr,
    )
    file_trend = trend_test(t, s["file"] / MB, mem) if _pick(s, ("file",)) else None
    peak = run.samples.get("peak")
    has_peak = peak is not None and bool(np.isfinite(peak).any())
    kernel_peak = float(np.nanmax(peak)) / MB if has_peak else None
    oom = run.samples.get("oom_kill")
    result = AnalysisResult(
        run_dir=str(run.path),
        run=run.run,
        legacy=legacy,
        verdict=verdict,
        file_trend=file_trend,
        resource_trends=_resource_trends(t, s, th),
        operations=summarize_operations(run.operations),
        cleanup=cleanup_findings(run.cleanup),
        alerts=run.alerts,
        events_summary=summarize_events(run.events),
        oom_kills=int(np.nanmax(oom)) if oom is not None and np.isfinite(oom).any() else 0,
        kernel_peak_mb=kernel_peak,
        duration_s=float(t_all[-1] - t_all[0]) if len(t_all) else 0.0,
        n_samples=len(t_all),
        sample_source=run.sample_source,
        series=_downsample(run.samples),
    )
    result.findings = judge(result, th)
    result.recommendations = recommendations(result)
    result.exit_code = exit_code(result.findings)
    return result
