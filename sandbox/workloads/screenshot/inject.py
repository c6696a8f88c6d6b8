"""Fault injections outside the browser: a detached child that outlives the workload
(``orphan``), a child that moves itself out of the slice (``escape``) and files left behind
(``tmpfile``). The browser-side ones (``pages``, ``heap``) live in the operation loop.

Each is a real fault, for the harness's detectors to find on their own; what the workload
reports about them is only a label."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SHM_DIR = Path("/dev/shm")
TMPFILE_BYTES = 64 * 1024

# A daemon by double fork + setsid. It prints its pid on stdout, closes stdout (so the
# workload's read ends), writes that pid into each cgroup.procs file given (escape), then
# sleeps: it stays until something kills it.
_DAEMON = """
import os, sys, time
os.setsid()
if os.fork():
    os._exit(0)
pid = str(os.getpid())
print(pid, flush=True)
null = os.open(os.devnull, os.O_RDWR)
os.dup2(null, 1)
for procs in sys.argv[2:]:
    try:
        with open(procs, "w") as f:
            f.write(pid)
    except OSError as exc:
        print(f"escape: cannot move into {procs}: {exc.strerror}", file=sys.stderr, flush=True)
os.dup2(null, 2)
time.sleep(3600)
"""


def start_daemon(kind: str, cgroup_procs: list[str] | None = None) -> int:
    """Start a detached ``sleep``-like daemon (argv names ``kind``); returns its pid."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _DAEMON, f"sandbox-inject-{kind}", *(cgroup_procs or [])],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, close_fds=True,
    )
    out, _ = proc.communicate(timeout=30)
    try:
        return int(out.split()[0])
    except (IndexError, ValueError) as exc:
        raise RuntimeError(f"{kind} injection: the daemon did not start") from exc


def leave_files(run_id: str, n: int) -> list[str]:
    """Leave one file in TMPDIR and one in /dev/shm, named after the run."""
    name = f"sandbox-{run_id}-leak-{n}"
    tmpdir = Path(os.environ.get("TMPDIR") or "/tmp")
    paths = [tmpdir / f"{name}.tmp", SHM_DIR / name]
    data = os.urandom(TMPFILE_BYTES)
    for path in paths:
        path.write_bytes(data)
    return [str(p) for p in paths]
