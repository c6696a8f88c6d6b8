"""The run directory: ``runs/<utc-time>-<label>/`` and its run.json."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: The format version of each file a run writes (docs/run-directory.md has the history);
#: run.json records them, so a reader can tell what it reads. Readers accept every earlier
#: version.
FILE_FORMATS = {
    "run.json": 2, "samples.jsonl": 2, "roles.jsonl": 2, "jsheap.jsonl": 1,
    "operations.jsonl": 1, "events.jsonl": 1, "alerts.jsonl": 1, "cleanup.json": 2,
    "report.json": 4,
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
