"""Run the ``sandbox`` command as a user would, and wait on what a run writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def sandbox(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sandbox", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def start_sandbox(*args: str) -> subprocess.Popen:
    """``sandbox`` in the background (communicate() for its output)."""
    return subprocess.Popen([sys.executable, "-m", "sandbox", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def run_python(source: str, runs_dir: Path, *options: str) -> subprocess.CompletedProcess:
    """``sandbox run OPTIONS --runs-dir RUNS_DIR -- python SCRIPT``: ``source`` written to a
    file the run's own UID can read (/var/tmp, not this test's private tmp), removed after."""
    script = Path("/var/tmp") / f"sandbox-test-{os.getpid()}-{time.monotonic_ns()}.py"
    script.write_text(source)
    script.chmod(0o644)
    try:
        return sandbox("run", *options, "--runs-dir", str(runs_dir), "--", sys.executable,
                       str(script))
    finally:
        script.unlink()


def only_run_dir(runs_dir: Path) -> Path:
    (run_dir,) = runs_dir.iterdir()
    return run_dir


def report_of(runs_dir: Path) -> dict[str, Any]:
    return json.loads((only_run_dir(runs_dir) / "report.json").read_text())


def wait_for_lines(runs_dir: Path, name: str, lines: int, timeout: float = 60) -> None:
    """Until the run's ``name`` file has ``lines`` lines (the run is under way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(runs_dir.glob(f"*/{name}"))
        if found and len(found[0].read_text().splitlines()) >= lines:
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} did not reach {lines} lines in {timeout:.0f} s")
