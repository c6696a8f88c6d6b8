"""Thresholds, severity, findings per check, the exit-code mapping and recommendations.

Exit codes live in ONE place, :func:`exit_code`:
0 no issue; 1 critical; 2 warnings; 3 incomplete (the run's cleanup was not verified: harness
killed, disk full). Bad input and hosts that cannot make a run are raised as HarnessError
(also 3) before any analysis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sandbox.analysis.budget import CRITICAL_MB_S, DEFAULT_BUDGET_MB_S
from sandbox.analysis.checks import TRENDS
from sandbox.analysis.result import AnalysisResult, Finding
from sandbox.analysis.trend import TrendParams
from sandbox.model.cleanup import ProcessRecord

_TREND = TrendParams()
#: ``incomplete``: the run cannot be judged (exit 3, whatever else was found).
LEVELS = ("incomplete", "critical", "warning", "note")


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds (MB/s as in the seed); the trend test's default to trend.TrendParams."""

    minor_mb_s: float = _TREND.min_rate
    warning_mb_s: float = DEFAULT_BUDGET_MB_S
    critical_mb_s: float = CRITICAL_MB_S
    alpha: float = _TREND.alpha
    min_samples: int = _TREND.min_samples
    min_steady_s: float = _TREND.min_steady_s
    max_failed_fraction: float = 0.05  # more failed operations than this is critical

    def trend_params(self) -> TrendParams:
        """The trend test's rules with these thresholds."""
        return TrendParams(min_rate=self.minor_mb_s, inconclusive_rate=self.warning_mb_s,
                           alpha=self.alpha, min_samples=self.min_samples,
                           min_steady_s=self.min_steady_s)


def _name_processes(processes: list[ProcessRecord], most: int = 5) -> str:
    """``pid 123 (sleep), pid 456 (chromium)`` for the first few processes."""
    names = [p.name for p in processes[:most]]
    return ", ".join(names) + (f" and {len(processes) - most} more" if len(processes) > most
                               else "")


def _listening(processes: list[ProcessRecord]) -> str:
    """``; still listening on 127.0.0.1:8080 (pid 123)`` for ports left bound."""
    ports = [f"{sock.laddr} (pid {p.pid})" for p in processes for sock in p.sockets
             if sock.listening]
    return f"; still listening on {', '.join(ports[:5])}" if ports else ""


def _rate(mb_s: float | None) -> str:
    if mb_s is None:
        return "n/a MB/s"
    return f"{mb_s:.3f} MB/s ({mb_s * 3600:.0f} MB/h)"


def _memory(r: AnalysisResult, fail_on_inconclusive: bool) -> list[Finding]:
    """The memory verdict: over the budget is critical; inconclusive a note (critical with
    ``--fail-on-inconclusive``); growth that is real but within the budget a note."""
    v = r.verdict
    if v.outcome == "over":
        lo, hi = v.slope_ci_mb_s or (math.nan, math.nan)
        return [Finding("trend", "critical",
                        f"{v.signal} grows {_rate(v.slope_mb_s)}, over the budget {v.budget} "
                        f"(95% bounds {lo:.3f}..{hi:.3f} MB/s; {v.severity})"
                        + _where(r))]
    if v.outcome == "inconclusive":
        level = "critical" if fail_on_inconclusive else "note"
        return [Finding("trend", level, f"INCONCLUSIVE against the budget {v.budget}: "
                        + ("; ".join(v.reasons) or "no verdict"))]
    out = []
    if v.slope_ci_mb_s and v.slope_ci_mb_s[0] > 0:
        out.append(Finding("trend", "note", f"{v.signal} grows {_rate(v.slope_mb_s)}, within "
                           f"the budget {v.budget}"))
    out += [Finding("trend", "note", f"{v.signal} shifted {s['size']:+.0f} MB once at "
                    f"t={s['t']:.0f} s (a step, not growth)")
            for s in v.steps if abs(s["size"]) >= 10]
    return out


def _where(r: AnalysisResult) -> str:
    """``; grows most: renderer +0.21 MB/s (PSS)``: the role whose memory grows fastest
    over the budget, when roles were sampled."""
    over = [g for g in r.roles if g.outcome == "over"]
    if not over:
        return ""
    return "; grows most: " + ", ".join(f"{g.role} {_rate(g.rate_mb_s)} ({g.measure.upper()})"
                                        for g in over[:2])


def _limits_hit(r: AnalysisResult) -> list[Finding]:
    """The slice's limits at work: OOM kills (memory.max) and refused forks (pids.max)."""
    limits = r.run.limits or {}
    out = []
    if r.oom_kills:
        memory = (limits.get("memory_max") or {}).get("value")
        at = f" at memory.max {memory / 2**30:.2f} GiB" if isinstance(memory, int) else ""
        out.append(Finding("workload", "warning", f"{r.oom_kills} OOM kill(s) in the slice{at}"))
    pids = limits.get("pids_max") or {}
    if pids.get("hits"):
        out.append(Finding("workload", "warning",
                           f"the process limit was hit: {pids['hits']} fork(s) refused at "
                           f"pids.max {pids.get('value')} ({pids.get('source')}; "
                           "--pids-max N or max lifts it)"))
    return out


