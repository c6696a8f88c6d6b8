"""``sandbox`` command line. Errors become exit codes here, in one place:
0 ok, 1 critical, 2 warnings, 3 harness error (bad input, cannot run) or incomplete run."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from typer._click.exceptions import ClickException  # typer >= 0.29 vendors click

from sandbox.durations import parse_duration, parse_size
from sandbox.errors import HarnessError
from sandbox.limits import UNLIMITED
from sandbox.untrusted import shown

EXIT_HARNESS_ERROR = 3
JS_HEAP_INTERVAL_S = 10.0

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Run a workload in its own cgroup, watch it, tear it down, judge leaks.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"sandbox {version('sandbox')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", callback=_print_version,
                                          is_eager=True, help="print the version")] = False,
) -> None:
    """Run a workload in its own cgroup, watch it, tear it down, judge leaks."""


def _duration(value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _size(value: str) -> int:
    try:
        return parse_size(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _limit(value: str | None, parse: Callable[[str], int]) -> int | str | None:
    """A limit option: ``max`` (no limit) or what ``parse`` makes of it; None: the default."""
    if value is None or value == UNLIMITED:
        return value
    try:
        return parse(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r}: expected max or {exc}") from exc


def _count(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError("a whole number") from None


ScenarioFile = Annotated[Path | None, typer.Option(help="TOML file of custom scenarios")]
Verbosity = Annotated[int, typer.Option("--verbose", "-v", count=True, help="more log lines")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="errors only on stderr")]
BudgetOption = Annotated[str | None, typer.Option(
    help="memory growth allowed: 0.1MB/s (default, the seed's), 100MB/h, 0.5MB/op")]
FailOnInconclusive = Annotated[bool, typer.Option(
    help="exit 1 when the memory verdict is inconclusive (CI that wants a verdict)")]
MetricsTextfile = Annotated[Path | None, typer.Option(
    help="also write the metrics here, atomically (node_exporter's textfile directory)")]
Pushgateway = Annotated[str | None, typer.Option(
    help="push the metrics to this Prometheus Pushgateway (http://host:9091)")]


@app.command(context_settings={"allow_interspersed_args": False})
def run(
    command: Annotated[
        list[str] | None, typer.Argument(help="run this command instead of screenshots (after --)")
    ] = None,
    scenario: Annotated[str | None, typer.Option(help="smoke, quick, medium, endurance "
                                                      "or one from --scenario-file")] = None,
    scenario_file: ScenarioFile = None,
    duration: Annotated[str | None, typer.Option(help="override the duration: 30s, 2m, 1h")] = None,
    ops_per_minute: Annotated[float | None, typer.Option(help="screenshots per minute")] = None,
    url: Annotated[list[str] | None, typer.Option(help="screenshot this URL (repeatable) "
                                                       "instead of the built-in site")] = None,
    inject: Annotated[list[str] | None, typer.Option(
        help="fault injection, a positive control: pages, heap, orphan, escape, tmpfile")] = None,
    inject_rate: Annotated[float | None, typer.Option(help="leak per operation, MB")] = None,
    context_policy: Annotated[str | None, typer.Option(help="reuse or fresh")] = None,
    network: Annotated[str | None, typer.Option(help="isolated or host")] = None,
    user: Annotated[str | None, typer.Option(
        help="run the workload as this existing user (default: a UID of the run's own)")] = None,
    browser: Annotated[str | None, typer.Option(
        help="the Chromium to drive (default: found, see sandbox doctor)")] = None,
    sample_interval: Annotated[float | None, typer.Option(help="seconds between samples")] = None,
    js_heap: Annotated[bool, typer.Option(
        "--js-heap", help="measure the JS heap and DOM nodes of long-lived pages after a "
                          "forced GC, every 10 s (js_heap = SECONDS in a scenario file)")
    ] = False,
    role_interval: Annotated[float | None, typer.Option(
        help="seconds between per-role sweeps (memory, fds, threads by process role)")] = None,
    alert_threshold_mb: Annotated[float | None, typer.Option(help="working-set alert, MB")] = None,
    grace: Annotated[str | None, typer.Option(help="wait after the workload ends before "
                                                   "counting orphans (default 5s)")] = None,
    keep_escapes: Annotated[bool, typer.Option(help="leave escaped processes alive")] = False,
    allow_userns: Annotated[bool, typer.Option(
        help="let the workload make user namespaces (refused by default)")] = False,
    tracer: Annotated[str | None, typer.Option(help="auto, ebpf, proc-connector or scan")] = None,
    cgroup_mode: Annotated[
        str | None, typer.Option(help="step the cgroup mode down: hybrid, v1 or none")
    ] = None,
    memory_max: Annotated[str | None, typer.Option(
        help="memory limit of the slice: bytes, 512M, 2G, or max for none (default: half "
             "of RAM, at most RAM - 2G)")] = None,
    pids_max: Annotated[str | None, typer.Option(
        help="task limit of the slice (threads count): N, or max for none (default 4096)")
    ] = None,
    env: Annotated[list[str] | None, typer.Option(
        help="pass NAME from this environment, or set NAME=VALUE, to the workload "
             "(repeatable; it gets a clean environment otherwise)")] = None,
    inherit_env: Annotated[bool, typer.Option(
        help="hand the workload this whole environment (secrets included)")] = False,
    runs_dir: Annotated[Path | None, typer.Option(help="where run directories go")] = None,
    tmp_size: Annotated[str | None, typer.Option(
        help="size of the run's private /tmp and /dev/shm (tmpfs; default 1G)")] = None,
    log_max: Annotated[str | None, typer.Option(
        help="workload.log size before it rotates (default 16M; two files at most)")] = None,
    events_max: Annotated[str | None, typer.Option(
        help="events.jsonl's cap (default 16M); later events are counted as dropped")] = None,
    budget: BudgetOption = None,
    fail_on_inconclusive: FailOnInconclusive = False,
    baseline: Annotated[Path | None, typer.Option(
        help="compare with this earlier run at the end; exit 1 when worse")] = None,
    metrics_textfile: MetricsTextfile = None,
    pushgateway: Pushgateway = None,
    progress: Annotated[bool, typer.Option(help="show the progress bar")] = True,
    verbose: Verbosity = 0,
    quiet: Quiet = False,
) -> int:
    """Run the workload in a fresh slice, verify cleanup, judge leaks, write every report."""
    overrides = {
        "duration_s": _duration(duration) if duration else None,
        "operations_per_minute": ops_per_minute, "urls": url or None, "inject": inject or None,
        "inject_rate_mb": inject_rate, "context_policy": context_policy, "network": network,
        "user": user, "browser": browser, "sample_interval": sample_interval,
        "role_interval": role_interval, "js_heap": JS_HEAP_INTERVAL_S if js_heap else None,
        "alert_threshold_mb": alert_threshold_mb,
        "grace_s": _duration(grace) if grace else None, "keep_escapes": keep_escapes or None,
        "allow_userns": allow_userns or None,
        "tracer": tracer, "cgroup_mode": cgroup_mode,
        "memory_max": _limit(memory_max, parse_size),
        "pids_max": _limit(pids_max, _count), "env": env or None,
        "inherit_env": inherit_env or None, "runs_dir": runs_dir,
        "tmp_size": _size(tmp_size) if tmp_size else None,
        "log_max": _size(log_max) if log_max else None,
        "events_max": _size(events_max) if events_max else None,
        "budget": budget, "fail_on_inconclusive": fail_on_inconclusive or None,
        "metrics_textfile": metrics_textfile, "pushgateway": pushgateway,
    }
    if command:  # before the heavy imports: a missing command fails at once
        from sandbox.workloads.preflight import check_command

        check_command(command, user)
    from sandbox.commands.run import run_command

    return run_command(command, scenario, scenario_file, overrides, baseline=baseline,
                       progress=progress, verbose=verbose, quiet=quiet)


@app.command("scenarios")
def list_scenarios(
    scenario_file: ScenarioFile = None,
) -> int:
    """List the scenarios a run can use."""
    from sandbox.commands.scenarios import scenarios_command

    return scenarios_command(scenario_file)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="a run directory", readable=False)],
    format: Annotated[list[str] | None, typer.Option(
        "--format", help="json, text, html, junit, prometheus, markdown: repeatable or "
                         "comma-separated (default all)")] = None,
    budget: BudgetOption = None,
    fail_on_inconclusive: FailOnInconclusive = False,
    output: Annotated[str | None, typer.Option(
        "--output", "-o", help="write the reports into DIR instead of the run directory; "
                               "- prints the one --format given")] = None,
    metrics_textfile: MetricsTextfile = None,
    pushgateway: Pushgateway = None,
) -> int:
    """Re-render the reports of a run from its files (also of a killed run), against the
    run's own budget or the one given."""
    from sandbox.analysis.budget import parse_budget
    from sandbox.commands.report import report_command

    try:
        parsed = parse_budget(budget) if budget else None
    except ValueError as exc:
        raise HarnessError(str(exc)) from exc
    formats = [f.strip() for item in format or [] for f in item.split(",") if f.strip()]
    if pushgateway and not pushgateway.startswith(("http://", "https://")):
        raise HarnessError("the Pushgateway must be an http:// or https:// URL")
    return report_command(run_dir, formats or None, budget=parsed,
                          fail_on_inconclusive=fail_on_inconclusive or None, output=output,
                          metrics_textfile=metrics_textfile, pushgateway=pushgateway)


