"""Slices with a cgroup, one class per layout: :class:`V2Slice` (pure cgroup v2),
:class:`HybridSlice` (membership, freezing and killing in the unified hierarchy; memory and
pids on v1) and :class:`V1Slice` (every controller on v1, the freezer for membership).

Two things differ between layouts, each written once: where membership is kept and how the
slice is frozen and killed (:class:`UnifiedMembership`, :class:`FreezerMembership`), and where
the memory controller's files are (:class:`V2Memory`, :class:`V1Memory`). A layout class is
one of each; nothing branches on the layout at run time.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import time
from pathlib import Path

from sandbox.host.cgroups import UNIFIED, CgroupLayout, v1_files, v2_files
from sandbox.host.registry import SLICE_PREFIX
from sandbox.host.slice import Limits, Slice, SliceError


def write_control(path: Path, value: str) -> None:
    """Write one value to a cgroup control file (one write, as the kernel expects)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def read_pids(procs: Path) -> set[int]:
    """The pids in a ``cgroup.procs`` file; empty when it is gone."""
    try:
        return {int(x) for x in procs.read_text().split()}
    except OSError:
        return set()


def is_root_cgroup(directory: Path) -> bool:
    """The hierarchy's real root (the only cgroup the no-internal-processes rule spares): it
    has no cgroup.type, unlike every other cgroup, a cgroup namespace's root included."""
    return not (directory / "cgroup.type").exists()


def rmtree_cgroup(directory: Path, timeout: float = 5.0) -> None:
    """rmdir a cgroup and any cgroups the workload made inside it, deepest first."""
    if not directory.is_dir():
        return
    deadline = time.monotonic() + timeout
    for root, _, _ in sorted(os.walk(directory), key=lambda w: -len(w[0])):
        while True:
            try:
                os.rmdir(root)
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() >= deadline:
                    raise SliceError(f"cannot remove cgroup {root}: {exc.strerror}") from exc
                time.sleep(0.01)


class CgroupSlice(Slice):
    """A cgroup in each hierarchy the layout uses, named after the run."""

    #: the hierarchy whose cgroup.procs /proc/PID/cgroup and the teardown go by
    MEMBERSHIP = UNIFIED

    def __init__(self, run_id: str, layout: CgroupLayout, limits: Limits | None = None) -> None:
        super().__init__(run_id, limits)
        self.layout = layout
        self.dirs = {key: parent / self.name for key, parent in layout.parents.items()}
        self.membership = self.dirs[self.MEMBERSHIP]
        self.harness_leaf: Path | None = None
        self.record.dirs = [str(d) for d in self.dirs.values()]

    def path(self, key: str, filename: str) -> Path | None:
        """The slice's control file in hierarchy ``key`` (None when that hierarchy is absent)."""
        directory = self.dirs.get(key)
        return directory / filename if directory else None

    def _create(self) -> None:
        for directory in self.dirs.values():
            try:
                directory.mkdir()
            except OSError as exc:
                raise SliceError(f"cannot create cgroup {directory}: {exc.strerror}") from exc
        self._set_limits()

    def _set_limits(self) -> None:
        for key, filename, value in self._limit_files():
            if value is None:
                continue
            target = self.path(key, filename)
            if target is None:
                raise SliceError(f"no {filename.split('.')[0]} controller to set {filename}")
            write_control(target, str(value))

    def _limit_files(self) -> list[tuple[str, str, int | None]]:
        """(hierarchy, file, value) of each limit."""
        raise NotImplementedError

    def join(self) -> None:
        pid = str(os.getpid())
        for directory in self.dirs.values():
            write_control(directory / "cgroup.procs", pid)

    def _pids(self) -> set[int]:
        found: set[int] = set()
        if not self.membership.is_dir():
            return found
        for root, _, _ in os.walk(self.membership):
            found |= read_pids(Path(root) / "cgroup.procs")
        return found

    def evict(self, pid: int) -> None:
        """Write ``pid`` into the parent of each slice directory (of each hierarchy) that
        still holds it."""
        for directory in self.dirs.values():
            for root, _, _ in os.walk(directory):
                if pid in read_pids(Path(root) / "cgroup.procs"):
                    with contextlib.suppress(OSError):
                        write_control(directory.parent / "cgroup.procs", str(pid))
                    break

    def remove(self) -> None:
        for directory in self.dirs.values():
            rmtree_cgroup(directory)
        if self.harness_leaf is not None:
            self._leave_harness_leaf()
        if not any(d.exists() for d in self.dirs.values()):
            super().remove()

    def _leave_harness_leaf(self) -> None:
        """Move the harness back to its cgroup when no other slice needs the controllers."""
        parent, leaf = self.layout.parents[UNIFIED], self.harness_leaf
        if leaf is None or any(p.name.startswith(SLICE_PREFIX) and p != leaf
                               for p in parent.iterdir() if p.is_dir()):
            return
        with contextlib.suppress(OSError):
            write_control(parent / "cgroup.subtree_control", "-memory -pids")
            write_control(parent / "cgroup.procs", str(os.getpid()))
            leaf.rmdir()
            self.harness_leaf = None

    def to_dict(self) -> dict:
        return {**super().to_dict(), "dirs": {k: str(v) for k, v in self.dirs.items()}}

    @property
    def has_cgroup(self) -> bool:
        return True

    def escape_targets(self) -> list[str]:
        targets = []
        for key, directory in self.dirs.items():
            if key == UNIFIED and self.layout.unified_mount is not None:
                targets.append(str(self.layout.unified_mount / "cgroup.procs"))
            else:
                targets.append(str(directory.parent / "cgroup.procs"))
        return targets

    def cgroup_dirs(self) -> list[Path]:
        return sorted(d for d in self.dirs.values() if d.exists())

    def membership_cgroup(self) -> tuple[str, Path, Path | None] | None:
        mount = (self.layout.unified_mount if self.MEMBERSHIP == UNIFIED
                 else self.layout.v1_mounts.get(self.MEMBERSHIP))
        return self.MEMBERSHIP, self.membership, mount


