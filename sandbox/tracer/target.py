"""What "in the run's slice" means for one process, read from /proc (shared by every tracer
backend and the verifier)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sandbox.host.cgroups import UNIFIED, mount_root, parse_proc_cgroup
from sandbox.host.slice import MARKER_ENV, Slice


def proc_cgroups(pid: int) -> dict[str, str] | None:
    """Hierarchy key (``unified`` or a v1 controller) -> cgroup path of ``pid``; None if gone."""
    try:
        return parse_proc_cgroup(Path(f"/proc/{pid}/cgroup").read_text())
    except (OSError, ValueError):
        return None


def hierarchy_names() -> dict[int, str]:
    """Hierarchy id -> name as in /proc/self/cgroup (0 is ``unified``; v1 ids name their
    controllers, e.g. ``memory`` or ``cpu,cpuacct``)."""
    names = {0: UNIFIED}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        hier_id, controllers, _ = line.split(":", 2)
        if hier_id != "0":
            names[int(hier_id)] = controllers
    return names


def has_marker(pid: int, run_id: str) -> bool:
    """Whether ``pid``'s environment carries the run's marker."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f"{MARKER_ENV}={run_id}\0".encode() in f.read() + b"\0"
    except OSError:
        return False


@dataclass(frozen=True)
class SliceTarget:
    """The slice as the tracers see it: its membership hierarchy, its path there (as
    /proc/<pid>/cgroup spells it) and its v2 cgroup id (0 without a unified directory)."""

    run_id: str
    hierarchy: str | None
    path: str | None
    hierarchy_id: int
    cgroup_id: int
    v2_cgroup_id: int

    @classmethod
    def of(cls, slice_: Slice) -> SliceTarget:
        membership = slice_.membership_cgroup()
        if membership is None:
            return cls(slice_.run_id, None, None, 0, 0, 0)
        key, directory, mount = membership
        rel = "/" + str(directory.relative_to(mount)) if mount else str(directory)
        if mount and (root := mount_root(mount)) != "/":  # /proc/PID/cgroup names it whole
            rel = root.rstrip("/") + rel
        ids = {name: num for num, name in hierarchy_names().items()}
        hier_id = next((num for name, num in ids.items() if key in name.split(",")), 0)
        cgroup_id = os.stat(directory).st_ino
        v2_id = cgroup_id if key == UNIFIED else 0
        return cls(slice_.run_id, key, rel, hier_id, cgroup_id, v2_id)

    def inside(self, path: str | None) -> bool:
        """Whether a cgroup path of the membership hierarchy lies in the slice."""
        if path is None or self.path is None:
            return False
        return path == self.path or path.startswith(self.path + "/")

    def contains(self, pid: int) -> bool:
        """Whether ``pid`` is in the slice now (without cgroups: carries the run's marker)."""
        if self.hierarchy is None:
            return has_marker(pid, self.run_id)
        groups = proc_cgroups(pid)
        return groups is not None and self.inside(groups.get(self.hierarchy))

    def where(self, pid: int) -> str | None:
        """``pid``'s cgroup path in the membership hierarchy (None if gone or no cgroups)."""
        groups = proc_cgroups(pid)
        return groups.get(self.hierarchy) if groups and self.hierarchy else None
