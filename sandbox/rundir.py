"""The run directory: ``runs/<utc-time>-<label>/``: the name of every file a run writes, each
declared once here with its format version (docs/run-directory.md has their history).
Writers take their path from these names; runreader.read_run reads them all back."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RUN = "run.json"  # the harness: config, host, backend, workload's end
SAMPLES = "samples.jsonl"  # sampler: one line per sample
ROLES = "roles.jsonl"  # sampler: per-role sweeps
ALERTS = "alerts.jsonl"  # sampler: live alerts
JS_HEAP = "jsheap.jsonl"  # workload (--js-heap)
OPERATIONS = "operations.jsonl"  # workload: one line per operation
EVENTS = "events.jsonl"  # tracer: fork, exec, exit
CLEANUP = "cleanup.json"  # verifier
REPORT = "report.json"  # reports (the other report files are in sandbox.report.FORMATS)
WORKLOAD_LOG = "workload.log"  # the workload's stdout and stderr, capped
RUN_LOG = "memory_leak_detection.log"  # the harness's log of the run (the seed's name)

#: The format version of each data file a run writes; run.json records them, so a reader can
#: tell what it reads. Readers accept every earlier version.
FILE_FORMATS = {
    RUN: 4, SAMPLES: 3, ROLES: 2, JS_HEAP: 1, OPERATIONS: 1, EVENTS: 1, ALERTS: 1, CLEANUP: 2,
    REPORT: 6,
}


#: A run directory and its files are the harness's user's only: one run's workload must not
#: read another run's records (its workload.log, run.json, events.jsonl).
DIR_MODE = 0o700
FILE_MODE = 0o600
#: A runs directory the harness makes is listable by all (the run directories in it are not).
RUNS_DIR_MODE = 0o755
#: Why another user cannot read a run (``sandbox report``, ``sandbox runs list``).
PRIVATE = ("run directories are private to the user who made them (mode 0700): run this as "
           "that user (root)")


def private_opener(path: str, flags: int) -> int:
    """``open(..., opener=private_opener)``: a file the harness's user alone can read."""
    return os.open(path, flags, FILE_MODE)


def make_runs_root(runs_root: Path) -> None:
    """Create the runs directory (and its missing parents) 0755; an existing one is left as
    it is."""
    missing = [p for p in (runs_root, *runs_root.parents) if not p.exists()]
    runs_root.mkdir(parents=True, exist_ok=True)
    for path in missing:
        path.chmod(RUNS_DIR_MODE)


def make_run_dir(runs_root: Path, label: str, now: datetime | None = None) -> Path:
    """Create a fresh private run directory; a numeric suffix keeps two runs in one second
    apart."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-")[:40] or "run"
    make_runs_root(runs_root)
    for n in range(1000):
        candidate = runs_root / (f"{stamp}-{slug}" + (f"-{n}" if n else ""))
        try:
            candidate.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        candidate.chmod(DIR_MODE)  # whatever the umask
        return candidate
    raise FileExistsError(f"no free run directory name under {runs_root}")


def write_text(path: Path, text: str) -> None:
    """Write ``text`` atomically and privately: a temporary name in the same directory, then
    renamed over ``path`` (a killed harness leaves the old file, never half a file; a failed
    write leaves no temporary file). Undecodable names (surrogates) are written escaped."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8", errors="backslashreplace"))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically and privately (:func:`write_text`)."""
    write_text(path, json.dumps(data, indent=2, default=str) + "\n")
