"""analyze(): one RunData in, one AnalysisResult out (the single source of every report)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from sandbox.analysis.budget import (
    COMMAND,
    CRITICAL_MB_S,
    DEFAULT_BUDGET,
    MIN_WINDOWS,
    PAGE,
    TEST_BODY,
    Z_BOUND,
    Budget,
    BudgetVerdict,
    Growth,
    Startup,
    browser_startup,
    judge_budget,
    judge_memory,
    parse_budget,
    window_for,
)
from sandbox.analysis.checks import (
    DOM_NODES,
    FULL_RECORD_SHARE,
    JS_HEAP_MB,
    PROCESSES,
    TMP_FILES,
    TMP_MB,
    TRENDS,
)
from sandbox.analysis.findings import summarize_events, summarize_operations
from sandbox.analysis.legacy import MB, legacy_trend
from sandbox.analysis.result import AnalysisResult, Verdict
from sandbox.analysis.roles import count_totals, role_growth, role_series
from sandbox.analysis.trend import TrendResult, trend_test
from sandbox.analysis.verdict import Thresholds, exit_code, judge, recommendations
from sandbox.model.operation import JsHeapMeasurement, Operation
from sandbox.model.role_sweep import RoleSweep
from sandbox.runreader import RunData

#: Robust-verdict signal, in order of preference (never memory.current with its page cache;
#: nor the working set while the full records have anon: its active file pages grew up to
#: 0.017 MB/s faster than anon in clean corpus runs with reused contexts).
VERDICT_SIGNALS = ("anon", "working_set", "uss")
#: Series of the seed's legacy fields, in order of preference.
LEGACY_SIGNALS = ("memory_current", "working_set", "uss", "anon")


def _pick(samples: dict[str, np.ndarray], names: tuple[str, ...],
          share: float = FULL_RECORD_SHARE) -> str | None:
    """First series with at least ``share`` of finite values (default: enough for a series
    the sampler reads on its full records only)."""
    for name in names:
        arr = samples.get(name)
        if arr is not None and len(arr) and np.mean(np.isfinite(arr)) >= share:
            return name
    return None


def _downsample(samples: dict[str, np.ndarray], max_points: int = 600
                ) -> dict[str, list[float | None]]:
    """Plot series (t s, memory MB, pids) thinned to at most ``max_points`` points."""
    t = samples.get("t", np.empty(0))
    step = max(1, int(np.ceil(len(t) / max_points)))
    out: dict[str, list[float | None]] = {"t": t[::step].round(3).tolist()}
    for name in ("working_set", "anon", "file", "memory_current"):
        if name in samples and np.isfinite(samples[name]).any():
            out[name] = [None if not np.isfinite(v) else round(v / MB, 3)
                         for v in samples[name][::step]]
    pids = _pick(samples, ("nprocs", "pids_current"))
    if pids:
        out["pids"] = [None if not np.isfinite(v) else float(v)
                       for v in samples[pids][::step]]
    return out


def _role_pss(sweeps: list[RoleSweep], window: tuple[float, float]
              ) -> dict[str, list[float]]:
    """PSS per role (MB) for the plot: "t" and one list per role."""
    t, series = role_series(sweeps, window)
    if not len(t):
        return {}
    return {"t": t.round(3).tolist(),
            **{name: (v["pss"] / MB).round(3).tolist() for name, v in series.items()}}


def _as_trend(growth: Growth | None, label: str, reasons: list[str]) -> TrendResult:
    """A floor-growth measurement as a TrendResult (what plots, compare and report.json
    read)."""
    trend = TrendResult(label=label, reasons=list(reasons))
    if growth is None:
        return trend
    g = growth
    trend.slope, trend.slope_ci, trend.ols_slope, trend.slope_se = g.rate, g.ci, g.rate, g.se
    trend.p_value = float(stats.norm.sf(g.rate / g.se)) if g.se > 0 else float(g.rate <= 0)
    trend.detection_limit = 2 * g.z * g.se
    trend.warmup_cut_s, trend.test_start_s, trend.test_end_s = g.start_s, g.start_s, g.end_s
    trend.change_points_s = [s["t"] for s in g.steps]
    trend.steps, trend.noise_sd, trend.fit_line = g.steps, g.noise_mb, g.fit_line
    trend.n_test_samples = g.n_windows
    return trend


def _resource_trends(t: np.ndarray, s: dict[str, np.ndarray], startup: Startup
                     ) -> dict[str, TrendResult]:
    """Process count and temp size/files (analysis.counts), with their thresholds in
    analysis.checks."""
    out: dict[str, TrendResult] = {}
    # processes, not pids.current's tasks (a thread leak is the threads check's)
    pids = _pick(s, ("nprocs", "pids_current"))
    if pids:
        out["processes"] = PROCESSES.growth(t, s[pids], startup)
    if _pick(s, ("tmp_bytes",)):
        out["tmp_mb"] = TMP_MB.growth(t, s["tmp_bytes"] / MB, startup)
    if _pick(s, ("tmp_files",)):
        out["tmp_files"] = TMP_FILES.growth(t, s["tmp_files"], startup)
    return out


def _count_trends(sweeps: list[RoleSweep], window: tuple[float, float], startup: Startup
                  ) -> dict[str, TrendResult]:
    """Open file descriptors and threads of the whole slice (roles.jsonl), as processes."""
    t, totals = count_totals(sweeps, window)
    if len(t) < 2:
        return {}
    return {name: TRENDS[name][0].growth(t, values, startup) for name, values in totals.items()}


def _js_heap_trends(measured: list[JsHeapMeasurement], window: tuple[float, float]
                    ) -> dict[str, TrendResult]:
    """The JS heap (MB) and DOM nodes of the long-lived pages after a forced GC (--js-heap),
    with their thresholds in analysis.checks; a page's start-up only is cut (a forced GC
    leaves no browser start-up in the heap)."""
    inside = [m for m in measured if window[0] <= m.t <= window[1]]
    if len(inside) < 2:
        return {}
    t = np.asarray([m.t for m in inside], float)
    heap = np.asarray([_or_nan(m.used_bytes) for m in inside], float) / MB
    nodes = np.asarray([_or_nan(m.dom_nodes) for m in inside], float)
    return {"js_heap_mb": JS_HEAP_MB.growth(t, heap, PAGE),
            "dom_nodes": DOM_NODES.growth(t, nodes, PAGE)}


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else value


def operation_interval(operations: list[Operation]) -> float | None:
    """Median seconds between operation starts (None with fewer than 3 operations)."""
    starts = sorted(o.t for o in operations if o.t is not None)
    return float(np.median(np.diff(starts))) if len(starts) >= 3 else None


def run_budget(run: RunData, budget: Budget | None) -> Budget:
    """The budget given, else the one the run was made with (run.json), else the seed's."""
    if budget is not None:
        return budget
    try:
        return parse_budget(run.run.config.budget)
    except ValueError:
        return DEFAULT_BUDGET


