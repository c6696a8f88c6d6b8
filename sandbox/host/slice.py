"""A run's slice: one fresh cgroup (or, without cgroups, a marked process tree) per run.

Lifecycle: create -> spawn (the child joins the slice before it execs) -> [freeze] -> kill ->
wait until empty -> reap -> remove. Use it as a context manager: teardown always runs, also on
KeyboardInterrupt or an exception.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from sandbox.errors import HarnessError
from sandbox.host.cgroups import UNIFIED, CgroupLayout, v1_files, v2_files
from sandbox.host.isolation import RunUser
from sandbox.host.reaper import become_subreaper, reap, state
from sandbox.host.registry import SLICE_PREFIX, SliceRecord, this_harness

MARKER_ENV = "SANDBOX_RUN_ID"


class SliceError(HarnessError):
    """The slice could not be created or used (maps to exit code 3)."""


@dataclass(frozen=True)
class Limits:
    memory_max: int | None = None
    pids_max: int | None = None


def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read_pids(procs: Path) -> set[int]:
    try:
        return {int(x) for x in procs.read_text().split()}
    except (FileNotFoundError, OSError):
        return set()


def resolve_user(user: RunUser | str | int | None) -> RunUser | None:
    """The credentials for ``user``: a RunUser as is, an account name or UID from passwd."""
    if user is None or isinstance(user, RunUser):
        return user
    try:
        account = pwd.getpwuid(user) if isinstance(user, int) else pwd.getpwnam(user)
    except KeyError as exc:
        raise SliceError(f"unknown user {user!r}") from exc
    return RunUser(account.pw_uid, account.pw_gid, account.pw_name, dynamic=False)


class Slice:
    """Common part of every backend: naming, registry, spawning, the teardown sequence."""

    backend = "abstract"

    def __init__(self, run_id: str, limits: Limits | None = None) -> None:
        self.run_id = run_id
        self.name = f"{SLICE_PREFIX}{run_id}"
        self.limits = limits or Limits()
        self.spawned: list[subprocess.Popen] = []
        pid, start = this_harness()
        self.record = SliceRecord(self.name, pid, start, self.backend, run_id)
        self.removed = False
        self.seen: set[int] = set()
        self.teardown_timing: dict[str, float] | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Slice:
        self.create()
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()

    def create(self) -> Slice:
        become_subreaper()
        self.record.save()
        try:
            self._create()
        except BaseException:
            self.remove()
            raise
        return self

    def teardown(self, timeout: float = 10.0) -> set[int]:
        """Kill everything, wait until empty, reap, remove. Returns pids that survived; the
        time each stage took is in :attr:`teardown_timing`."""
        if self.removed:
            return set()
        survivors: set[int] = set()
        try:
            pids = self.pids()
            start = time.monotonic()
            self.kill()
            if not self.wait_empty(timeout):
                survivors = self.pids()
            empty = time.monotonic()
            for proc in self.spawned:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=1.0)
            self.reap(pids)
            self.teardown_timing = {
                "processes": len(pids), "kill_to_empty_ms": round((empty - start) * 1e3, 1),
                "kill_to_reaped_ms": round((time.monotonic() - start) * 1e3, 1)}
        finally:
            self.remove()
        return survivors

    def reap(self, pids: set[int]) -> None:
        """Reap the run's dead processes that were reparented to the harness, including
        those that died before anyone listed them (found among our zombie children)."""
        reap(pids - {p.pid for p in self.spawned})
        for _ in range(100):
            if not self.reap_orphans():
                return

    def reap_orphans(self) -> int:
        """Reap the run's zombies among the harness's children now (the harness is their
        subreaper); never a process the harness spawned itself. Returns how many."""
        own = {p.pid for p in self.spawned}
        zombies = {pid for pid in _children() if pid not in own
                   and state(pid) == "Z" and self._owned_zombie(pid)}
        if zombies:
            reap(zombies, timeout=0.1)
        return len(zombies)

    def reap_continuously(self, stop: threading.Event, interval: float = 0.2) -> None:
        """Reap orphaned zombies every ``interval`` until ``stop`` (a thread's target): they
        would count against pids.max and in the process trend until teardown."""
        while not stop.wait(interval):
            self.reap_orphans()

    def _owned_zombie(self, pid: int) -> bool:
        return pid in self.seen

    # -- spawning --------------------------------------------------------------------------
    def spawn(
        self,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
        user: RunUser | str | int | None = None,
        stdin: int | None = subprocess.DEVNULL,
        stdout: int | object | None = None,
        stderr: int | object | None = None,
        before_exec: Callable[[], None] | None = None,
    ) -> subprocess.Popen:
        """Start ``argv`` inside the slice: the child joins before exec, then (optionally)
        runs ``before_exec`` as root and drops to ``user``. Every process carries the run's
        marker in its environment (``SANDBOX_RUN_ID``)."""
        account = resolve_user(user)
        child_env = dict(os.environ if env is None else env)
        child_env[MARKER_ENV] = self.run_id
        join = self.join

        def preexec() -> None:
            join()
            if before_exec is not None:
                before_exec()
            if account is not None:
                os.setgroups([])
                os.setgid(account.gid)
                os.setuid(account.uid)

        try:
            proc = subprocess.Popen(
                list(argv), env=child_env, cwd=cwd, stdin=stdin, stdout=stdout,
                stderr=stderr, preexec_fn=preexec, start_new_session=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise SliceError(f"cannot start {argv[0]}: {exc}") from exc
        self.spawned.append(proc)
        return proc

    # -- backend interface -----------------------------------------------------------------
    def _create(self) -> None:
        raise NotImplementedError

    def join(self) -> None:
        """Runs in the forked child before exec: move the calling process into the slice."""
        raise NotImplementedError

    def pids(self) -> set[int]:
        """The processes in the slice now (also remembered, to reap them later)."""
        found = self._pids()
        self.seen |= found
        return found

    def _pids(self) -> set[int]:
        raise NotImplementedError

    def freeze(self) -> None:
        raise NotImplementedError

    def thaw(self) -> None:
        raise NotImplementedError

    def kill(self) -> None:
        raise NotImplementedError

    def wait_empty(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.pids():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def oom_kills(self) -> int | None:
        """Processes the kernel's OOM killer killed in the slice (None: not known here)."""
        return None

    def evict(self, pid: int) -> None:
        """Move ``pid`` out of the slice, so it can be removed with ``pid`` left alive
        (``--keep-escapes``)."""

    def remove(self) -> None:
        self.removed = True
        self.record.delete()

    def to_dict(self) -> dict:
        return {"name": self.name, "backend": self.backend}

    # -- what the rest of the harness asks a slice (no backend branching outside host/) ------
    @property
    def has_cgroup(self) -> bool:
        """Whether the kernel keeps the slice's membership (a cgroup), not the harness."""
        return False

    def sampler_files(self) -> tuple[str, dict[str, Path | None], Path | None] | None:
        """(reader kind ``v2`` or ``v1``, sampler role -> control file, membership directory)
        for the cgroup reader; None without a cgroup (the psutil reader then)."""
        return None

    def memory_stat(self) -> dict[str, int]:
        """The slice's memory.stat with v2 names (``shmem``, ``anon``, ...); empty without."""
        return {}

    def escape_targets(self) -> list[str]:
        """cgroup.procs files OUTSIDE the slice, one per hierarchy it uses (the ``escape``
        injection writes itself there). Raises SliceError without a cgroup."""
        raise SliceError("the escape injection needs a cgroup slice (this run has none)")

    def cgroup_dirs(self) -> list[Path]:
        """The slice's cgroup directories that exist now."""
        return []

    def membership_cgroup(self) -> tuple[str, Path, Path | None] | None:
        """(hierarchy name, the slice's directory in it, that hierarchy's mount point) of
        the hierarchy whose membership /proc/PID/cgroup shows; None without a cgroup."""
        return None


class CgroupSlice(Slice):
    """A cgroup in each hierarchy the mode uses (v2: unified; hybrid: unified + v1 memory,
    pids, cpuacct; v1: memory, pids, freezer, cpuacct)."""

    def __init__(self, run_id: str, layout: CgroupLayout, limits: Limits | None = None) -> None:
        self.backend = layout.mode
        super().__init__(run_id, limits)
        self.layout = layout
        self.dirs = {key: parent / self.name for key, parent in layout.parents.items()}
        self.membership = self.dirs[UNIFIED if layout.mode in ("v2", "hybrid") else "freezer"]
        self.harness_leaf: Path | None = None
        self.record.dirs = [str(d) for d in self.dirs.values()]

    def path(self, key: str, filename: str) -> Path | None:
        """The slice's control file in hierarchy ``key`` (None when that hierarchy is absent)."""
        directory = self.dirs.get(key)
        return directory / filename if directory else None

    def _create(self) -> None:
        if self.layout.mode == "v2":
            self._prepare_v2_parent()
        for directory in self.dirs.values():
            try:
                directory.mkdir()
            except OSError as exc:
                raise SliceError(f"cannot create cgroup {directory}: {exc.strerror}") from exc
        self._set_limits()

    def _prepare_v2_parent(self) -> None:
        """Enable memory+pids for children of the harness's cgroup. The no-internal-processes
        rule forbids that while the harness itself sits there (except at the root), so the
        harness first moves into a leaf of its own (as nsjail does)."""
        parent = self.layout.parents[UNIFIED]
        enabled = set((parent / "cgroup.subtree_control").read_text().split())
        if {"memory", "pids"} <= enabled:
            return
        if parent != self.layout.unified_mount and os.getpid() in _read_pids(
            parent / "cgroup.procs"
        ):
            leaf = parent / f"{SLICE_PREFIX}harness-{os.getpid()}"
            leaf.mkdir(exist_ok=True)
            _write(leaf / "cgroup.procs", str(os.getpid()))
            self.harness_leaf = leaf
            self.record.harness_leaf = str(leaf)
            self.record.save()
        try:
            _write(parent / "cgroup.subtree_control", "+memory +pids")
        except OSError as exc:
            raise SliceError(
                f"cannot enable memory and pids controllers in {parent} ({exc.strerror}); "
                "other processes share the harness's cgroup: run it in a delegated scope "
                "(systemd-run --scope -p Delegate=yes) or a service with Delegate=yes"
            ) from exc

    def _set_limits(self) -> None:
        v2 = self.layout.mode == "v2"
        files = {
            "memory": ("memory.max" if v2 else "memory.limit_in_bytes", self.limits.memory_max),
            "pids": ("pids.max", self.limits.pids_max),
        }
        for key, (filename, value) in files.items():
            if value is None:
                continue
            target = self.path(UNIFIED if v2 else key, filename)
            if target is None:
                raise SliceError(f"no {key} controller to set {filename}")
            _write(target, str(value))

    def join(self) -> None:
        pid = str(os.getpid())
        for directory in self.dirs.values():
            _write(directory / "cgroup.procs", pid)

    def _owned_zombie(self, pid: int) -> bool:
        """A zombie leaves cgroup.procs but keeps its unified cgroup in /proc/PID/cgroup."""
        if self.backend == "v1":
            return super()._owned_zombie(pid)
        try:
            text = Path(f"/proc/{pid}/cgroup").read_text()
        except OSError:
            return False
        mine = "/" + str(self.membership.relative_to(self.layout.unified_mount))
        return any(line == f"0::{mine}" or line.startswith(f"0::{mine}/")
                   for line in text.splitlines())

    def _pids(self) -> set[int]:
        found: set[int] = set()
        if not self.membership.is_dir():
            return found
        for root, _, _ in os.walk(self.membership):
            found |= _read_pids(Path(root) / "cgroup.procs")
        return found

    def freeze(self) -> None:
        if self.backend == "v1":
            _write(self.dirs["freezer"] / "freezer.state", "FROZEN")
            deadline = time.monotonic() + 5
            while (self.dirs["freezer"] / "freezer.state").read_text().strip() != "FROZEN":
                if time.monotonic() > deadline:
                    raise SliceError("freezer did not reach FROZEN in 5 s")
                time.sleep(0.005)
        else:
            _write(self.membership / "cgroup.freeze", "1")
            self._wait_event("frozen 1", 5.0)

    def thaw(self) -> None:
        if self.backend == "v1":
            _write(self.dirs["freezer"] / "freezer.state", "THAWED")
        else:
            _write(self.membership / "cgroup.freeze", "0")

    def kill(self) -> None:
        if not self.membership.is_dir():
            return
        if self.backend in ("v2", "hybrid"):
            _write(self.membership / "cgroup.kill", "1")
            return
        # v1 has no cgroup.kill: freeze so nothing forks, SIGKILL each, thaw to let them die.
        self.freeze()
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.thaw()

    def wait_empty(self, timeout: float) -> bool:
        if self.backend == "v1" or not self.membership.is_dir():
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

    def oom_kills(self) -> int | None:
        """``oom_kill`` of memory.events (v2) or memory.oom_control (v1, kernel >= 4.13)."""
        v2 = self.backend == "v2"
        path = self.path(UNIFIED if v2 else "memory",
                         "memory.events" if v2 else "memory.oom_control")
        try:
            text = path.read_text() if path else ""
        except OSError:
            return None
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return None

    def evict(self, pid: int) -> None:
        """Write ``pid`` into the parent of each slice directory (of each hierarchy) that
        still holds it."""
        for directory in self.dirs.values():
            for root, _, _ in os.walk(directory):
                if pid in _read_pids(Path(root) / "cgroup.procs"):
                    with contextlib.suppress(OSError):
                        _write(directory.parent / "cgroup.procs", str(pid))
                    break

    def remove(self) -> None:
        for directory in self.dirs.values():
            _rmtree_cgroup(directory)
        if self.harness_leaf is not None:
            self._leave_harness_leaf()
        if not any(d.exists() for d in self.dirs.values()):
            super().remove()

    def _leave_harness_leaf(self) -> None:
        """Move the harness back to its cgroup when no other slice needs the controllers."""
        parent = self.layout.parents[UNIFIED]
        if any(p.name.startswith(SLICE_PREFIX) and p != self.harness_leaf
               for p in parent.iterdir() if p.is_dir()):
            return
        with contextlib.suppress(OSError):
            _write(parent / "cgroup.subtree_control", "-memory -pids")
            _write(parent / "cgroup.procs", str(os.getpid()))
            self.harness_leaf.rmdir()
            self.harness_leaf = None

    def to_dict(self) -> dict:
        return {**super().to_dict(), "dirs": {k: str(v) for k, v in self.dirs.items()}}

    @property
    def has_cgroup(self) -> bool:
        return True

    def sampler_files(self) -> tuple[str, dict[str, Path | None], Path | None] | None:
        if self.backend == "v2":
            return "v2", dict(v2_files(self.dirs[UNIFIED])), self.membership
        return "v1", v1_files(self.dirs.get("memory"), self.dirs.get("pids"),
                              self.dirs.get("cpuacct"), self.dirs.get(UNIFIED)), self.membership

    def memory_stat(self) -> dict[str, int]:
        v2 = self.backend == "v2"
        stat = self.path(UNIFIED if v2 else "memory", "memory.stat")
        try:
            text = stat.read_text() if stat else ""
        except OSError:
            return {}
        values = {}
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if not v2:  # v1: the hierarchical totals, under v2's names
                if not key.startswith("total_"):
                    continue
                key = {"total_rss": "anon", "total_cache": "file"}.get(
                    key, key.removeprefix("total_"))
            with contextlib.suppress(ValueError):
                values[key] = int(value)
        return values

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
        key = UNIFIED if UNIFIED in self.dirs else "freezer"
        mount = (self.layout.unified_mount if key == UNIFIED
                 else self.layout.v1_mounts.get(key))
        return key, self.dirs[key], mount


def _rmtree_cgroup(directory: Path, timeout: float = 5.0) -> None:
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


class ProcessTreeSlice(Slice):
    """No cgroup: the spawned processes, their descendants and every process carrying the
    run's marker. Weakest guarantee: a daemon that clears its environment is lost."""

    backend = "none"

    def _create(self) -> None:
        return None

    def join(self) -> None:
        return None

    def _pids(self) -> set[int]:
        return marked_pids(self.run_id) | self._descendants()

    def _descendants(self) -> set[int]:
        found: set[int] = set()
        for proc in self.spawned:
            try:
                root = psutil.Process(proc.pid)
                if root.status() == psutil.STATUS_ZOMBIE:
                    continue
                found.add(root.pid)
                found |= {c.pid for c in root.children(recursive=True)}
            except psutil.Error:
                continue
        return found

    def _signal_all(self, sig: int) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def freeze(self) -> None:
        self._signal_all(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal_all(signal.SIGCONT)

    def kill(self) -> None:
        # Stop first so nothing forks between the listing and the kill, then kill the lot.
        for _ in range(3):
            self.freeze()
        self._signal_all(signal.SIGKILL)

    def wait_empty(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            alive = {p for p in self.pids() if _alive(p)}
            if not alive:
                return True
            if time.monotonic() >= deadline:
                return False
            for pid in alive:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)


def _children() -> set[int]:
    """The harness's child processes, from /proc/self/task/*/children (cheap: no walk of
    every process)."""
    found: set[int] = set()
    for task in os.scandir("/proc/self/task"):
        with contextlib.suppress(OSError), open(f"{task.path}/children") as f:
            found.update(int(pid) for pid in f.read().split())
    return found


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def marked_pids(run_id: str) -> set[int]:
    """Processes whose environment carries the run's marker (needs root to read others')."""
    needle = f"{MARKER_ENV}={run_id}\0".encode()
    found = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                if needle in f.read() + b"\0":
                    found.add(int(entry.name))
        except OSError:
            continue
    return found


def open_slice(run_id: str, layout: CgroupLayout, limits: Limits | None = None) -> Slice:
    """The slice for the host's cgroup mode."""
    if layout.mode == "none":
        if limits and (limits.memory_max or limits.pids_max):
            raise SliceError("memory and pids limits need a cgroup; none is usable here "
                             f"({layout.reason})")
        return ProcessTreeSlice(run_id, limits)
    return CgroupSlice(run_id, layout, limits)
