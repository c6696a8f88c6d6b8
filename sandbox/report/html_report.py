"""report.html: one self-contained page (inline CSS and SVG, no scripts, no network)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from html import escape
from typing import Any

from sandbox.analysis import AnalysisResult
from sandbox.report.common import LEGACY_NOTE, minutes_needed, shows_operations
from sandbox.report.plot import memory_svg, roles_svg
from sandbox.report.text import ROLE_COLUMNS, role_cells
from sandbox.untrusted import html_text

_CSS = """body{font-family:sans-serif;margin:2em;max-width:1000px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:left;font-size:13px}th{background:#f3f3f3}.critical,.incomplete{color:#b00;font-weight:bold}
.warning{color:#a60}.note{color:#06c}.ok{color:#080;font-weight:bold}
.sub{color:#555;margin-top:-.6em}"""
MAX_ALERT_ROWS = 20
TREND_NAMES = {"file": "file cache (MB)", "processes": "processes", "tmp_mb": "temp size (MB)",
               "tmp_files": "temp files", "fds": "open file descriptors",
               "threads": "threads", "js_heap_mb": "JS heap of long-lived pages (MB)",
               "dom_nodes": "DOM nodes of long-lived pages"}
_STATUS = {"PASS": "ok", "FAIL": "critical", "WARN": "warning", "INCOMPLETE": "critical",
           "INCONCLUSIVE": "warning"}


def _fmt(x: Any, spec: str = ".3f") -> str:
    if x is None:
        return "n/a"
    return format(x, spec) if isinstance(x, float) else html_text(str(x))


def _table(headers: list[str], rows: list[list[Any]], cls: list[str] | None = None) -> str:
    head = "".join(f"<th>{html_text(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        attr = f' class="{cls[i]}"' if cls else ""
        body.append(f"<tr{attr}>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _when(r: AnalysisResult) -> str:
    started = r.run.started
    if started is None:
        return "unknown date"
    return datetime.fromtimestamp(started, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _alerts(r: AnalysisResult) -> str:
    """Live alerts raised during the run: a count per kind, then the first few."""
    if not r.alerts:
        return "<p>None.</p>"
    kinds = Counter(f"{a.kind} ({a.severity})" for a in r.alerts)
    rows = [[a.t, a.severity, a.message] for a in r.alerts[:MAX_ALERT_ROWS]]
    more = len(r.alerts) - len(rows)
    return ("<p>" + ", ".join(f"{html_text(k)}: {n}" for k, n in kinds.items()) + "</p>"
            + _table(["time (s)", "severity", "alert"], rows)
            + (f"<p>and {more} more in alerts.jsonl.</p>" if more > 0 else ""))


def _roles(r: AnalysisResult) -> str:
    """Where the memory goes: PSS per process role, plotted and tabled."""
    if not r.roles:
        return ""
    return ("<h2>Where the memory goes</h2>" + roles_svg(r)
            + _table(list(ROLE_COLUMNS), [role_cells(g) for g in r.roles]))


def render_html(r: AnalysisResult) -> str:
    """The report page."""
    v, lg, ops, c = r.verdict, r.legacy, r.operations, r.cleanup
    cls, word = _STATUS[r.status], r.status
    lo, hi = v.slope_ci_mb_s or (None, None)
    verdict_rows: list[list[Any]] = [
        ["against the budget", f"{v.outcome} (budget {v.budget})"],
        ["a run that would tell", minutes_needed(v) if v.outcome == "inconclusive" else "-"],
        ["label", v.label], ["severity", v.severity], ["measured on (floor of)", v.signal],
        ["growth (MB/s)", v.slope_mb_s], ["95% bounds (MB/s)", f"{_fmt(lo)} .. {_fmt(hi)}"],
        ["p-value (one-sided)", _fmt(v.p_value, ".2g")],
        ["detection limit (MB/s)", v.detection_limit_mb_s],
        ["MB per operation", v.mb_per_op], ["start-up cut (s)", v.warmup_cut_s],
        ["level shifts (s)", ", ".join(f"{x:.0f}" for x in v.change_points_s) or "none"],
        ["reasons", "; ".join(v.reasons) or "-"],
    ]
    seed_rows: list[list[Any]] = [
        ["series", lg.series], ["growth (MB/s)", lg.slope_mb_per_second],
        ["correlation", lg.correlation], ["leak severity", lg.leak_severity],
        ["initial / final / peak / average (MB)",
         f"{lg.initial_mb:.1f} / {lg.final_mb:.1f} / {lg.peak_mb:.1f} / {lg.average_mb:.1f}"],
    ]
    trends = [[TREND_NAMES.get(name, name), tr.label, tr.slope, tr.detection_limit]
              for name, tr in [("file", r.file_trend), *r.resource_trends.items()]
              if tr is not None]
    verified = {True: "yes", False: "no", None: "not verified"}[c.cleanup_successful]
    cleanup_rows: list[list[Any]] = [["orphaned processes", len(c.orphans)], ["escaped processes",
                    len(c.escapes)], ["leftover files", len(c.leftover_files)],
                    ["cleanup clean", verified]]
    ops_rows = [[ops.count, ops.failed, ops.latency_p50_s, ops.latency_p95_s, ops.latency_max_s]]
    operations = "<h2>Operations</h2>" + _table(["count", "failed", "p50 s", "p95 s", "max s"],
                                                ops_rows) if shows_operations(r) else ""
    findings = _table(["level", "check", "finding"],
                      [[f.level, f.check, f.message] for f in r.findings],
                      [f.level for f in r.findings]) if r.findings else "<p>None.</p>"
    details = "".join(
        f"<li>{escape(json.dumps(record))}</li>"
        for record in [*(p.to_record() for p in [*c.escapes, *c.orphans]),
                       *(f.to_record() for f in c.leftover_files)])
    title = f"{r.label} on {r.hostname}, {_when(r)}: {word}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>sandbox: {html_text(title)}</title>
<style>{_CSS}</style></head><body>
<h1>sandbox: {html_text(r.label)} <span class="{cls}">{word}</span></h1>
<p class="sub" id="run-facts">{html_text(_when(r))} on {html_text(r.hostname)}; exit code
{r.exit_code}; {r.n_samples} samples over {r.duration_s:.0f} s; {html_text(r.backend_line)};
source {_fmt(r.sample_source)}; {html_text(r.run_dir)}</p>
<h2>Memory</h2>
{memory_svg(r)}
{_roles(r)}
<h2>Findings</h2>{findings}
<h2>Recommendations</h2><ul>{"".join(f"<li>{html_text(x)}</li>" for x in r.recommendations)}</ul>
<h2>Leak verdict</h2>{_table(["", "value"], verdict_rows)}
<h2>Seed rule (reported, does not decide)</h2><p id="legacy-note">{html_text(LEGACY_NOTE)}</p>
{_table(["", "value"], seed_rows)}
<h2>Other trends</h2>{_table(["series", "label", "growth per s", "detection limit per s"],
                             trends)}
{operations}
<h2>Live alerts</h2>{_alerts(r)}
<h2>Cleanup</h2>{_table(["", "value"], cleanup_rows)}<ul>{details}</ul>
</body></html>
"""
