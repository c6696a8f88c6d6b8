"""ResourceCleanupVerifier: at teardown, find what a run left behind and clean it up.

Order: state before (at start) -> orphans after the workload's main process ended and a grace
period passed (decided by slice membership, not parent pid) -> escapes (processes of the run
alive outside the slice, critical) -> leftover files -> kill the escapes, then the slice; remove
the files; check nothing of the run remains -> state after. The result goes to cleanup.json.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
import re
import socket
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from sandbox.analysis.cleanup_policy import (
    FILE_ALERT_S,
    ORPHAN_ALERT_S,
    cleanup_alerts,
    cleanup_issues,
)
from sandbox.host import safefs
from sandbox.host.forked import ForkedProcess
from sandbox.host.isolation import (
    HOME_SEEN_AS,
    HOST_SHARED_DIRS,
    IsolationError,
    PrivateFs,
    RunUser,
    remove_sysv_ipc,
    sysv_ipc,
    uid_pids,
)
from sandbox.host.ownership import Runs, marker
from sandbox.host.procid import ProcessId, identify, is_alive, is_same, send_signal
from sandbox.host.reaper import reap
from sandbox.host.slice import MARKER_ENV, Slice, SliceError, marked_pids
from sandbox.model.cleanup import (
    CleanupReport,
    LeftoverFile,
    ProcessRecord,
    ResourceState,
    Socket,
)
from sandbox.rundir import CLEANUP, write_json
from sandbox.tracer.base import Tracer
from sandbox.tracer.target import SliceTarget, proc_cgroups

log = logging.getLogger(__name__)

DEFAULT_GRACE_S = 5.0
KNOWN_PATTERNS = ("playwright_chromiumdev_profile-*", "playwright-artifacts-*",
                  "org.chromium.Chromium.*", ".org.chromium.Chromium.*")
BROWSER = re.compile(r"chrom|headless_shell|crashpad", re.IGNORECASE)
TMP = Path("/tmp")
SHM = Path("/dev/shm")


def _is_browser(comm: str, cmdline: list[str]) -> bool:
    return bool(BROWSER.search(comm) or (cmdline and BROWSER.search(Path(cmdline[0]).name)))


def _describe(pid: int, now: float) -> ProcessRecord | None:
    """pid, ppid, comm, cmdline, age, browser flag and open TCP/UDP sockets of a live
    process (None if gone)."""
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            comm, ppid, created = proc.name(), proc.ppid(), proc.create_time()
            cmdline = proc.cmdline()
            user = proc.username()
    except psutil.Error:
        return None
    return ProcessRecord(pid=pid, ppid=ppid, comm=comm, cmdline=cmdline, user=user,
                         age_s=round(now - created, 3), created=created,
                         is_browser=_is_browser(comm, cmdline), sockets=_sockets(proc))


def _forged(pid: int, carried: str, owner: str, by: str) -> dict[str, Any]:
    """A process carrying run ``carried``'s marker that belongs to run ``owner`` (``by``: the
    kernel fact that says so)."""
    try:
        comm = psutil.Process(pid).name()
    except psutil.Error:
        comm = None
    return {"pid": pid, "comm": comm, "marker": carried, "owner": owner, "by": by}


def _sockets(proc: psutil.Process) -> list[Socket]:
    """The process's TCP and UDP sockets (its own network namespace's view): a bound
    listening port outlives a run as surely as the process holding it."""
    try:
        found = proc.net_connections(kind="inet")
    except psutil.Error:
        return []
    return [Socket(proto="tcp" if c.type == socket.SOCK_STREAM else "udp",
                   laddr=f"{c.laddr.ip}:{c.laddr.port}" if c.laddr else None,
                   raddr=f"{c.raddr.ip}:{c.raddr.port}" if c.raddr else None,
                   status=c.status) for c in found]


def _entry(entry: safefs.Entry, path: str, where: str, now: float) -> LeftoverFile:
    return LeftoverFile(path=path, where=where, size=entry.size, files=entry.files,
                        age_s=round(now - min(entry.mtime, entry.ctime), 3),
                        is_dir=entry.is_dir, uid=entry.uid, depth=entry.depth)


def _fs_free(path: Path) -> dict[str, int] | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return {"free_bytes": st.f_bavail * st.f_frsize, "free_inodes": st.f_favail,
            "total_bytes": st.f_blocks * st.f_frsize, "total_inodes": st.f_files}


def _shmem_charged(slice_: Slice) -> int | None:
    """Shared memory (tmpfs, /dev/shm) still charged to the slice's memory cgroup."""
    return slice_.memory_stat().get("shmem")


