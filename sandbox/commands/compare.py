"""``sandbox compare BASE NEW``: is NEW worse than BASE (analysis.compare)?"""

from __future__ import annotations

from pathlib import Path

from sandbox.analysis.compare import compare_runs
from sandbox.commands.report import load_run
from sandbox.report import ReportInputError
from sandbox.report.compare import COMPARE_FORMATS


def compare_command(base: str | Path, new: str | Path, fmt: str = "text") -> int:
    """Print whether NEW is worse than BASE (text, json or markdown); return 1 when worse,
    else 0."""
    if fmt not in COMPARE_FORMATS:
        raise ReportInputError(f"unknown compare format {fmt!r}; choose from "
                               f"{', '.join(COMPARE_FORMATS)}")
    result = compare_runs(load_run(base), load_run(new))
    print(COMPARE_FORMATS[fmt](result).rstrip("\n"))
    return result.exit_code
