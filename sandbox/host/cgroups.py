"""Where the cgroup hierarchies are mounted and where this process sits in them.

Read once from /proc/self/mountinfo and /proc/self/cgroup. The v1 side uses cgroup-utils'
mount discovery (``cgutils.cgroup.SubsystemStatus``) where it is available.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

#: v1 controllers the harness uses: accounting (memory, pids, cpuacct) and freezing (freezer).
V1_CONTROLLERS = ("memory", "pids", "freezer", "cpuacct")
UNIFIED = "unified"


@dataclass(frozen=True)
class CgroupLayout:
    """The host's cgroup mode and the directories a run's slice is created under.

    ``mode`` is ``v2`` (unified with memory+pids), ``hybrid`` (cgroup2 core for membership and
    kill, v1 memory/pids for accounting), ``v1`` or ``none`` (no usable cgroup: process tree).
    ``parents`` maps a hierarchy key (``unified`` or a v1 controller) to the harness's own cgroup
    directory in it, under which slices are created.
    """

    mode: str
    parents: dict[str, Path] = field(default_factory=dict)
    unified_mount: Path | None = None
    v1_mounts: dict[str, Path] = field(default_factory=dict)
    v2_controllers: tuple[str, ...] = ()
    reason: str = ""

    def to_dict(self) -> dict:
        return {
            "mode": self.mode,
            "parents": {k: str(v) for k, v in self.parents.items()},
            "unified_mount": str(self.unified_mount) if self.unified_mount else None,
            "v1_mounts": {k: str(v) for k, v in self.v1_mounts.items()},
            "v2_controllers": list(self.v2_controllers),
            "reason": self.reason,
        }


def parse_mountinfo(text: str) -> list[tuple[str, Path, str, set[str]]]:
    """(mount root, mount point, fs type, super options) of every cgroup mount."""
    mounts = []
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if not rfields or rfields[0] not in ("cgroup", "cgroup2"):
            continue
        opts = set(rfields[2].split(",")) if len(rfields) > 2 else set()
        mounts.append((fields[3], Path(fields[4]), rfields[0], opts))
    return mounts


def mount_root(mount: Path, mountinfo: Path = Path("/proc/self/mountinfo")) -> str:
    """The hierarchy path mounted at ``mount`` ("/" on a host; a container's own cgroup where
    its runtime bind-mounted it, e.g. /libpod_parent/libpod-ID on v1): /proc/PID/cgroup paths
    start there."""
    try:
        text = mountinfo.read_text()
    except OSError:
        return "/"
    roots = [root for root, point, _, _ in parse_mountinfo(text) if point == mount]
    return roots[-1] if roots else "/"


def _v1_mounts_from_cgutils() -> dict[str, Path]:
    try:
        with warnings.catch_warnings():  # its sources have invalid escapes: compiled once, they
            warnings.simplefilter("ignore", DeprecationWarning)  # warn a user's terminal
            warnings.simplefilter("ignore", SyntaxWarning)
            from cgutils.cgroup import SubsystemStatus
    except ImportError:
        return {}
    try:
        paths = SubsystemStatus().paths
    except OSError:
        return {}
    return {c: Path(paths[c]) for c in V1_CONTROLLERS if c in paths}


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """Hierarchy key -> a process's cgroup path (relative to the hierarchy's root)."""
    own: dict[str, str] = {}
    for line in text.splitlines():
        hier_id, controllers, path = line.split(":", 2)
        if hier_id == "0" and controllers == "":
            own[UNIFIED] = path
        for controller in controllers.split(","):
            if controller in V1_CONTROLLERS:
                own[controller] = path
    return own


def _under_mount(mount: Path, mount_root: str, cgroup_path: str) -> Path:
    rel = cgroup_path
    if mount_root != "/" and rel.startswith(mount_root):
        rel = rel[len(mount_root):]
    return mount / rel.lstrip("/")


def discover_layout(
    force_mode: str | None = None,
    mountinfo: str | None = None,
    proc_cgroup: str | None = None,
) -> CgroupLayout:
    """Find the cgroup mode; ``force_mode`` may only step down (v2/hybrid -> v1 -> none).

    ``mountinfo`` and ``proc_cgroup`` default to this process's /proc files (tests pass the
    contents of other hosts')."""
    if force_mode not in (None, "v2", "hybrid", "v1", "none"):
        raise ValueError(f"unknown cgroup mode {force_mode!r} (v2, hybrid, v1 or none)")
    if os.geteuid() != 0:
        return CgroupLayout(mode="none", reason="not root: cgroups cannot be created")
    if force_mode == "none":
        return CgroupLayout(mode="none", reason="forced by configuration")
    this_host = mountinfo is None
    if mountinfo is None:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    if proc_cgroup is None:
        proc_cgroup = Path("/proc/self/cgroup").read_text()
    mounts = parse_mountinfo(mountinfo)
    own = parse_proc_cgroup(proc_cgroup)
    unified = next(((root, mp) for root, mp, fs, _ in mounts if fs == "cgroup2"), None)
    v1: dict[str, tuple[str, Path]] = {}
    for root, mp, fs, opts in mounts:
        if fs == "cgroup":
            for c in V1_CONTROLLERS:
                if c in opts:
                    v1[c] = (root, mp)
    cgutils_mounts = _v1_mounts_from_cgutils() if v1 and this_host else {}
    v1_mounts = {c: cgutils_mounts.get(c, mp) for c, (_, mp) in v1.items()}

    controllers: tuple[str, ...] = ()
    parents: dict[str, Path] = {}
    if unified is not None and UNIFIED in own:
        root, mp = unified
        controllers = tuple((mp / "cgroup.controllers").read_text().split())
        parents[UNIFIED] = _under_mount(mp, root, own[UNIFIED])
    for c, (root, _) in v1.items():
        if c in own:
            parents[c] = _under_mount(v1_mounts[c], root, own[c])

    unified_mount = unified[1] if unified else None
    has_v2 = unified is not None and {"memory", "pids"} <= set(controllers)
    has_v1 = {"memory", "pids"} <= v1.keys()
    mode, reason = "none", "no cgroup hierarchy with memory and pids controllers"
    if has_v2 and force_mode in (None, "v2"):
        mode, reason = "v2", ""
    elif unified is not None and has_v1 and force_mode in (None, "hybrid"):
        mode, reason = "hybrid", ""
    elif has_v1 and "freezer" in v1 and force_mode in (None, "hybrid", "v1"):
        mode, reason = "v1", "forced by configuration" if force_mode == "v1" else ""
    if force_mode and mode != force_mode and mode != "none":
        mode, reason = "none", f"requested cgroup mode {force_mode} is not available here"

    wanted = {"v2": [UNIFIED], "hybrid": [UNIFIED, "memory", "pids"],
              "v1": ["memory", "pids", "freezer"]}.get(mode, [])
    missing = [k for k in wanted if k not in parents or not os.access(parents[k], os.W_OK)]
    if missing:
        mode, reason = "none", f"cgroup directory not writable: {', '.join(missing)}"
    keep = wanted + (["cpuacct"] if mode in ("hybrid", "v1") and "cpuacct" in parents else [])
    return CgroupLayout(
        mode=mode,
        parents={k: parents[k] for k in keep if k in parents},
        unified_mount=unified_mount,
        v1_mounts=v1_mounts,
        v2_controllers=controllers,
        reason=reason,
    )