def judge(r: AnalysisResult, th: Thresholds, *, fail_on_inconclusive: bool = False
          ) -> list[Finding]:
    """Every finding of a run, with its level. This is the whole policy of the exit code."""
    out = _memory(r, fail_on_inconclusive)
    for name, tr in r.resource_trends.items():
        if tr.label == "leak":
            slope = tr.slope or 0.0
            trend, check = TRENDS[name]
            out.append(Finding(check, "warning", f"{trend.words} keep growing: "
                               f"{slope:.3g}/s ({slope * 3600:.0f}/h)"))
    out += _workload_end(r)
    out += _limits_hit(r)
    # Crossing the user's working-set threshold is a warning; the sampler's 30 s growth-rate
    # alerts are live hints that a GC sawtooth trips on clean runs: kept in alerts.jsonl and
    # the run log, not findings (the budget verdict above decides).
    crossings = [a for a in r.alerts if a.kind != "growth_rate"]
    if crossings:
        out.append(Finding("trend", "warning",
                           f"{len(crossings)} working-set threshold alert(s) during the run"))
    c = r.cleanup
    out += _incomplete(r)
    if c.escapes:
        out.append(Finding("escapes", "critical",
                           f"{len(c.escapes)} process(es) escaped the run's cgroup: "
                           f"{_name_processes(c.escapes)}"))
    if c.orphans or c.process_leak_detected:
        out.append(Finding("orphans", "warning",
                           f"{len(c.orphans)} process(es) outlived the workload: "
                           f"{_name_processes(c.orphans)}" + _listening(c.orphans)))
    if c.leftover_files or c.file_leak_detected:
        paths = ", ".join(f.described for f in c.leftover_files[:5])
        out.append(Finding("files", "warning",
                           f"{len(c.leftover_files)} temporary file(s) left behind: "
                           f"{paths}"))
    if c.available and c.cleanup_successful is False and not (c.orphans or c.escapes
                                                                or c.leftover_files):
        out.append(Finding("files", "warning", "verifier reports cleanup not successful"))
    ops = r.operations
    if ops.failed:
        level = "critical" if ops.failed_fraction > th.max_failed_fraction else "warning"
        out.append(Finding("operations", level,
                           f"{ops.failed} of {ops.count} operations failed"))
    return out


def _workload_end(r: AnalysisResult) -> list[Finding]:
    """A workload that ended by itself with a non-zero status or a signal crashed."""
    end = r.run.workload_exit
    if not isinstance(end, dict) or end.get("ended_by") != "itself":
        return []
    if end.get("signal") == "SIGKILL" and r.oom_kills:
        return [Finding("workload", "critical",
                        "the workload was killed by the kernel's OOM killer (SIGKILL): the "
                        "slice's memory limit was reached")]
    if end.get("signal"):
        return [Finding("workload", "critical",
                        f"the workload was killed by {end['signal']} before its end")]
    if end.get("returncode"):
        return [Finding("workload", "critical",
                        f"the workload exited with status {end['returncode']}")]
    return []


def _incomplete(r: AnalysisResult) -> list[Finding]:
    """Why the run cannot be judged: its cleanup was never verified (the harness was killed),
    or the disk filled up during the run."""
    out = []
    if not r.cleanup.available:
        out.append(Finding("cleanup", "incomplete",
                           "INCOMPLETE: no cleanup.json, the run's cleanup was never verified "
                           "(harness killed?); run sandbox cleanup"))
    if r.run.disk_error:
        out.append(Finding("cleanup", "incomplete",
                           f"INCOMPLETE: {r.run.disk_error} (the run ended early)"))
    return out


def exit_code(findings: list[Finding]) -> int:
    """0 no issue; 1 any critical finding; 2 any warning; 3 incomplete. Notes (inconclusive,
    step) never fail."""
    levels = {f.level for f in findings}
    if "incomplete" in levels:
        return 3
    if "critical" in levels:
        return 1
    return 2 if "warning" in levels else 0


def recommendations(r: AnalysisResult) -> list[str]:
    """Plain-word advice from the findings (the seed's list as a start)."""
    v, out = r.verdict, []
    per_op = f", {v.mb_per_op:.2f} MB per operation" if v.mb_per_op is not None else ""
    if v.outcome == "over":
        advice = ("implement browser recycling, close pages and contexts, review DOM reference "
                  "cleanup" if v.workload_kind == "browser" else "review what the workload "
                  "keeps between operations (caches, lists, handles)")
        out.append(f"Memory leak: {v.signal} grows {v.slope_mb_s:.3f} MB/s{per_op} after warm-up,"
                   f" over the budget {v.budget} - {advice}")
    elif v.outcome == "inconclusive":
        longer = (f": run about {v.minutes_needed:g} min" if v.minutes_needed
                  else ": run longer")
        out.append(f"Memory verdict inconclusive against the budget {v.budget}{longer} (the "
                   "interval shrinks with the run's length to the power 1.5)")
    elif v.slope_ci_mb_s and v.slope_ci_mb_s[0] > 0:
        out.append("Continue monitoring - memory grows within the budget "
                   f"({(v.slope_mb_s or 0.0) * 3600:.0f} MB/h{per_op})")
    elif v.label == "step":
        out.append("Memory shifted once and then stayed flat: a one-time allocation, not a leak")
    if r.file_trend is not None and r.file_trend.label == "leak":
        out.append(f"Page cache grew {r.file_trend.slope:.3f} MB/s (files written or read); "
                   "not counted as a leak")
    if r.cleanup.escapes:
        out.append("Processes escaped the sandbox cgroup - run the workload as an unprivileged "
                   "user so it cannot move itself out")
    browser = r.run.workload == "screenshot"
    if r.cleanup.orphans:
        out.append("Review browser termination procedures and add timeouts: processes outlived "
                   "the workload" if browser else "Review the workload's process termination "
                   "and add timeouts: processes outlived the workload")
    if r.cleanup.leftover_files:
        out.append("Remove browser profiles and artifacts on exit: temporary files were left"
                   if browser else "Remove temporary files on exit: temporary files were left")
    if r.operations.failed:
        out.append("Review screenshot service stability, check network connectivity, verify "
                   "browser initialization: operations failed")
    if not out:
        out.append("No memory leak or cleanup issue detected")
    return out
