"""``sandbox`` command line. Errors become exit codes here, in one place:
0 ok, 1 critical, 2 warnings, 3 harness error (bad input, cannot run)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from typer._click.exceptions import ClickException  # typer >= 0.29 vendors click

from sandbox.durations import parse_duration
from sandbox.errors import HarnessError

EXIT_HARNESS_ERROR = 3

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Run a workload in its own cgroup, watch it, tear it down, judge leaks.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _duration(value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


@app.command(context_settings={"allow_interspersed_args": False})
def run(
    command: Annotated[list[str] | None, typer.Argument(help="command to run (after --)")] = None,
    duration: Annotated[str, typer.Option(help="how long the run lasts (30s, 2m, 1h)")] = "10s",
    runs_dir: Annotated[Path, typer.Option(help="where run directories are made")] = Path("runs"),
    memory_max: Annotated[int | None, typer.Option(help="memory limit of the slice, bytes")] = None,
    pids_max: Annotated[int | None, typer.Option(help="process limit of the slice")] = None,
    cgroup_mode: Annotated[
        str | None, typer.Option(help="step the cgroup mode down: hybrid, v1 or none")
    ] = None,
) -> int:
    """Run a workload in a fresh slice and tear it down."""
    from sandbox.runner import RunConfig
    from sandbox.runner import run as run_workload

    config = RunConfig(
        command=list(command or []),
        duration_s=_duration(duration),
        runs_dir=runs_dir,
        memory_max=memory_max,
        pids_max=pids_max,
        cgroup_mode=cgroup_mode,
    )
    outcome = run_workload(config)
    print(f"run directory: {outcome.run_dir}")
    return outcome.exit_code


@app.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="print the facts as JSON")] = False,
) -> int:
    """Show what this host offers a run; exit 3 with the reason when no run can be made."""
    from sandbox.host import discover

    facts = discover()
    problems = facts.problems()
    if as_json:
        print(json.dumps({**facts.to_dict(), "problems": problems}, indent=2))
    else:
        table = Table(title="sandbox doctor", show_header=False)
        for key, value in facts.to_dict().items():
            if key == "cgroup":
                table.add_row("cgroup mode", value["mode"] + (f" ({value['reason']})"
                                                             if value["reason"] else ""))
                for hier, path in value["parents"].items():
                    table.add_row(f"  {hier}", path)
            else:
                table.add_row(key.replace("_", " "), "—" if value is None else str(value))
        Console().print(table)
    if problems:
        raise HarnessError(problems[0])
    return 0


@app.command()
def cleanup() -> int:
    """Kill and remove slices left behind by a harness that died (runs before every run)."""
    from sandbox.host import cleanup_stale

    cleaned = cleanup_stale()
    for item in cleaned:
        print(f"removed {item.name}: killed {len(item.killed)} processes, "
              f"{len(item.removed_dirs)} cgroup directories"
              + (f" (error: {item.error})" if item.error else ""))
    if not cleaned:
        print("no stale slices")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and map every failure to one line and an exit code."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="sandbox", standalone_mode=False)
    except HarnessError as exc:
        print(f"sandbox: error: {exc}", file=sys.stderr)
        code = EXIT_HARNESS_ERROR
    except ClickException as exc:
        print(f"sandbox: error: {exc.format_message()}", file=sys.stderr)
        code = EXIT_HARNESS_ERROR
    except (typer.Abort, KeyboardInterrupt):
        print("sandbox: error: interrupted", file=sys.stderr)
        code = EXIT_HARNESS_ERROR
    except Exception as exc:  # a bug or an unforeseen host problem: still one line
        if os.environ.get("SANDBOX_DEBUG"):
            raise
        print(f"sandbox: internal error: {type(exc).__name__}: {exc} "
              "(set SANDBOX_DEBUG=1 for the traceback)", file=sys.stderr)
        code = EXIT_HARNESS_ERROR
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
