"""report.md: a short markdown summary (what a GitHub job summary or a pull request shows)."""

from __future__ import annotations

from sandbox.analysis import AnalysisResult
from sandbox.report.common import minutes_needed, shows_operations
from sandbox.untrusted import md_text

_ICON = {"PASS": "✅", "WARN": "⚠️", "FAIL": "❌", "INCOMPLETE": "❌", "INCONCLUSIVE": "❔"}


def _rate(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f} MB/s ({x * 3600:.0f} MB/h)"


def render_markdown(r: AnalysisResult) -> str:
    """The summary: status, memory against the budget, findings, recommendations. Every
    name and message is a markdown literal (md_text): no HTML, link or table break."""
    v, config = r.verdict, r.run.config
    label = config.scenario or " ".join(config.command) or "run"
    lo, hi = v.slope_ci_mb_s or (None, None)
    interval = f"{lo:.3f} .. {hi:.3f} MB/s" if lo is not None else "n/a"
    rows = [
        ("memory", f"**{v.outcome}** the budget {md_text(v.budget)}"),
        ("growth of the anon floor", _rate(v.slope_mb_s)),
        ("95% bounds", interval),
        ("samples", f"{r.n_samples} over {r.duration_s:.0f} s ({md_text(r.backend_line)})"),
    ]
    if shows_operations(r):
        rows.insert(3, ("operations", f"{r.operations.count} ({r.operations.failed} failed)"))
    if v.outcome == "inconclusive":
        rows.append(("a run that would tell", minutes_needed(v)))
    lines = [f"## {_ICON.get(r.status, '')} sandbox {md_text(label)}: {r.status} "
             f"(exit {r.exit_code})", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in rows]
    if r.findings:
        lines += ["", "| level | check | finding |", "|---|---|---|"]
        lines += [f"| {f.level} | {f.check} | {md_text(f.message)} |" for f in r.findings]
    lines += ["", *[f"- {md_text(rec)}" for rec in r.recommendations], "",
              f"Run directory: {md_text(r.run_dir)}", ""]
    return "\n".join(lines)