# -- membership: how the slice is frozen, killed and waited for -----------------------------
class UnifiedMembership(CgroupSlice):
    """cgroup v2 core files (also on hybrid hosts): cgroup.kill, cgroup.freeze, and
    cgroup.events to wait on."""

    MEMBERSHIP = UNIFIED

    def _owned_zombie(self, pid: int) -> bool:
        """A zombie leaves cgroup.procs but keeps its unified cgroup in /proc/PID/cgroup."""
        mount = self.layout.unified_mount
        try:
            text = Path(f"/proc/{pid}/cgroup").read_text()
        except OSError:
            return False
        if mount is None:  # no unified hierarchy: no unified membership to keep
            return False
        mine = "/" + str(self.membership.relative_to(mount))
        return any(line == f"0::{mine}" or line.startswith(f"0::{mine}/")
                   for line in text.splitlines())

    def freeze(self) -> None:
        write_control(self.membership / "cgroup.freeze", "1")
        self._wait_event("frozen 1", 5.0)

    def thaw(self) -> None:
        write_control(self.membership / "cgroup.freeze", "0")

    def kill(self) -> None:
        if self.membership.is_dir():
            write_control(self.membership / "cgroup.kill", "1")

    def wait_empty(self, timeout: float) -> bool:
        if not self.membership.is_dir():
            return super().wait_empty(timeout)
        return self._wait_event("populated 0", timeout)

    def _wait_event(self, line: str, timeout: float) -> bool:
        """Wait for ``line`` in cgroup.events using poll(POLLPRI), as the kernel notifies."""
        deadline = time.monotonic() + timeout
        fd = os.open(self.membership / "cgroup.events", os.O_RDONLY)
        try:
            poller = select.poll()
            poller.register(fd, select.POLLPRI | select.POLLERR)
            while line.encode() not in os.pread(fd, 4096, 0).splitlines():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                poller.poll(min(remaining, 0.1) * 1000)
            return True
        finally:
            os.close(fd)


class FreezerMembership(CgroupSlice):
    """cgroup v1 only: the freezer hierarchy; no cgroup.kill, so freeze (nothing forks),
    SIGKILL each process, thaw to let them die."""

    MEMBERSHIP = "freezer"

    def freeze(self) -> None:
        state = self.dirs["freezer"] / "freezer.state"
        write_control(state, "FROZEN")
        deadline = time.monotonic() + 5
        while state.read_text().strip() != "FROZEN":
            if time.monotonic() > deadline:
                raise SliceError("freezer did not reach FROZEN in 5 s")
            time.sleep(0.005)

    def thaw(self) -> None:
        write_control(self.dirs["freezer"] / "freezer.state", "THAWED")

    def kill(self) -> None:
        if not self.membership.is_dir():
            return
        self.freeze()
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.thaw()


