"""GitHub Actions: the markdown summary appended to ``$GITHUB_STEP_SUMMARY`` and one
``::error::`` / ``::warning::`` workflow command per failing finding, when the run is inside a
workflow (``GITHUB_ACTIONS=true``). Outside Actions nothing happens."""

from __future__ import annotations

import os
import sys
from typing import TextIO

from sandbox.analysis import AnalysisResult
from sandbox.report.markdown import render_markdown
from sandbox.untrusted import shown

_COMMAND = {"incomplete": "error", "critical": "error", "warning": "warning"}


def _escape(text: str) -> str:
    """Workflow-command data: one line (control characters shown escaped), ``%`` escaped."""
    return shown(text).replace("%", "%25")


def publish(r: AnalysisResult, out: TextIO = sys.stdout) -> None:
    """Append the summary and print the annotations, as GitHub Actions expects."""
    if summary := os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(summary, "a", encoding="utf-8") as f:
            f.write(render_markdown(r) + "\n")
    if os.environ.get("GITHUB_ACTIONS") != "true":
        return
    for finding in r.findings:
        if command := _COMMAND.get(finding.level):
            print(f"::{command} title=sandbox {finding.check}::{_escape(finding.message)}",
                  file=out)
