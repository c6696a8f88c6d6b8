"""``sandbox compare BASE NEW``: is NEW worse than BASE (analysis.compare)?"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sandbox.analysis.compare import compare_runs
from sandbox.commands.report import load_run
from sandbox.report import ReportInputError
from sandbox.report.compare import COMPARE_FORMATS


def compare_command(base: str | Path, new: str | Path, formats: Sequence[str] = ("text",)) -> int:
    """Print whether NEW is worse than BASE in each format asked (text, json, markdown), in
    turn; return 1 when worse, else 0."""
    for fmt in formats:
        if fmt not in COMPARE_FORMATS:
            raise ReportInputError(f"unknown compare format {fmt!r}; choose from "
                                   f"{', '.join(COMPARE_FORMATS)}")
    result = compare_runs(load_run(base), load_run(new))
    for fmt in formats:
        print(COMPARE_FORMATS[fmt](result).rstrip("\n"))
    return result.exit_code
