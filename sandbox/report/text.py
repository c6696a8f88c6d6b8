"""report.txt: what a person reads in a CI log (rich, no colours when not a tty). Off a
terminal (a CI log, report.txt) lines are not wrapped and tables not cut: a log viewer wraps."""

from __future__ import annotations

import io
import sys
from typing import TextIO

from rich.console import Console
from rich.table import Table

from sandbox.analysis import AnalysisResult
from sandbox.analysis.roles import RoleGrowth
from sandbox.limits import describe as describe_limits
from sandbox.report.common import (
    LEGACY_NOTE,
    decided,
    measured_on,
    minutes_needed,
    shows_operations,
)
from sandbox.untrusted import markup, rich_text

_STYLE = {"incomplete": "bold red", "critical": "bold red", "warning": "yellow", "note": "cyan"}
_STATUS = {"PASS": "[green]PASS[/]", "FAIL": "[bold red]FAIL (critical)[/]",
           "WARN": "[yellow]WARN[/]", "INCOMPLETE": "[bold red]INCOMPLETE[/]",
           "INCONCLUSIVE": "[yellow]INCONCLUSIVE[/]"}
#: Off a terminal: wide enough that no line is wrapped and no table column cut.
UNWRAPPED = 100_000


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "n/a" if x is None else format(x, spec)


def render(r: AnalysisResult, console: Console) -> None:
    """Print the summary onto ``console``."""
    v, lg, ops = r.verdict, r.legacy, r.operations
    if console.is_terminal:
        console.rule(rich_text(f"sandbox report - {r.run_dir}"))
    else:  # a rule as wide as an unwrapped console would be 100 000 dashes
        console.print(rich_text(f"── sandbox report - {r.run_dir} ──"))
    console.print(f"Result: {_STATUS[r.status]}  (exit {r.exit_code})"
                  f"   {r.n_samples} samples over {r.duration_s:.0f} s, {markup(r.backend_line)}, "
                  f"source {markup(r.sample_source or 'n/a')}")
    console.print(f"Limits: {describe_limits(r.run.limits or {})}", markup=False,
                  highlight=False)
    if env := r.run.env:
        passed = ", ".join(env.get("passed") or []) or "none"
        console.print(f"Environment: {'inherited' if env.get('inherited') else 'clean'}, "
                      f"{len(env.get('names') or [])} variables; passed by --env: {passed}",
                      markup=False, highlight=False)
    lo, hi = v.slope_ci_mb_s or (None, None)
    console.print(
        f"Memory: [bold]{v.outcome.upper()}[/] budget {markup(v.budget)} on "
        f"{markup(v.signal or 'no signal')} {measured_on(v)}: {_fmt(v.slope_mb_s)} MB/s "
        f"(95% bounds {_fmt(lo)}..{_fmt(hi)}), {_fmt(v.mb_per_op)} MB/op, warm-up cut "
        f"{_fmt(v.warmup_cut_s, '.0f')} s, label {markup(v.label)}, severity {markup(v.severity)}"
    )
    if (decision := r.run.decision) is not None:
        console.print(rich_text(f"  {decided(v, decision)}"))
    if v.outcome == "inconclusive":
        console.print(rich_text(f"  For a verdict: {minutes_needed(v)}"))
    if v.reasons:
        console.print(rich_text("  " + "; ".join(v.reasons)))
    console.print(
        f"Seed rule (OLS on {markup(lg.series)}): slope {lg.slope_mb_per_second:.4f} MB/s, "
        f"r={lg.correlation:.3f}, leak_severity {lg.leak_severity}; initial {lg.initial_mb:.1f}, "
        f"final {lg.final_mb:.1f}, peak {lg.peak_mb:.1f}, average {lg.average_mb:.1f} MB"
    )
    console.print(rich_text(f"  {LEGACY_NOTE}"))
    trends = Table("series", "label", "slope/s", "detection limit/s", title="Other trends")
    if r.file_trend is not None:
        trends.add_row("file cache (MB)", r.file_trend.label, _fmt(r.file_trend.slope),
                       _fmt(r.file_trend.detection_limit))
    for name, tr in r.resource_trends.items():
        trends.add_row(name, tr.label, _fmt(tr.slope, ".4f"), _fmt(tr.detection_limit, ".4f"))
    console.print(trends)
    if r.roles:
        console.print(roles_table(r))
    if shows_operations(r):
        console.print(f"Operations: {ops.count}, failed {ops.failed}; latency p50 "
                      f"{_fmt(ops.latency_p50_s)} s, p95 {_fmt(ops.latency_p95_s)} s, max "
                      f"{_fmt(ops.latency_max_s)} s")
    c = r.cleanup
    console.print(f"Cleanup: orphans {len(c.orphans)}, escapes {len(c.escapes)}, leftover files "
                  f"{len(c.leftover_files)}, successful {c.cleanup_successful}")
    if timing := (c.after_teardown or {}).get("timing"):
        console.print(f"Teardown: {timing['processes']} processes, kill to empty cgroup "
                      f"{timing['kill_to_empty_ms']:.0f} ms, to all reaped "
                      f"{timing['kill_to_reaped_ms']:.0f} ms")
    if r.findings:
        table = Table("level", "check", "finding", title="Findings")
        for f in r.findings:
            table.add_row(rich_text(f.level, _STYLE[f.level]), rich_text(f.check),
                          rich_text(f.message))
        console.print(table)
    console.print("Recommendations:")
    for rec in r.recommendations:
        console.print(rich_text(f"  - {rec}"))


ROLE_COLUMNS = ("role", "processes", "PSS MB first → last", "growth MB/h", "MB per op",
                "budget", "open fds", "threads")


def role_cells(g: RoleGrowth) -> list[str]:
    """One row of the per-role table (text and HTML); a growth judged on RSS (too few PSS
    sweeps) says so."""
    pss = ("–" if g.pss_first_mb is None or g.pss_last_mb is None
           else f"{g.pss_first_mb:.1f} → {g.pss_last_mb:.1f}")
    growth = _fmt(g.rate_mb_s * 3600 if g.rate_mb_s is not None else None, ".1f")
    if g.measure != "pss" and g.rate_mb_s is not None:
        growth += f" ({g.measure.upper()})"
    return [g.role, str(g.processes), pss, growth, _fmt(g.mb_per_op), g.outcome, str(g.fds),
            str(g.threads)]


def roles_table(r: AnalysisResult) -> Table:
    """Memory (PSS), growth and counts per process role, fastest-growing first."""
    table = Table(*ROLE_COLUMNS, title="Where the memory goes")
    for g in r.roles:
        table.add_row(*map(rich_text, role_cells(g)))
    return table


def _unwrapped(file: TextIO | None = None) -> Console:
    """A console for a file or a log: no colours, no wrapping, no cut table."""
    return Console(file=file, no_color=True, width=UNWRAPPED, soft_wrap=True,
                   force_terminal=False)


def render_text(r: AnalysisResult) -> str:
    """The summary as plain text (no colours, no wrapping), as written to report.txt."""
    out = io.StringIO()
    render(r, _unwrapped(out))
    return out.getvalue()


def print_text(r: AnalysisResult) -> None:
    """Print to stdout: for a terminal fitted and coloured, else as :func:`render_text`."""
    render(r, Console() if sys.stdout.isatty() else _unwrapped())
