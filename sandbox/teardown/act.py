"""Acting on what a run left: SIGKILL its escapes through their identities, remove its files
without following a path it could have changed. The only module here that changes anything."""

from __future__ import annotations

import time
from pathlib import Path

from sandbox.host import safefs
from sandbox.host.isolation import IsolationError, PrivateFs, remove_sysv_ipc
from sandbox.host.procid import ProcessId, is_alive, is_same, send_signal
from sandbox.host.reaper import reap
from sandbox.model.cleanup import LeftoverFile, ProcessRecord


def kill_escapes(escapes: list[ProcessRecord], identities: dict[int, ProcessId],
                 timeout: float = 5.0) -> None:
    """SIGKILL each escaped process through its identity (a pid taken by another process
    since it was found is not signalled); sets each record's ``killed``."""
    for record in escapes:
        identity = identities.get(record.pid)
        record.killed = identity is not None and send_signal(identity)
    pids = {r.pid for r in escapes if r.killed}
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        reap(pids, timeout=0.05)
        pids = {p for p in pids if is_alive(p) and is_same(identities[p])}


def remove_files(run_dir: Path | None, files: list[LeftoverFile],
                 private_fs: PrivateFs | None) -> str | None:
    """Delete what the run left, never following a path it could have changed: host and
    HOME entries by name from a directory fd, SysV objects by id, the private areas by
    unmounting them. Each is tried (a tree changed under the walk is not removed).
    Returns an error line, or None."""
    errors = []
    for entry in files:
        where = entry.where or ""
        try:
            if where == "SysV IPC":
                remove_sysv_ipc(entry)
            elif where.startswith("host "):
                with safefs.open_dir(where.removeprefix("host ")) as dir_fd:
                    safefs.remove(dir_fd, Path(entry.path).name)
            elif where.startswith("run ") and run_dir is not None:
                with safefs.open_dir(run_dir) as run_fd, \
                        safefs.open_dir(where.removeprefix("run "), dir_fd=run_fd) as sub_fd:
                    safefs.remove(sub_fd, Path(entry.path).name)
        except OSError as exc:
            errors.append(f"{entry.path!r}: {exc.strerror or exc}")
    if private_fs is not None:
        try:
            private_fs.remove()
        except (OSError, IsolationError) as exc:
            errors.append(str(exc))
    return f"cannot remove the run's files: {'; '.join(errors)}" if errors else None
