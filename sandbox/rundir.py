"""The run directory: ``runs/<utc-time>-<label>/``: the name of every file a run writes, each
declared once here with its format version (docs/run-directory.md has their history).
Writers take their path from these names; runreader.read_run reads them all back."""

from __future__ import annotations

import json
import os
import re
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
    RUN: 3, SAMPLES: 2, ROLES: 2, JS_HEAP: 1, OPERATIONS: 1, EVENTS: 1, ALERTS: 1, CLEANUP: 2,
    REPORT: 4,
}


def make_run_dir(runs_root: Path, label: str, now: datetime | None = None) -> Path:
    """Create a fresh run directory; a numeric suffix keeps two runs in one second apart."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-")[:40] or "run"
    runs_root.mkdir(parents=True, exist_ok=True)
    for n in range(1000):
        candidate = runs_root / (f"{stamp}-{slug}" + (f"-{n}" if n else ""))
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"no free run directory name under {runs_root}")


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically (a killed harness leaves the old file, never half a file)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)