# -- memory: where the memory and pids controllers' files are -------------------------------
class V2Memory(CgroupSlice):
    """memory and pids in the unified hierarchy (enabled for the slice by its parent)."""

    def _create(self) -> None:
        self._prepare_parent()
        super()._create()

    def _prepare_parent(self) -> None:
        """Enable memory+pids for children of the harness's cgroup. The no-internal-processes
        rule forbids that while the harness itself sits there (except in the real root), so the
        harness first moves into a leaf of its own (as nsjail and container-in-container
        entrypoints do). In a container with a cgroup namespace the harness's cgroup is the
        namespace's root, /sys/fs/cgroup, and the rule holds there too."""
        parent = self.layout.parents[UNIFIED]
        enabled = set((parent / "cgroup.subtree_control").read_text().split())
        if {"memory", "pids"} <= enabled:
            return
        if not is_root_cgroup(parent) and os.getpid() in read_pids(parent / "cgroup.procs"):
            leaf = parent / f"{SLICE_PREFIX}harness-{os.getpid()}"
            leaf.mkdir(exist_ok=True)
            write_control(leaf / "cgroup.procs", str(os.getpid()))
            self.harness_leaf = leaf
            self.record.harness_leaf = str(leaf)
            self.record.save()
        try:
            write_control(parent / "cgroup.subtree_control", "+memory +pids")
        except OSError as exc:
            raise SliceError(
                f"cannot enable memory and pids controllers in {parent} ({exc.strerror}); "
                "other processes share the harness's cgroup: run it in a delegated scope "
                "(systemd-run --scope -p Delegate=yes), a service with Delegate=yes, or as "
                "its container's entrypoint (no --init)"
            ) from exc

    def _limit_files(self) -> list[tuple[str, str, int | None]]:
        return [(UNIFIED, "memory.max", self.limits.memory_max),
                (UNIFIED, "pids.max", self.limits.pids_max)]

    def oom_kills(self) -> int | None:
        """``oom_kill`` of memory.events."""
        return _keyed_value(self.path(UNIFIED, "memory.events"), "oom_kill")

    def pids_limit_hits(self) -> int | None:
        """``max`` of pids.events."""
        return _keyed_value(self.path(UNIFIED, "pids.events"), "max")

    def sampler_files(self) -> tuple[str, dict[str, Path | None], Path | None] | None:
        return "v2", dict(v2_files(self.dirs[UNIFIED])), self.membership

    def memory_stat(self) -> dict[str, int]:
        values = {}
        for key, value in _keyed_lines(self.path(UNIFIED, "memory.stat")):
            with contextlib.suppress(ValueError):
                values[key] = int(value)
        return values


class V1Memory(CgroupSlice):
    """memory, pids and cpuacct each in a v1 hierarchy of its own."""

    def _limit_files(self) -> list[tuple[str, str, int | None]]:
        return [("memory", "memory.limit_in_bytes", self.limits.memory_max),
                ("pids", "pids.max", self.limits.pids_max)]

    def oom_kills(self) -> int | None:
        """``oom_kill`` of memory.oom_control (kernel >= 4.13)."""
        return _keyed_value(self.path("memory", "memory.oom_control"), "oom_kill")

    def pids_limit_hits(self) -> int | None:
        """``max`` of the v1 pids.events."""
        return _keyed_value(self.path("pids", "pids.events"), "max")

    def sampler_files(self) -> tuple[str, dict[str, Path | None], Path | None] | None:
        return "v1", v1_files(self.dirs.get("memory"), self.dirs.get("pids"),
                              self.dirs.get("cpuacct"), self.dirs.get(UNIFIED)), self.membership

    def memory_stat(self) -> dict[str, int]:
        """The hierarchical ``total_*`` values, under v2's names."""
        values = {}
        for key, value in _keyed_lines(self.path("memory", "memory.stat")):
            if not key.startswith("total_"):
                continue
            name = {"total_rss": "anon", "total_cache": "file"}.get(
                key, key.removeprefix("total_"))
            with contextlib.suppress(ValueError):
                values[name] = int(value)
        return values


def _keyed_lines(path: Path | None) -> list[tuple[str, str]]:
    """(key, value) pairs of a flat-keyed control file; empty if absent or unreadable."""
    try:
        text = path.read_text() if path else ""
    except OSError:
        return []
    return [(key, value) for key, _, value in (line.partition(" ") for line in text.splitlines())]


def _keyed_value(path: Path | None, key: str) -> int | None:
    """``key``'s value in a flat-keyed control file (None if absent or unreadable)."""
    return next((int(value) for name, value in _keyed_lines(path) if name == key), None)


# -- the layouts ----------------------------------------------------------------------------
class V2Slice(UnifiedMembership, V2Memory):
    """Pure cgroup v2."""

    backend = "v2"


class HybridSlice(UnifiedMembership, V1Memory):
    """Hybrid: cgroup v2 core files for membership, v1 memory and pids."""

    backend = "hybrid"


class V1Slice(FreezerMembership, V1Memory):
    """cgroup v1 only."""

    backend = "v1"


CGROUP_SLICES: dict[str, type[CgroupSlice]] = {
    "v2": V2Slice, "hybrid": HybridSlice, "v1": V1Slice}