class ResourceCleanupVerifier:
    """Verifies a run's teardown. Call ``capture_initial_state()`` before the workload starts
    and ``verify(slice_, ...)`` once its main process has ended (or was stopped)."""

    def __init__(self, temp_dir_prefix: str = "playwright", *,
                 grace_s: float = DEFAULT_GRACE_S, orphan_alert_s: float = ORPHAN_ALERT_S,
                 file_alert_s: float = FILE_ALERT_S, keep_escapes: bool = False,
                 remove_files: bool = True, tmp_dir: Path = TMP, shm_dir: Path = SHM) -> None:
        if grace_s < 0:
            raise ValueError(f"grace period must be >= 0 s, got {grace_s}")
        self.temp_dir_prefix = temp_dir_prefix
        self.grace_s = grace_s
        self.orphan_alert_s = orphan_alert_s
        self.file_alert_s = file_alert_s
        self.keep_escapes = keep_escapes
        self.remove_files = remove_files
        self.tmp_dir = Path(tmp_dir)
        self.shm_dir = Path(shm_dir)
        self.patterns = (f"{temp_dir_prefix}*", *KNOWN_PATTERNS) if temp_dir_prefix \
            else KNOWN_PATTERNS
        self.initial_state: ResourceState | None = None
        self.started: float | None = None

    # -- state -----------------------------------------------------------------------------
    def _known_temp(self) -> list[Path]:
        try:
            entries = list(self.tmp_dir.iterdir())
        except OSError:
            return []
        return sorted(p for p in entries
                      if any(fnmatch.fnmatchcase(p.name, pat) for pat in self.patterns))

    def capture_state(self) -> ResourceState:
        """The host's resources now."""
        browsers, total = [], 0
        for proc in psutil.process_iter(["name", "cmdline"]):
            total += 1
            if _is_browser(proc.info["name"] or "", proc.info["cmdline"] or []):
                browsers.append(proc.pid)
        temps = self._known_temp()
        try:
            shm = sorted(str(p) for p in self.shm_dir.iterdir())
        except OSError:
            shm = []
        memory = psutil.virtual_memory()
        return ResourceState(
            timestamp=datetime.now(UTC),
            total_processes=total,
            browser_processes=sorted(browsers),
            temp_directories=[str(p) for p in temps if p.is_dir()],
            temp_files=[str(p) for p in temps if not p.is_dir()],
            open_file_descriptors=psutil.Process().num_fds(),
            system_memory_mb=round(memory.used / 2**20, 1),
            system_memory_percent=memory.percent,
            filesystems={str(self.tmp_dir): _fs_free(self.tmp_dir),
                         str(self.shm_dir): _fs_free(self.shm_dir)},
            shm_entries=shm,
        )

    def capture_initial_state(self) -> ResourceState:
        """The state before the run; also marks the run's start for "created during the run"."""
        self.started = time.time()
        self.initial_state = self.capture_state()
        return self.initial_state

    # -- the teardown sequence -------------------------------------------------------------
    def verify(self, slice_: Slice, *, run_dir: Path | None = None,
               main: subprocess.Popen | ForkedProcess | None = None,
               tracer: Tracer | None = None,
               user: RunUser | None = None, private_fs: PrivateFs | None = None
               ) -> CleanupReport:
        """Find orphans, escapes and leftover files; tear the slice down; clean up; check.
        Writes ``<run_dir>/cleanup.json`` when ``run_dir`` is given."""
        started = self.started if self.started is not None else time.time()
        issues: list[str] = []
        if main is not None and main.poll() is None:
            issues.append(f"the workload's main process {main.pid} was still running at "
                          "teardown; the verifier sent it SIGTERM")
            main.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                main.wait(self.grace_s)
        target = SliceTarget.of(slice_)
        orphans, waited = self._orphans(slice_, main)
        runs = Runs()
        forged = self._markers_carried(slice_, tracer, user, runs)
        escapes, identities, framed = self._escapes(slice_, target, tracer, user, runs)
        forged += framed
        issues += [f"process {f['pid']} ({f['comm']}) of this run carried run "
                   f"{f['marker']}'s marker {MARKER_ENV}: it was not attributed to that run"
                   for f in forged if f["marker"] != slice_.run_id]
        oom_kills = slice_.oom_kills()
        shmem = _shmem_charged(slice_)

        # Escapes first: on hybrid hosts one still sits in the slice's v1 directories.
        if self.keep_escapes:
            for record in escapes:
                slice_.evict(record.pid)
        else:
            self._kill_escapes(escapes, identities)
        teardown_error = None
        try:
            survivors = slice_.teardown()
        except SliceError as exc:
            survivors, teardown_error = set(), str(exc)
        # Files after every process is gone: nothing can add or swap one any more.
        leftovers, home = self._leftover_files(run_dir, started, user, private_fs)
        if self.remove_files:
            teardown_error = self._remove_files(run_dir, leftovers + home, private_fs) \
                or teardown_error
        after = self._after_teardown(slice_, [identities[e.pid] for e in escapes], survivors,
                                     user, private_fs, runs)
        after["teardown_error"] = teardown_error
        after["timing"] = slice_.teardown_timing
        after["clean"] = after["clean"] and teardown_error is None

        alerts = cleanup_alerts(orphans, leftovers, orphan_alert_s=self.orphan_alert_s,
                                file_alert_s=self.file_alert_s)
        issues += cleanup_issues(orphans, escapes, leftovers, alerts, after, self.grace_s)
        report = CleanupReport(
            orphans=orphans, escapes=escapes, leftover_files=leftovers, home_files=home,
            shmem_charged_bytes=shmem, oom_kills=oom_kills, alerts=alerts,
            after_teardown=after, grace_s=self.grace_s, waited_s=round(waited, 3),
            tracer=tracer.to_dict() if tracer else None,
            state_before=self.initial_state, state_after=self.capture_state(), issues=issues,
            forged_markers=forged)
        if run_dir is not None:
            try:
                write_json(Path(run_dir) / CLEANUP, report.to_dict())
            except OSError as exc:  # a full disk: the run is then judged incomplete
                log.error("cannot write cleanup.json: %s", exc.strerror or exc)
        return report

    def _orphans(self, slice_: Slice, main: subprocess.Popen | ForkedProcess | None
                 ) -> tuple[list[ProcessRecord], float]:
        """Wait up to the grace period for the slice to empty; what stays is orphaned."""
        begin = time.monotonic()
        main_pid = main.pid if main is not None else None
        while True:
            alive = {p for p in slice_.pids() if p != main_pid and is_alive(p)}
            waited = time.monotonic() - begin
            if not alive or waited >= self.grace_s:
                break
            time.sleep(0.05)
        now = time.time()
        found = [d for p in sorted(alive) if (d := _describe(p, now)) is not None]
        return found, waited

    def _escapes(self, slice_: Slice, target: SliceTarget, tracer: Tracer | None,
                 user: RunUser | None, runs: Runs
                 ) -> tuple[list[ProcessRecord], dict[int, ProcessId], list[dict[str, Any]]]:
        """Processes of the run alive outside the slice: followed by the tracer (the very
        process it saw, not one that took its pid since), running as the run's own UID,
        carrying the run's marker, or descending from one of those. A process the kernel puts
        in another run's slice or UID is that run's, whatever it carries: it is returned apart
        (a forged marker when it carried ours), never as an escape. Also returns the identity
        of each escape, the only way it is signalled."""
        if target.hierarchy is None:
            return [], {}, []
        candidates: dict[int, list[str]] = {}
        identities: dict[int, ProcessId] = {}
        for live in tracer.live_processes() if tracer else ():
            candidates[live.pid] = ["tracer"]
            identities[live.pid] = live
        for pid in marked_pids(slice_.run_id):
            candidates.setdefault(pid, []).append("marker")
        for pid in uid_pids(user.uid) if user is not None and user.exact else ():
            candidates.setdefault(pid, []).append("uid")
        now = time.time()
        escapes: dict[int, ProcessRecord] = {}
        forged: list[dict[str, Any]] = []
        for pid, found_by in sorted(candidates.items()):
            if pid in escapes or not is_alive(pid) or target.contains(pid):
                continue
            identity = identities.get(pid) or identify(pid)
            owner = runs.foreign(pid, slice_.run_id)
            if identity is None or owner is not None:
                if owner is not None and "marker" in found_by:
                    forged.append(_forged(pid, slice_.run_id, owner.run_id, owner.by))
                continue
            desc = _describe(pid, now)
            if desc is None or not is_same(identity):
                continue
            desc.found_by = found_by
            escapes[pid] = desc
            identities[pid] = identity
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(pid).children(recursive=True):
                    if (child.pid in escapes or target.contains(child.pid)
                            or runs.foreign(child.pid, slice_.run_id) is not None
                            or (cid := identify(child.pid)) is None
                            or (cd := _describe(child.pid, now)) is None or not is_same(cid)):
                        continue
                    cd.found_by = ["descendant"]
                    escapes[child.pid] = cd
                    identities[child.pid] = cid
        moves = {e.pid: e for e in tracer.moves_out()} if tracer else {}
        for pid, record in escapes.items():
            groups = proc_cgroups(pid) or {}
            record.cgroup = groups.get(target.hierarchy)
            record.cgroups = groups
            move = moves.get(pid) if "tracer" in (record.found_by or ()) else None
            record.moved = ({"t": move.t, "wall": move.wall, "kind": move.kind,
                                "destination": move.cgroup} if move else None)
            record.killed = False
        return [escapes[p] for p in sorted(escapes)], identities, forged

    def _markers_carried(self, slice_: Slice, tracer: Tracer | None, user: RunUser | None,
                         runs: Runs) -> list[dict[str, Any]]:
        """This run's processes (in its slice, followed, or running as its own UID) that carry
        another run's marker: an attempt to frame that run."""
        pids = set(slice_.pids())
        if tracer is not None:
            pids |= {i.pid for i in tracer.live_processes()}
        if user is not None and user.exact:
            pids |= uid_pids(user.uid)
        found = []
        for pid in sorted(pids):
            carried = marker(pid)
            if carried is None or carried == slice_.run_id:
                continue
            owner = runs.owner(pid)
            if owner is None or owner.run_id == slice_.run_id:
                found.append(_forged(pid, carried, slice_.run_id,
                                     owner.by if owner else "tracer"))
        return found

    def _kill_escapes(self, escapes: list[ProcessRecord], identities: dict[int, ProcessId],
                      timeout: float = 5.0) -> None:
        """SIGKILL each escaped process through its identity (a pid taken by another process
        since it was found is not signalled)."""
        for record in escapes:
            identity = identities.get(record.pid)
            record.killed = identity is not None and send_signal(identity)
        pids = {r.pid for r in escapes if r.killed}
        deadline = time.monotonic() + timeout
        while pids and time.monotonic() < deadline:
            reap(pids, timeout=0.05)
            pids = {p for p in pids if is_alive(p) and is_same(identities[p])}

    def _leftover_files(self, run_dir: Path | None, started: float, user: RunUser | None,
                        private_fs: PrivateFs | None
                        ) -> tuple[list[LeftoverFile], list[LeftoverFile]]:
        """Leftovers: what is in the private /tmp and /dev/shm (the run's own), and what the
        run's user owns in the host's /tmp, /var/tmp, /dev/shm and SysV IPC. The private
        HOME's contents are listed apart (caches). Each says where it was."""
        now = time.time()
        leftovers: list[LeftoverFile] = []
        if private_fs is not None:
            for seen_as, found in private_fs.leftovers().items():
                leftovers += [_entry(e, f"{seen_as}/{e.name}", f"private {seen_as}", now)
                              for e in found]
            leftovers += private_fs.ipc_leftovers()  # the run's own IPC namespace
        home: list[LeftoverFile] = []
        if private_fs is not None:
            home = [_entry(e, f"{HOME_SEEN_AS}/{e.name}", "private HOME", now)
                    for e in private_fs.home_entries()]
        # Without private mounts the workload's TMPDIR and HOME are in the run directory.
        for sub, into in (("tmp", leftovers), ("home", home)):
            if run_dir is None or private_fs is not None:
                break
            with contextlib.suppress(OSError), safefs.open_dir(run_dir) as run_fd, \
                    safefs.open_dir(sub, dir_fd=run_fd) as sub_fd:
                into += [_entry(e, str(Path(run_dir) / sub / e.name), f"run {sub}", now)
                         for e in safefs.entries(sub_fd)]
        if user is None or user.uid == 0:
            return leftovers, home
        for directory in HOST_SHARED_DIRS:
            with contextlib.suppress(OSError), safefs.open_dir(directory) as dir_fd:
                for e in safefs.entries(dir_fd, owner=user.uid):
                    # A shared --user: only what it made during the run (owner and time).
                    if user.exact or min(e.mtime, e.ctime) >= started - 1:
                        leftovers.append(_entry(e, str(directory / e.name),
                                                f"host {directory}", now))
        if user.exact and private_fs is None:  # with private IPC, the host's is not the run's
            leftovers += sysv_ipc(user.uid)
        return leftovers, home

    def _remove_files(self, run_dir: Path | None, files: list[LeftoverFile],
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

    def _after_teardown(self, slice_: Slice, escapes: list[ProcessId],
                        survivors: set[int], user: RunUser | None,
                        private_fs: PrivateFs | None, runs: Runs) -> dict[str, Any]:
        """Check that nothing of the run remains anywhere (a process carrying the run's
        marker that the kernel puts in another run is not the run's)."""
        marked = sorted(p for p in marked_pids(slice_.run_id)
                        if is_alive(p) and runs.foreign(p, slice_.run_id) is None)
        escaped = sorted(i.pid for i in escapes if is_alive(i.pid) and is_same(i))
        dirs = [str(d) for d in slice_.cgroup_dirs()]
        left: list[str] = []
        if self.remove_files and user is not None and user.exact:
            host, _ = self._leftover_files(None, 0.0, user, None)
            left = sorted(f.path for f in host)
        if self.remove_files and private_fs is not None and private_fs.mounted:
            left.append(str(private_fs.root))
        after = {"slice_survivors": sorted(survivors), "marked_alive": marked,
                 "escapes_alive": escaped, "cgroup_dirs_left": dirs, "files_left": left}
        if self.keep_escapes:  # alive on purpose
            after["escapes_alive"] = []
        after["clean"] = not any(after.values())
        after["escapes_kept"] = escaped if self.keep_escapes else []
        return after
