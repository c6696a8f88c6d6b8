"""Finding the run's processes at teardown: orphans left in the slice, escapes alive outside
it, and processes carrying another run's marker. Nothing here signals a process."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil

from sandbox.host.forked import ForkedProcess
from sandbox.host.isolation import RunUser, uid_pids
from sandbox.host.ownership import Runs, marker
from sandbox.host.procid import ProcessId, identify, is_alive, is_same
from sandbox.host.slice import Slice, marked_pids
from sandbox.model.cleanup import ProcessRecord, Socket
from sandbox.tracer.base import Tracer
from sandbox.tracer.target import SliceTarget, proc_cgroups

BROWSER = re.compile(r"chrom|headless_shell|crashpad", re.IGNORECASE)


def is_browser(comm: str, cmdline: list[str]) -> bool:
    return bool(BROWSER.search(comm) or (cmdline and BROWSER.search(Path(cmdline[0]).name)))


def describe(pid: int, now: float) -> ProcessRecord | None:
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
                         is_browser=is_browser(comm, cmdline), sockets=_sockets(proc))


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


def _forged(pid: int, carried: str, owner: str, by: str) -> dict[str, Any]:
    """A process carrying run ``carried``'s marker that belongs to run ``owner`` (``by``: the
    kernel fact that says so)."""
    try:
        comm = psutil.Process(pid).name()
    except psutil.Error:
        comm = None
    return {"pid": pid, "comm": comm, "marker": carried, "owner": owner, "by": by}


def orphans(slice_: Slice, main: subprocess.Popen | ForkedProcess | None, grace_s: float
            ) -> tuple[list[ProcessRecord], float]:
    """Wait up to the grace period for the slice to empty; what stays is orphaned. Returns
    them and the seconds waited."""
    begin = time.monotonic()
    main_pid = main.pid if main is not None else None
    while True:
        alive = {p for p in slice_.pids() if p != main_pid and is_alive(p)}
        waited = time.monotonic() - begin
        if not alive or waited >= grace_s:
            break
        time.sleep(0.05)
    now = time.time()
    return [d for p in sorted(alive) if (d := describe(p, now)) is not None], waited


def escapes(slice_: Slice, target: SliceTarget, tracer: Tracer | None, user: RunUser | None,
            runs: Runs
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
    found: dict[int, ProcessRecord] = {}
    forged: list[dict[str, Any]] = []
    for pid, found_by in sorted(candidates.items()):
        if pid in found or not is_alive(pid) or target.contains(pid):
            continue
        identity = identities.get(pid) or identify(pid)
        owner = runs.foreign(pid, slice_.run_id)
        if identity is None or owner is not None:
            if owner is not None and "marker" in found_by:
                forged.append(_forged(pid, slice_.run_id, owner.run_id, owner.by))
            continue
        desc = describe(pid, now)
        if desc is None or not is_same(identity):
            continue
        desc.found_by = found_by
        found[pid] = desc
        identities[pid] = identity
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(pid).children(recursive=True):
                if (child.pid in found or target.contains(child.pid)
                        or runs.foreign(child.pid, slice_.run_id) is not None
                        or (cid := identify(child.pid)) is None
                        or (cd := describe(child.pid, now)) is None or not is_same(cid)):
                    continue
                cd.found_by = ["descendant"]
                found[child.pid] = cd
                identities[child.pid] = cid
    moves = {e.pid: e for e in tracer.moves_out()} if tracer else {}
    for pid, record in found.items():
        groups = proc_cgroups(pid) or {}
        record.cgroup = groups.get(target.hierarchy)
        record.cgroups = groups
        move = moves.get(pid) if "tracer" in (record.found_by or ()) else None
        record.moved = ({"t": move.t, "wall": move.wall, "kind": move.kind,
                         "destination": move.cgroup} if move else None)
        record.killed = False
    return [found[p] for p in sorted(found)], identities, forged


def markers_carried(slice_: Slice, tracer: Tracer | None, user: RunUser | None, runs: Runs
                    ) -> list[dict[str, Any]]:
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
            found.append(_forged(pid, carried, slice_.run_id, owner.by if owner else "tracer"))
    return found