@app.command()
def compare(
    base: Annotated[Path, typer.Argument(help="the baseline run directory")],
    new: Annotated[Path, typer.Argument(help="the run directory to judge against it")],
    format: Annotated[str, typer.Option("--format", help="text, json or markdown")] = "text",
) -> int:
    """Say whether NEW's growth rate, peak and latency are worse than BASE's, better, the
    same, or whether the runs cannot tell (exit 1 when worse)."""
    from sandbox.commands.compare import compare_command

    return compare_command(base, new, format)


@app.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="print the facts as JSON")] = False,
) -> int:
    """Show what this host offers a run; exit 3 with the reason when no run can be made."""
    from sandbox.commands.doctor import doctor_command

    return doctor_command(as_json)


@app.command()
def cleanup() -> int:
    """Kill and remove what a harness that died left behind (runs before every run), and
    write that run's reports (INCOMPLETE: its cleanup was never verified)."""
    from sandbox.commands.cleanup import cleanup_command

    return cleanup_command()


runs_app = typer.Typer(help="List the run directories, remove old ones.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
RunsDir = Annotated[Path, typer.Option(help="the runs directory")]


@runs_app.command("list")
def runs_list(
    runs_dir: RunsDir = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="print JSON lines")] = False,
) -> int:
    """The runs, oldest first: start time, scenario, status, exit code, size, directory."""
    from sandbox.commands.runs import list_command

    return list_command(runs_dir, as_json)


