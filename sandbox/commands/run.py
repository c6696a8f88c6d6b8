"""``sandbox run``: one run from a scenario or a command, its summary, and (with
``--baseline``) the comparison with an earlier run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from sandbox import logs, scenarios
from sandbox.config import from_scenario
from sandbox.errors import HarnessError
from sandbox.host import discover
from sandbox.host.systemd import ensure_delegated_scope
from sandbox.runner import run as run_workload


def run_command(command: list[str] | None, scenario: str | None, scenario_file: Path | None,
                overrides: dict[str, Any], *, baseline: Path | None, progress: bool,
                verbose: int, quiet: bool) -> int:
    """Validate everything first (config, baseline), then run; the exit code of the run,
    or 1 when it is worse than ``baseline``."""
    logs.configure(-1 if quiet else verbose)
    if command and scenario:
        raise HarnessError("give either --scenario or a command after --, not both")
    base = scenarios.get(scenario, scenario_file) if scenario else None
    config = from_scenario(base, command=list(command) if command else None,
                           **overrides).validate()
    # The analysis (scipy, statsmodels) loads when the run is judged, so the harness carries
    # no statistics library while its run lasts; a baseline is read (and judged) up front.
    baseline_run = None
    if baseline:  # a bad baseline fails up front
        from sandbox.commands.report import load_run

        baseline_run = load_run(baseline)
    facts = discover(config.cgroup_mode)
    ensure_delegated_scope(facts, [sys.executable, "-m", "sandbox", *sys.argv[1:]])
    outcome = run_workload(config, show_progress=progress and not quiet, facts=facts)
    if not quiet:
        print(outcome.summary)
    print(f"report: {outcome.run_dir / 'report.html'}")
    if baseline_run is None:
        return outcome.exit_code
    from sandbox.analysis.compare import compare_runs
    from sandbox.commands.report import load_run
    from sandbox.report.compare import render_compare_text

    comparison = compare_runs(baseline_run, load_run(outcome.run_dir))
    print(render_compare_text(comparison))
    return 1 if comparison.worse and outcome.exit_code in (0, 2) else outcome.exit_code
