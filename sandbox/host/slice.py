"""A run's slice: one fresh cgroup (or, without cgroups, a marked process tree) per run.
The common part lives here; each backend is a subclass (host/cgroup_slice.py: v2, hybrid,
v1; host/tree_slice.py: none), chosen once by :func:`sandbox.host.slices.open_slice`.

Lifecycle: create -> spawn (the child joins the slice before it execs) -> [freeze] -> kill ->
wait until empty -> reap -> remove. Use it as a context manager: teardown always runs, also on
KeyboardInterrupt or an exception.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sandbox.errors import HarnessError
from sandbox.host.forked import ForkedProcess, fork_gated
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
        self.spawned: list[subprocess.Popen | ForkedProcess] = []
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
        stdout: int | IO[Any] | None = None,
        stderr: int | IO[Any] | None = None,
        before_exec: Callable[[], None] | None = None,
        pass_fds: Sequence[int] = (),
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
                pass_fds=tuple(pass_fds),
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise SliceError(f"cannot start {argv[0]}: {exc}") from exc
        self.spawned.append(proc)
        return proc

    def fork(self, body: Callable[[], None], env: dict[str, str]) -> ForkedProcess:
        """Fork a child into the slice that runs ``body`` (in this process image, as this
        process's user) once released (host/forked.py), with ``env`` and the run's marker
        added to its environment."""

        def join() -> None:
            self.join()
            os.environ.update({**env, MARKER_ENV: self.run_id})

        proc = fork_gated(join, body)
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

    def pids_limit_hits(self) -> int | None:
        """Forks refused because the slice hit pids.max (None: not known here)."""
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


def _children() -> set[int]:
    """The harness's child processes, from /proc/self/task/*/children (cheap: no walk of
    every process)."""
    found: set[int] = set()
    for task in os.scandir("/proc/self/task"):
        with contextlib.suppress(OSError), open(f"{task.path}/children") as f:
            found.update(int(pid) for pid in f.read().split())
    return found


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