@runs_app.command("prune")
def runs_prune(
    runs_dir: RunsDir = Path("runs"),
    keep: Annotated[int | None, typer.Option(help="keep the newest N runs")] = None,
    older_than: Annotated[str | None, typer.Option(
        help="remove runs older than this: 7d, 12h (with --keep: of those beyond the newest N)")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="only say what would go")] = False,
) -> int:
    """Remove old run directories (never a running one)."""
    from sandbox.commands.runs import prune_command

    return prune_command(runs_dir, keep=keep,
                         older_than_s=_duration(older_than) if older_than else None,
                         dry_run=dry_run)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and map every failure to one line and an exit code."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="sandbox", standalone_mode=False)
    except HarnessError as exc:
        print(f"sandbox: error: {shown(str(exc))}", file=sys.stderr)
        code = exc.exit_code
    except ClickException as exc:
        print(f"sandbox: error: {shown(exc.format_message())}", file=sys.stderr)
        code = EXIT_HARNESS_ERROR
    except (typer.Abort, KeyboardInterrupt):
        print("sandbox: error: interrupted", file=sys.stderr)
        code = EXIT_HARNESS_ERROR
    except Exception as exc:  # a bug or an unforeseen host problem: still one line
        if os.environ.get("SANDBOX_DEBUG"):
            raise
        print(f"sandbox: internal error: {type(exc).__name__}: {shown(str(exc))} "
              "(set SANDBOX_DEBUG=1 for the traceback)", file=sys.stderr)
        code = EXIT_HARNESS_ERROR
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