@dataclass
class MemoryJudgement:
    """The memory verdict of a run and what it was judged on."""

    signal: str | None
    verdict: BudgetVerdict
    startup: Startup
    op_interval: float | None
    settle_points: int  # settle samples in the judged window
    measured_on: str  # floors or settle points
    z: float
    decided_at_s: float | None


def _decision(run: RunData) -> tuple[float | None, float | None]:
    """The sequential boundary and the deciding look (s; None: judged on the whole run) of
    an --until-decided run, from its run.json; a fixed-length run: (None, None)."""
    decision = run.run.decision or {}
    z, at = decision.get("z"), decision.get("decided_at_s")
    z = float(z) if isinstance(z, int | float) and 1 < z < 10 else None
    at = float(at) if isinstance(at, int | float) and decision.get("outcome") in (
        "within", "over") else None
    return z, at


def judge_run_memory(run: RunData, budget: Budget | None = None, *,
                     critical_mb_s: float = CRITICAL_MB_S, upto_s: float | None = None,
                     boundary: float | None = None) -> MemoryJudgement:
    """THE memory judgement of a run, as every reader and the runner's looks reach it: the
    workload's window of samples (up to ``upto_s``, default: the deciding look of an
    --until-decided run), judged on its settle points when it has as many as its floors'
    windows (and 8), else on its floors. Its bounds: the single-look z of a fixed-length
    run, or a sequential one's ``boundary`` (default: the run's own plan's)."""
    run_boundary, decided = _decision(run)
    boundary = run_boundary if boundary is None else boundary
    upto = decided if upto_s is None else upto_s
    operations = [o for o in run.operations
                  if upto is None or (o.end is not None and o.end <= upto)]
    roles = [r for r in run.roles if upto is None or r.t <= upto]
    lo, hi = workload_window(replace(run, operations=operations))
    if upto is not None:
        hi = min(hi, upto)
    t_all = run.samples.get("t", np.empty(0))
    inside = (t_all >= lo) & (t_all <= hi)
    s = {name: values[inside] for name, values in run.samples.items()}
    t = s.get("t", np.empty(0))
    op_interval = operation_interval(operations)
    the_budget = run_budget(run, budget)
    startup = workload_startup(replace(run, roles=roles))
    z = float(Z_BOUND) if boundary is None else boundary
    run_s = float(t[-1] - t[0]) if len(t) else None
    signal = _pick(s, VERDICT_SIGNALS)
    settled = np.isfinite(s["settle"]) if "settle" in s else np.zeros(len(t), bool)
    if signal:
        y = s[signal] / MB
        settled &= np.isfinite(y)
        memory = None
        # Settle points judge the run when they are at least as many as the floors' windows:
        # fewer points of a cleaner series do not tell more (the floor's wander, not noise,
        # bounds a browser run: docs/statistics.md).
        floors = run_s / window_for(op_interval, run_s) if run_s else 0.0
        if settled.sum() >= max(MIN_WINDOWS, floors):
            memory = judge_memory(t[settled], y[settled], the_budget, op_interval_s=op_interval,
                                  startup=startup, run_s=run_s, critical_mb_s=critical_mb_s,
                                  z=z, as_floors=True)
        if memory is not None and memory.growth is not None:
            on = "settle points"
        else:
            memory = judge_memory(t, y, the_budget, op_interval_s=op_interval,
                                  startup=startup, run_s=run_s, critical_mb_s=critical_mb_s, z=z)
            on = "floors"
    else:
        memory = judge_budget(None, the_budget,
                              ops_per_s=1 / op_interval if op_interval else None,
                              why_none="no anon, working-set or USS series in samples.jsonl",
                              startup=startup, z=z)
        on = "floors"
    return MemoryJudgement(signal, memory, startup, op_interval, int(settled.sum()), on, z,
                           decided)


