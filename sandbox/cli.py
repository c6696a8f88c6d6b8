"""``sandbox`` command line. Errors become exit codes here, in one place:
0 ok, 1 critical, 2 warnings, 3 harness error (bad input, cannot run) or incomplete run."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from sandbox.durations import parse_duration, parse_megabytes, parse_size
from sandbox.errors import HarnessError
from sandbox.limits import UNLIMITED
from sandbox.scenarios import JS_HEAP_INTERVAL_S, UNTIL_DECIDED_CAP_S
from sandbox.untrusted import shown

EXIT_HARNESS_ERROR = 3

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


def _unit(value: str | None, parse: Callable[[str], float]) -> float | None:
    """An option with a unit (a duration or a size, sandbox.durations); None: not given."""
    if value is None:
        return None
    try:
        return parse(value)
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


def _formats(given: list[str] | None, as_json: bool = False) -> list[str]:
    """``--format`` values, repeatable or comma-separated, with ``--json`` as ``json``."""
    formats = [f.strip() for item in given or [] for f in item.split(",") if f.strip()]
    return [*formats, "json"] if as_json and "json" not in formats else formats


def _count(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError("a whole number") from None


ScenarioFile = Annotated[Path | None, typer.Option(help="TOML file of custom scenarios")]
Verbosity = Annotated[int, typer.Option("--verbose", "-v", count=True, help="more log lines")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="errors only on stderr")]
AsJson = Annotated[bool, typer.Option("--json", help="the same as --format json")]
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
    duration: Annotated[str | None, typer.Option(
        metavar="DURATION", help="override the duration: 30s, 2m, 1h")] = None,
    until_decided: Annotated[bool, typer.Option(
        "--until-decided", help="stop once the memory verdict is within or over the budget "
                                "(error rates held over all looks); the duration is the cap "
                                "(until_decided = true in a scenario file)")] = False,
    max_duration: Annotated[str | None, typer.Option(
        metavar="DURATION", help="--until-decided's cap: 10m, 1h (default: the scenario's "
                                 "duration, else 20m)")] = None,
    ops_per_minute: Annotated[float | None, typer.Option(help="screenshots per minute")] = None,
    url: Annotated[list[str] | None, typer.Option(help="screenshot this URL (repeatable) "
                                                       "instead of the built-in site")] = None,
    inject: Annotated[list[str] | None, typer.Option(
        help="fault injection, a positive control: pages, heap, orphan, escape, tmpfile")] = None,
    inject_rate: Annotated[str | None, typer.Option(metavar="SIZE",
        help="leak per operation: 512K, 2M (a bare number is MB)")] = None,
    context_policy: Annotated[str | None, typer.Option(help="reuse or fresh")] = None,
    network: Annotated[str | None, typer.Option(help="isolated or host")] = None,
    user: Annotated[str | None, typer.Option(
        help="run the workload as this existing user (default: a UID of the run's own)")] = None,
    browser: Annotated[str | None, typer.Option(
        help="the Chromium to drive (default: found, see sandbox doctor)")] = None,
    sample_interval: Annotated[str | None, typer.Option(metavar="DURATION",
        help="time between samples: 500ms, 1s (a bare number is seconds; default 0.5)")] = None,
    js_heap: Annotated[bool, typer.Option(
        "--js-heap", help="measure the JS heap and DOM nodes of long-lived pages after a "
                          "forced GC, every 10 s (js_heap = true in a scenario file)")
    ] = False,
    js_heap_interval: Annotated[str | None, typer.Option(metavar="DURATION",
        help="--js-heap, this often: 30s, 1m (a bare number is seconds; js_heap = \"30s\" in "
             "a scenario file)")] = None,
    settle_every: Annotated[int | None, typer.Option(metavar="N",
        help="screenshots: a settle point (GC, memory pressure, a sample) every N "
             "operations; 0: none (the default: docs/settle-points.md says why)")] = None,
    role_interval: Annotated[str | None, typer.Option(metavar="DURATION",
        help="time between per-role sweeps (memory, fds, threads by process role): 10s, 1m "
             "(a bare number is seconds)")] = None,
    alert_threshold: Annotated[str | None, typer.Option(
        "--alert-threshold", "--alert-threshold-mb", metavar="SIZE",
        help="working-set alert: 512M, 2G (a bare number is MB; default 1G)")] = None,
    grace: Annotated[str | None, typer.Option(metavar="DURATION",
        help="wait after the workload ends before counting orphans: 5s, 1m (a bare number is "
             "seconds; default 5s)")] = None,
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
    tmp_size: Annotated[str | None, typer.Option(metavar="SIZE",
        help="size of the run's private /tmp and /dev/shm (tmpfs): 512M, 2G (a bare number "
             "is bytes; default 1G)")] = None,
    log_max: Annotated[str | None, typer.Option(metavar="SIZE",
        help="workload.log size before it rotates: 4M (a bare number is bytes; default 16M; "
             "two files at most)")] = None,
    events_max: Annotated[str | None, typer.Option(metavar="SIZE",
        help="events.jsonl's cap: 4M (a bare number is bytes; default 16M); later events are "
             "counted as dropped")] = None,
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
    if max_duration is not None and not until_decided:
        raise typer.BadParameter("--max-duration is --until-decided's cap",
                                 param_hint="--max-duration")
    if until_decided and max_duration is None and duration is None and scenario is None:
        max_duration = f"{UNTIL_DECIDED_CAP_S:g}s"
    overrides = {
        "duration_s": _unit(max_duration or duration, parse_duration),
        "until_decided": until_decided or None,
        "operations_per_minute": ops_per_minute, "urls": url or None, "inject": inject or None,
        "inject_rate_mb": _unit(inject_rate, parse_megabytes), "context_policy": context_policy,
        "network": network, "user": user, "browser": browser,
        "sample_interval": _unit(sample_interval, parse_duration),
        "role_interval": _unit(role_interval, parse_duration), "settle_every": settle_every,
        "js_heap": _unit(js_heap_interval, parse_duration) if js_heap_interval
        else JS_HEAP_INTERVAL_S if js_heap else None,
        "alert_threshold_mb": _unit(alert_threshold, parse_megabytes),
        "grace_s": _unit(grace, parse_duration), "keep_escapes": keep_escapes or None,
        "allow_userns": allow_userns or None,
        "tracer": tracer, "cgroup_mode": cgroup_mode,
        "memory_max": _limit(memory_max, parse_size),
        "pids_max": _limit(pids_max, _count), "env": env or None,
        "inherit_env": inherit_env or None, "runs_dir": runs_dir,
        "tmp_size": _unit(tmp_size, parse_size), "log_max": _unit(log_max, parse_size),
        "events_max": _unit(events_max, parse_size),
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
    as_json: Annotated[bool, typer.Option(
        "--json", help="print report.json (the same as --format json -o -)")] = False,
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
    formats = _formats(format, as_json)
    if as_json:
        output = output or "-"
    if pushgateway and not pushgateway.startswith(("http://", "https://")):
        raise HarnessError("the Pushgateway must be an http:// or https:// URL")
    return report_command(run_dir, formats or None, budget=parsed,
                          fail_on_inconclusive=fail_on_inconclusive or None, output=output,
                          metrics_textfile=metrics_textfile, pushgateway=pushgateway)


@app.command()
def compare(
    base: Annotated[Path, typer.Argument(help="the baseline run directory")],
    new: Annotated[Path, typer.Argument(help="the run directory to judge against it")],
    format: Annotated[list[str] | None, typer.Option(
        "--format", help="text, json, markdown: repeatable or comma-separated, printed in "
                         "turn (default text)")] = None,
    as_json: AsJson = False,
) -> int:
    """Say whether NEW's growth rate, peak and latency are worse than BASE's, better, the
    same, or whether the runs cannot tell (exit 1 when worse)."""
    from sandbox.commands.compare import compare_command

    return compare_command(base, new, _formats(format, as_json) or ["text"])


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
    format: Annotated[str, typer.Option(
        "--format", help="text (a table) or json (one JSON object per line)")] = "text",
    as_json: AsJson = False,
) -> int:
    """The runs, oldest first: start time, scenario, status, exit code, size, directory."""
    from sandbox.commands.runs import list_command

    return list_command(runs_dir, "json" if as_json else format)


@runs_app.command("prune")
def runs_prune(
    runs_dir: RunsDir = Path("runs"),
    keep: Annotated[int | None, typer.Option(help="keep the newest N runs")] = None,
    older_than: Annotated[str | None, typer.Option(metavar="DURATION",
        help="remove runs older than this: 7d, 12h (with --keep: of those beyond the newest N)")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="only say what would go")] = False,
) -> int:
    """Remove old run directories (never a running one)."""
    from sandbox.commands.runs import prune_command

    return prune_command(runs_dir, keep=keep,
                         older_than_s=_unit(older_than, parse_duration),
                         dry_run=dry_run)


def _flags_as_flags(command: typer.core.TyperGroup | typer.core.TyperCommand,
                    ctx: typer.Context) -> None:
    """Help shows a flag (``--help``, ``--json``, ``-v``) without a value placeholder: typer
    labels every option with its type (``<bool>``, ``<int>``); an empty metavar hides it."""
    params = [*command.params, command.get_help_option(ctx)]
    for param in params:
        if isinstance(param, typer.core.TyperOption) and (param.is_flag or param.count):
            param.metavar = ""
    for name, sub in getattr(command, "commands", {}).items():
        _flags_as_flags(sub, typer.Context(sub, parent=ctx, info_name=name))


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and map every failure to one line and an exit code."""
    command = typer.main.get_group(app)  # get_command's group (no completion options)
    _flags_as_flags(command, typer.Context(command, info_name="sandbox",
                                           help_option_names=["-h", "--help"]))
    try:
        code = command.main(args=argv, prog_name="sandbox", standalone_mode=False)
    except HarnessError as exc:
        print(f"sandbox: error: {shown(str(exc))}", file=sys.stderr)
        code = exc.exit_code
    except typer.TyperException as exc:  # typer's (vendored click's) usage errors
        print(f"sandbox: error: {shown(exc.format_message())}", file=sys.stderr)
        code = EXIT_HARNESS_ERROR
    except PermissionError as exc:  # a user without the rights a step needs: one line
        print(f"sandbox: error: {shown(exc.filename or '')}: {exc.strerror or exc} (run as "
              "root, or as the user who owns it)", file=sys.stderr)
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
