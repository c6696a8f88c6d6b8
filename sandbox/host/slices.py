"""The slice backend for the host's cgroup mode, chosen once per run."""

from __future__ import annotations

from sandbox.host.cgroup_slice import CGROUP_SLICES
from sandbox.host.cgroups import CgroupLayout
from sandbox.host.slice import Limits, Slice, SliceError
from sandbox.host.tree_slice import ProcessTreeSlice


def open_slice(run_id: str, layout: CgroupLayout, limits: Limits | None = None) -> Slice:
    """The slice for the host's cgroup mode (v2, hybrid, v1, or none: a process tree)."""
    if layout.mode == "none":
        if limits and (limits.memory_max or limits.pids_max):
            raise SliceError("memory and pids limits need a cgroup; none is usable here "
                             f"({layout.reason})")
        return ProcessTreeSlice(run_id, limits)
    return CGROUP_SLICES[layout.mode](run_id, layout, limits)