def _verdict(judged: MemoryJudgement) -> Verdict:
    """The Verdict of a budget judgement (with a TrendResult for plots and compare)."""
    bv, signal, op_interval, startup = (judged.verdict, judged.signal, judged.op_interval,
                                        judged.startup)
    g: Growth | None = bv.growth
    label = {"over": "leak", "inconclusive": "inconclusive"}.get(bv.outcome, "none")
    if label == "none" and g is not None and any(s["size"] > 0 for s in g.steps):
        label = "step"
    trend = _as_trend(g, label, bv.reasons)
    if g is None:
        return Verdict(label, "none", signal, None, None, None, None, None, None, [], [],
                       list(bv.reasons), trend, bv.outcome, bv.budget, bv.budget_mb_s,
                       bv.minutes_needed, startup.kind, judged.measured_on,
                       judged.settle_points, judged.z, judged.decided_at_s)
    return Verdict(
        label=label, severity=bv.severity, signal=signal, slope_mb_s=g.rate, slope_ci_mb_s=g.ci,
        p_value=trend.p_value, detection_limit_mb_s=trend.detection_limit,
        mb_per_op=g.rate * op_interval if op_interval else None, warmup_cut_s=g.start_s,
        change_points_s=trend.change_points_s, steps=g.steps, reasons=list(bv.reasons),
        trend=trend, outcome=bv.outcome, budget=bv.budget, budget_mb_s=bv.budget_mb_s,
        minutes_needed=bv.minutes_needed, workload_kind=startup.kind,
        measured_on=judged.measured_on, settle_points=judged.settle_points, z=judged.z,
        decided_at_s=judged.decided_at_s)


#: Process roles that only a browser has (sandbox.sampler.roles).
BROWSER_ROLES = frozenset({"browser", "renderer", "gpu", "network", "utility", "zygote",
                           "crashpad"})