#: Pure v2: role -> file name in the slice's unified directory.
V2_FILES = {
    "current": "memory.current",
    "stat": "memory.stat",
    "peak": "memory.peak",
    "events": "memory.events",
    "pids": "pids.current",
    "cpu": "cpu.stat",
    "pressure": "memory.pressure",
}


def v2_files(directory: Path) -> dict[str, Path]:
    """Role -> path for a pure cgroup v2 slice directory."""
    return {role: directory / name for role, name in V2_FILES.items()}


def v1_files(
    memory: Path | None, pids: Path | None, cpuacct: Path | None, unified: Path | None
) -> dict[str, Path | None]:
    """Role -> path for a v1 or hybrid slice (``unified`` only on hybrid hosts)."""

    def under(directory: Path | None, name: str) -> Path | None:
        return directory / name if directory is not None else None

    return {
        "current": under(memory, "memory.usage_in_bytes"),
        "stat": under(memory, "memory.stat"),
        "peak": under(memory, "memory.max_usage_in_bytes"),
        "oom_control": under(memory, "memory.oom_control"),
        "kmem": under(memory, "memory.kmem.usage_in_bytes"),
        "pids": under(pids, "pids.current"),
        "cpuacct": under(cpuacct, "cpuacct.usage"),
        # cpu.stat of the unified core is the fallback when cpuacct is not mounted
        "cpu": under(unified, "cpu.stat") if cpuacct is None else None,
        "pressure": under(unified, "memory.pressure"),
    }
