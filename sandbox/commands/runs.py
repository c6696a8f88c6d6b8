"""``sandbox runs list|prune``: the run directories under a runs directory, and retention.

A run directory is a direct child holding a ``run.json``; anything else is never listed or
removed. A run whose harness is still alive (its slice record names the directory) is never
pruned. Removal goes through directory fds and never follows a symlink (host.safefs).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sandbox import rundir
from sandbox.errors import HarnessError
from sandbox.host import safefs
from sandbox.host.registry import load_records
from sandbox.model.run_info import RunInfo
from sandbox.untrusted import rich_text, shown


@dataclass(frozen=True)
class RunEntry:
    """One run directory as the list shows it."""

    path: Path
    started: float  # Unix time (run.json's ``started``, else the directory's mtime)
    label: str
    status: str  # the report's status, RUNNING, INTERRUPTED, or "no report"
    exit_code: int | None
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "started": self.started, "label": self.label,
                "status": self.status, "exit_code": self.exit_code,
                "size_bytes": self.size_bytes}


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _live_run_dirs() -> set[Path] | None:
    """The run directories of live harnesses; None to a user who cannot read the harness's
    state (who cannot tell)."""
    try:
        records = load_records()
    except PermissionError:
        return None
    return {Path(r.run_dir).resolve() for r in records if r.run_dir and r.harness_alive()}


def _status(path: Path, live: set[Path] | None, report: dict[str, Any]) -> str:
    """RUNNING while its harness lives; else the report's status; INTERRUPTED when the
    harness died before its verifier wrote cleanup.json (``sandbox cleanup`` finishes it)."""
    if live is not None and path.resolve() in live:
        return "RUNNING"
    if report.get("status"):
        return str(report["status"])
    gone = live is not None and not (path / rundir.CLEANUP).exists()
    return "INTERRUPTED" if gone else "no report"


def list_runs(runs_dir: Path) -> list[RunEntry]:
    """The runs under ``runs_dir``, oldest first; raises HarnessError without the directory."""
    try:
        children = list(runs_dir.iterdir())
    except FileNotFoundError as exc:
        raise HarnessError(f"no runs directory {runs_dir}") from exc
    except OSError as exc:
        raise HarnessError(f"cannot list {runs_dir}: {exc.strerror or exc}") from exc
    live = _live_run_dirs()
    entries, private = [], 0
    for path in children:
        if path.is_symlink() or not path.is_dir():
            continue
        if not os.access(path, os.R_OK | os.X_OK):
            private += 1
            continue
        if not (path / rundir.RUN).is_file():
            continue
        run = RunInfo.from_dict(_read(path / rundir.RUN))
        report = _read(path / rundir.REPORT)
        config, started = run.config, run.started
        status = _status(path, live, report)
        with safefs.open_dir(path) as fd:
            size = safefs.usage(fd)[0]
        entries.append(RunEntry(
            path=path,
            started=started if started is not None else path.stat().st_mtime,
            label=config.scenario or (Path(config.command[0]).name if config.command else "run"),
            status=status,
            exit_code=report.get("exit_code") if isinstance(report.get("exit_code"), int)
            else None,
            size_bytes=size,
        ))
    if private:
        raise HarnessError(f"cannot read {private} run director{'y' if private == 1 else 'ies'} "
                           f"in {runs_dir}: {rundir.PRIVATE}")
    return sorted(entries, key=lambda e: (e.started, e.path.name))


def to_prune(entries: list[RunEntry], *, keep: int | None, older_than_s: float | None,
             now: float | None = None) -> list[RunEntry]:
    """The runs to remove: all but the newest ``keep``, and of those only the ones older than
    ``older_than_s`` when given; never a running one."""
    if keep is None and older_than_s is None:
        raise HarnessError("say what to prune: --keep N, --older-than AGE, or both")
    if keep is not None and keep < 0:
        raise HarnessError("--keep must be 0 or more")
    now = time.time() if now is None else now
    candidates = entries[:-keep] if keep else list(entries)
    if older_than_s is not None:
        candidates = [e for e in candidates if now - e.started > older_than_s]
    return [e for e in candidates if e.status != "RUNNING"]


def remove_run(entry: RunEntry) -> None:
    """Delete one run directory, never following a symlink inside it."""
    with safefs.open_dir(entry.path.parent) as parent:
        safefs.remove(parent, entry.path.name)


def list_command(runs_dir: Path, fmt: str = "text") -> int:
    """The runs, oldest first: a table (``text``), or one JSON object per line (``json``)."""
    if fmt not in ("text", "json"):
        raise HarnessError(f"unknown format {fmt!r}; choose from text, json")
    entries = list_runs(runs_dir)
    if fmt == "json":
        for entry in entries:
            print(json.dumps(entry.to_dict()))
        return 0
    table = Table(title=rich_text(f"runs in {runs_dir}"))
    for column in ("started (UTC)", "scenario", "status", "exit", "size", "directory"):
        table.add_column(column)
    for e in entries:
        table.add_row(datetime.fromtimestamp(e.started, UTC).strftime("%Y-%m-%d %H:%M:%S"),
                      rich_text(e.label), rich_text(e.status),
                      "" if e.exit_code is None else str(e.exit_code),
                      f"{e.size_bytes / 2**20:.1f} MB", rich_text(e.path.name))
    Console(width=None if sys.stdout.isatty() else 1000).print(table)  # a log: never cut
    return 0


def prune_command(runs_dir: Path, *, keep: int | None, older_than_s: float | None,
                  dry_run: bool) -> int:
    """Remove (or, ``dry_run``, name) the runs :func:`to_prune` picks."""
    doomed = to_prune(list_runs(runs_dir), keep=keep, older_than_s=older_than_s)
    for entry in doomed:
        if not dry_run:
            remove_run(entry)
        print(f"{'would remove' if dry_run else 'removed'} {shown(entry.path)}")
    print(f"{len(doomed)} run(s) {'to remove' if dry_run else 'removed'}")
    return 0