def workload_startup(run: RunData) -> Startup:
    """How the run's workload starts: a pytest test body; the screenshot workload, or a
    command whose role sweeps saw a browser (or that had no sweeps: the longer cut is the
    safe one), is a browser, whose start-up is shorter when its Node was given a small
    young generation; a command without one is a plain command."""
    if run.run.config.test:
        return TEST_BODY
    if run.run.workload == "command" and run.roles and not any(
            BROWSER_ROLES & s.roles.keys() for s in run.roles):
        return COMMAND
    return browser_startup((run.run.env or {}).get("node_semi_space_mb"))


def workload_window(run: RunData) -> tuple[float, float]:
    """The part of the run the workload was working: from its first operation's start to its
    last operation's end (screenshots), else until the runner stopped it (``workload_end_t``
    in run.json). Browser start-up before it and teardown after it are not the workload's
    steady state, and the seed's initial/final values would otherwise read an empty slice."""
    starts = [o.t for o in run.operations if o.t is not None]
    ends = [o.end for o in run.operations if o.end is not None]
    lo = min(starts) if starts else -np.inf
    end_t = run.run.workload_end_t
    hi = max(ends) if ends else (np.inf if end_t is None else end_t)
    return lo, hi


def analyze(run: RunData, thresholds: Thresholds | None = None, *,
            budget: Budget | None = None, fail_on_inconclusive: bool | None = None
            ) -> AnalysisResult:
    """Analyse one run: seed fields, memory growth against the budget, resource trends,
    findings, exit code. Trends are judged on the samples inside :func:`workload_window`;
    plots show them all. ``budget`` and ``fail_on_inconclusive`` default to the run's own
    settings (run.json), then to the seed's 0.1 MB/s and False."""
    th = thresholds or Thresholds()
    if fail_on_inconclusive is None:
        fail_on_inconclusive = run.run.config.fail_on_inconclusive
    lo, hi = workload_window(run)
    t_all = run.samples.get("t", np.empty(0))
    inside = (t_all >= lo) & (t_all <= hi)
    s = {name: values[inside] for name, values in run.samples.items()}
    t = s.get("t", np.empty(0))
    mem = th.trend_params()

    legacy_name = _pick(s, LEGACY_SIGNALS)
    legacy = legacy_trend(t, s[legacy_name] if legacy_name else np.full(len(t), np.nan),
                          legacy_name)

    op_interval = operation_interval(run.operations)
    the_budget = run_budget(run, budget)
    startup = workload_startup(run)
    verdict = _verdict(judge_run_memory(run, the_budget, critical_mb_s=th.critical_mb_s))
    file_trend = trend_test(t, s["file"] / MB, mem) if _pick(s, ("file",)) else None
    peak = run.samples.get("peak")
    kernel_peak = float(np.nanmax(peak)) / MB \
        if peak is not None and bool(np.isfinite(peak).any()) else None
    oom = run.samples.get("oom_kill")
    result = AnalysisResult(
        run_dir=str(run.path),
        run=run.run,
        legacy=legacy,
        verdict=verdict,
        file_trend=file_trend,
        resource_trends={**_resource_trends(t, s, startup),
                         **_count_trends(run.roles, (lo, hi), startup),
                         **_js_heap_trends(run.js_heap, (lo, hi))},
        operations=summarize_operations(run.operations),
        cleanup=run.cleanup,
        alerts=run.alerts,
        events_summary=summarize_events(run.events),
        oom_kills=max(int(np.nanmax(oom)) if oom is not None and np.isfinite(oom).any() else 0,
                      run.cleanup.oom_kills or 0),
        kernel_peak_mb=kernel_peak,
        duration_s=float(t_all[-1] - t_all[0]) if len(t_all) else 0.0,
        n_samples=len(t_all),
        sample_source=run.sample_source,
        series=_downsample(run.samples),
        roles=role_growth(run.roles, (lo, hi), op_interval, the_budget, startup)
        if run.roles else [],
        role_pss_mb=_role_pss(run.roles, (lo, hi)),
        workload_window_s=(float(lo) if np.isfinite(lo) else None,
                           float(hi) if np.isfinite(hi) else None),
    )
    result.findings = judge(result, th, fail_on_inconclusive=fail_on_inconclusive)
    result.recommendations = recommendations(result)
    result.exit_code = exit_code(result.findings)
    return result
