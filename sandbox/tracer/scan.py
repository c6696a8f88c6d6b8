"""Last resort: scan /proc periodically. Emits ``seen`` when a process of the run is first
found (``cgroup`` set when it is found outside the slice, with its location) and ``exit`` when
it is gone."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from sandbox.tracer.base import Tracer
from sandbox.tracer.target import SliceTarget

DEFAULT_INTERVAL_S = 0.2

#: pid -> (ppid, comm, start time in clock ticks): the start time tells a reused pid apart.
Stat = tuple[int, str, int]


def read_stats() -> dict[int, Stat]:
    """ppid, comm and start time of every process on the host."""
    stats: dict[int, Stat] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry.name}/stat").read_bytes()
        except OSError:
            continue
        head, _, tail = raw.rpartition(b")")
        fields = tail.split()
        if fields[0] == b"Z":
            continue
        comm = head.partition(b"(")[2].decode(errors="replace")
        stats[int(entry.name)] = (int(fields[1]), comm, int(fields[19]))
    return stats


class ScanTracer(Tracer):
    """Follows the slice's members and their descendants, also after they left the slice."""

    backend = "scan"

    def __init__(self, target: SliceTarget, out_path: Path, members: Callable[[], set[int]],
                 t0: float | None = None, interval: float = DEFAULT_INTERVAL_S) -> None:
        super().__init__(target, out_path, t0)
        self.members = members
        self.interval = interval
        self.limitations = (
            f"misses processes that live shorter than the scan interval ({interval} s)",
            "cannot name the moment of an escape, only where the process was when scanned",
            "no fork or exec events: seen and exit only",
        )
        self._followed: dict[int, tuple[Stat, str | None]] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tracer-scan", daemon=True)

    def _start(self) -> None:
        self.scan()
        self._thread.start()

    def _stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        self.scan()

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            self.scan()

    def scan(self) -> None:
        """One pass: new members and descendants, moves out of the slice, exits."""
        members = self.members()
        stats = read_stats()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _, _) in stats.items():
            children.setdefault(ppid, []).append(pid)
        # Exits first: a followed pid that another process took since is not followed on.
        for pid, (stat, _) in list(self._followed.items()):
            now = stats.get(pid)
            if now is None or now[2] != stat[2]:  # gone, or its pid reused
                del self._followed[pid]
                self.emit("exit", pid, stat[0], stat[1])
        wanted = [p for p in members | self._followed.keys() if p in stats]
        found: set[int] = set()
        while wanted:
            pid = wanted.pop()
            if pid not in found:
                found.add(pid)
                wanted += children.get(pid, [])
        for pid in sorted(found):
            stat = stats[pid]
            where = None if pid in members else self.target.where(pid)
            known = self._followed.get(pid)
            self._followed[pid] = (stat, where)
            if known is None or known[1] != where:
                self.emit("seen", pid, stat[0], stat[1], cgroup=where,
                          hierarchy=self.target.hierarchy if where is not None else None)
