"""The answer of analysis.compare as text, JSON or markdown: rendering only."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict

from sandbox.analysis.compare import CompareResult
from sandbox.untrusted import md_text, shown


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def render_compare_text(r: CompareResult) -> str:
    """Plain-text table for a terminal or CI log."""
    rows = [f"compare BASE {shown(r.base_dir)}  NEW {shown(r.new_dir)}"]
    for c in r.items:
        rows.append(f"  {c.metric:<22} base {_f(c.base):>10}  new {_f(c.new):>10}  "
                    f"{c.answer.upper():<10} {shown(c.detail)}")
    rows.append(shown(r.summary))
    rows.append(r.own_verdicts)
    return "\n".join(rows)


def render_compare_json(r: CompareResult) -> str:
    return json.dumps({"base": r.base_dir, "new": r.new_dir, "worse": r.worse,
                       "summary": r.summary, "exit_code": r.exit_code,
                       "own_verdicts": {name: {"status": status, "exit_code": code,
                                               "memory": outcome}
                                        for name, (status, code, outcome) in r.own.items()},
                       "own_verdicts_note": r.own_verdicts,
                       "metrics": [asdict(c) for c in r.items]}, indent=2) + "\n"


def render_compare_markdown(r: CompareResult) -> str:
    lines = [f"### {md_text(r.summary)}", "",
             f"BASE {md_text(r.base_dir)}, NEW {md_text(r.new_dir)}", "",
             "| metric | base | new | NEW/BASE | answer | detail |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {c.metric} | {_f(c.base)} | {_f(c.new)} | {_f(c.ratio)} | {c.answer} | "
              f"{md_text(c.detail)} |" for c in r.items]
    lines += ["", md_text(r.own_verdicts)]
    return "\n".join(lines) + "\n"


COMPARE_FORMATS: dict[str, Callable[[CompareResult], str]] = {
    "text": render_compare_text, "json": render_compare_json,
    "markdown": render_compare_markdown}
