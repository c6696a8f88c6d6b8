"""Reports: one renderer per format from one AnalysisResult."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from sandbox.analysis import AnalysisResult
from sandbox.errors import HarnessError
from sandbox.report.html_report import render_html
from sandbox.report.json_report import render_json
from sandbox.report.junit import render_junit
from sandbox.report.markdown import render_markdown
from sandbox.report.metrics import render_prometheus
from sandbox.report.text import render_text
from sandbox.rundir import REPORT, write_text

#: format name -> (file name, renderer)
FORMATS: dict[str, tuple[str, Callable[[AnalysisResult], str]]] = {
    "json": (REPORT, render_json),
    "text": ("report.txt", render_text),
    "html": ("report.html", render_html),
    "junit": ("junit.xml", render_junit),
    "prometheus": ("metrics.prom", render_prometheus),
    "markdown": ("report.md", render_markdown),
}


class ReportInputError(HarnessError):
    """Bad input for a report (no run directory, no samples); the CLI maps it to exit 3."""


#: earlier names of formats, still accepted
ALIASES = {"openmetrics": "prometheus"}


def check_formats(formats: Iterable[str]) -> list[str]:
    """The formats, each known; raises ReportInputError for the first unknown one."""
    formats = [ALIASES.get(fmt, fmt) for fmt in formats]
    for fmt in formats:
        if fmt not in FORMATS:
            raise ReportInputError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    return formats


def render(result: AnalysisResult, fmt: str) -> str:
    """One format's text."""
    return FORMATS[check_formats([fmt])[0]][1](result)


def write_all(result: AnalysisResult, run_dir: str | Path,
              formats: Iterable[str] | None = None) -> list[Path]:
    """Write each format's file into ``run_dir`` atomically; returns the paths written."""
    paths = []
    for fmt in check_formats(formats or FORMATS):
        name, render = FORMATS[fmt]
        path = Path(run_dir) / name
        write_text(path, render(result))
        paths.append(path)
    return paths


__all__ = ["FORMATS", "ReportInputError", "check_formats", "render", "render_text",
           "write_all"]
