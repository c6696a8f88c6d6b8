"""Which run a process belongs to, by kernel facts a workload cannot forge: a run's slice in
its cgroup paths, then a run's dynamic UID among its UIDs. The environment marker
(SANDBOX_RUN_ID) is read last: any process can carry any run's marker."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

from sandbox.host.registry import load_records, state_dir
from sandbox.host.slice import MARKER_ENV


@dataclass(frozen=True, slots=True)
class Owner:
    """``by``: the kernel fact that names the run, ``cgroup`` or ``uid``."""

    run_id: str
    by: str


def marker(pid: int) -> str | None:
    """The run id in ``pid``'s environment marker (None: no marker, or the process is gone)."""
    needle = f"{MARKER_ENV}=".encode()
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read()
    except OSError:
        return None
    for item in environ.split(b"\0"):
        if item.startswith(needle):
            return item[len(needle):].decode(errors="replace")
    return None


def uids(pid: int) -> set[int]:
    """Real, effective, saved and filesystem UID of ``pid`` (empty if gone)."""
    # surrogateescape: the Name: line holds the process's title, any bytes it chose
    with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/status",
                                                        errors="surrogateescape") as f:
        for line in f:
            if line.startswith("Uid:"):
                return {int(u) for u in line.split()[1:]}
    return set()


def _cgroup_names(pid: int) -> list[str]:
    """Every component of ``pid``'s cgroup paths, in every hierarchy."""
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return []
    return [part for line in text.splitlines() for part in line.split(":", 2)[-1].split("/")]


def _uid_runs() -> dict[int, str]:
    """Dynamic UID -> the run holding it, from the UID locks (any content: unreadable ones
    name no run)."""
    runs = {}
    for lock in (state_dir() / "users").glob("*.json"):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            run_id = json.loads(lock.read_text()).get("run_id")
            if isinstance(run_id, str):
                runs[int(lock.stem)] = run_id
    return runs


class Runs:
    """A snapshot of the runs on this host (their slices and UIDs) to attribute processes."""

    def __init__(self) -> None:
        self.slices = {r.name: r.marker for r in load_records()}
        self.uid_runs = _uid_runs()

    def owner(self, pid: int) -> Owner | None:
        """The run the kernel says ``pid`` belongs to (None: no run's slice nor UID)."""
        for name in _cgroup_names(pid):
            if name in self.slices:
                return Owner(self.slices[name], "cgroup")
        for uid in sorted(uids(pid)):
            if uid in self.uid_runs:
                return Owner(self.uid_runs[uid], "uid")
        return None

    def foreign(self, pid: int, run_id: str) -> Owner | None:
        """The owner of ``pid`` when it is another run than ``run_id``, else None."""
        found = self.owner(pid)
        return found if found is not None and found.run_id != run_id else None
