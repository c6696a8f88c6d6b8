"""``sandbox cleanup``: remove what a harness that died without tearing down left behind: its
slice and every process in it or running as the run's own UID, the run's private tmpfs, files
that UID owns in the host's shared temp directories and the run's HOME, and the UID's lock.
A process carrying the run's marker that the kernel puts in another run (its slice or UID) is
that run's and is spared; each is signalled through a pidfd after re-checking it is the run's."""

from __future__ import annotations

import contextlib
import functools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.host import safefs
from sandbox.host.cgroup_slice import read_pids, rmtree_cgroup
from sandbox.host.isolation import (
    HOST_SHARED_DIRS,
    IsolationError,
    RunUser,
    release_user,
    remove_private_fs,
    remove_sysv_ipc,
    stale_users,
    sysv_ipc,
    uid_pids,
)
from sandbox.host.ownership import Runs, marker, uids
from sandbox.host.procid import signal_checked
from sandbox.host.reaper import reap
from sandbox.host.registry import SliceRecord, stale_records
from sandbox.host.slice import SliceError, marked_pids


@dataclass
class CleanedSlice:
    name: str
    killed: list[int] = field(default_factory=list)
    spared: list[int] = field(default_factory=list)  # its marker, another run's process
    removed_dirs: list[str] = field(default_factory=list)
    removed_files: list[str] = field(default_factory=list)
    run_dir: str | None = None
    error: str | None = None


def _slice_pids(record: SliceRecord) -> set[int]:
    pids: set[int] = set()
    for directory in record.dirs:
        for root, _, _ in os.walk(directory):
            pids |= read_pids(Path(root) / "cgroup.procs")
    if record.uid is not None:
        pids |= uid_pids(record.uid)
    return pids | marked_pids(record.marker)


def _belongs(pid: int, record: SliceRecord, runs: Runs) -> bool:
    """Whether ``pid`` is the record's run's now: the kernel's facts (slice, UID) first, the
    marker only for a process no run's slice or UID claims."""
    owner = runs.owner(pid)
    if owner is not None:
        return owner.run_id == record.marker
    return (record.uid is not None and record.uid in uids(pid)) \
        or marker(pid) == record.marker


def _kill_all(record: SliceRecord, timeout: float = 10.0) -> tuple[list[int], list[int]]:
    """SIGKILL the run's processes until none is left; returns those killed and those spared
    (carrying its marker, another run's)."""
    killed: set[int] = set()
    spared: set[int] = set()
    runs = Runs()
    deadline = time.monotonic() + timeout
    while (pids := _slice_pids(record) - spared) and time.monotonic() < deadline:
        # Counted before cgroup.kill: a process it ends first fails its own checked signal.
        members = {pid for pid in pids if _belongs(pid, record, runs)}
        for directory in record.dirs:
            kill_file = Path(directory) / "cgroup.kill"
            if kill_file.exists():
                with contextlib.suppress(OSError):
                    kill_file.write_text("1")
        for pid in pids:
            if signal_checked(pid, functools.partial(_belongs, pid, record, runs)):
                killed.add(pid)
            elif (owner := runs.owner(pid)) is not None and owner.run_id != record.marker:
                spared.add(pid)
        killed |= members - spared
        time.sleep(0.02)
    return sorted(killed), sorted(spared)


def _remove_owned_files(uid: int, run_dir: str | None) -> tuple[list[str], list[str]]:
    """Entries ``uid`` owns in the host's shared temp directories and in the run's HOME,
    removed by name from a directory fd (never following a link, at any depth). Returns the
    removed and the ones that could not be (with why)."""
    places = [*HOST_SHARED_DIRS]
    if run_dir:
        places.append(Path(run_dir) / "home")
    removed, failed = [], []
    for directory in places:
        with contextlib.suppress(OSError), safefs.open_dir(directory.parent) as parent_fd, \
                safefs.open_dir(directory.name, dir_fd=parent_fd) as dir_fd:
            for entry in safefs.entries(dir_fd, owner=uid):
                try:
                    safefs.remove(dir_fd, entry.name)
                    removed.append(str(directory / entry.name))
                except OSError as exc:
                    failed.append(f"{directory / entry.name}: {exc.strerror or exc}")
    return removed, failed


def clean_record(record: SliceRecord) -> CleanedSlice:
    result = CleanedSlice(record.name, run_dir=record.run_dir)
    result.killed, result.spared = _kill_all(record)
    reap(result.killed)  # those reparented to this harness (a subreaper) would stay zombies
    try:
        for directory in record.dirs:
            if Path(directory).exists():
                rmtree_cgroup(Path(directory))
                result.removed_dirs.append(directory)
        if record.harness_leaf and Path(record.harness_leaf).exists():
            with contextlib.suppress(OSError):
                os.rmdir(record.harness_leaf)
                result.removed_dirs.append(record.harness_leaf)
        if record.private_fs:
            remove_private_fs(Path(record.private_fs))
    except (SliceError, IsolationError) as exc:
        result.error = str(exc)
        return result
    if record.uid is not None:
        result.removed_files, failed = _remove_owned_files(record.uid, record.run_dir)
        for obj in sysv_ipc(record.uid):
            remove_sysv_ipc(obj)
            result.removed_files.append(obj.path)
        if failed:
            result.error = "cannot remove " + "; ".join(failed)
        release_user(RunUser(record.uid, record.uid, "", dynamic=True))
    record.delete()
    return result


def cleanup_stale() -> list[CleanedSlice]:
    """Kill and remove every slice whose harness is no longer alive, then give back the UIDs
    such harnesses still held."""
    cleaned = [clean_record(r) for r in stale_records()]
    for uid in stale_users():
        _remove_owned_files(uid, None)
        release_user(RunUser(uid, uid, "", dynamic=True))
    return cleaned
