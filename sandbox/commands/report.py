"""``sandbox report RUN_DIR``, and the reports of a run whose harness died (``sandbox cleanup``)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from sandbox import rundir
from sandbox.analysis import analyze
from sandbox.analysis.budget import Budget
from sandbox.errors import HarnessError
from sandbox.report import FORMATS, ReportInputError, check_formats, render, write_all
from sandbox.report.github import publish
from sandbox.report.metrics import export
from sandbox.report.text import print_text
from sandbox.runreader import RunData, RunReadError, read_run
from sandbox.untrusted import shown


def load_run(run_dir: str | Path) -> RunData:
    """Read a run directory that has samples, or raise RunReadError / ReportInputError."""
    try:
        run = read_run(run_dir)
    except PermissionError as exc:
        raise RunReadError(f"{run_dir}: {exc.strerror or exc}: {rundir.PRIVATE}") from exc
    if run.n_samples == 0:
        raise ReportInputError(f"{run_dir}: no samples in samples.jsonl")
    return run


def report_command(run_dir: str | Path, formats: Iterable[str] | None = None, *,
                   budget: Budget | None = None, fail_on_inconclusive: bool | None = None,
                   output: str | Path | None = None, metrics_textfile: Path | None = None,
                   pushgateway: str | None = None) -> int:
    """Re-render the reports of RUN_DIR from disk into ``output`` (default the run directory;
    ``-``: the one format given, to stdout) and name each file written; print the summary too
    when writing into the run directory (``-o DIR``: one line per file, also on a terminal).
    Return the exit code."""
    formats = check_formats(formats or FORMATS)
    if str(output) == "-" and len(formats) != 1:
        raise ReportInputError("-o - (stdout) takes exactly one --format")
    result = analyze(load_run(run_dir), budget=budget, fail_on_inconclusive=fail_on_inconclusive)
    if str(output) == "-":
        sys.stdout.write(render(result, formats[0]))
        return result.exit_code
    target = Path(output or run_dir)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportInputError(f"cannot write reports to {target}: {exc.strerror}") from exc
    try:
        paths = write_all(result, target, formats)
    except OSError as exc:
        raise ReportInputError(f"cannot write reports to {target}: {exc.strerror or exc} "
                               "(run as its owner, or give -o DIR)") from exc
    if output is None:
        print_text(result)
    publish(result)
    export(result, textfile=metrics_textfile, pushgateway=pushgateway)
    for path in paths:
        print(f"wrote {shown(path)}")
    return result.exit_code


def finish_reports(run_dir: str | Path) -> str | None:
    """Write the reports of a run whose harness died, where its samples allow; a line saying
    what happened, or None when the directory is gone."""
    if not Path(run_dir).is_dir():
        return None
    try:
        result = analyze(load_run(run_dir))
        write_all(result, run_dir)
    except (HarnessError, OSError) as exc:
        return f"not written ({exc})"
    return f"written, exit code {result.exit_code}"
