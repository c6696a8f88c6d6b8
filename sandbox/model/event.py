"""One events.jsonl record: a process event the tracer saw (docs/run-directory.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.model.fields import integer, is_integer, is_number, number, text

#: fork, exec, exit (every backend); attach (eBPF: moved to another cgroup); seen (a /proc scan).
KINDS = ("fork", "exec", "exit", "attach", "seen")


@dataclass(frozen=True, slots=True)
class Event:
    """``t``: s since the run started (CLOCK_MONOTONIC); ``cgroup``: an attach's destination,
    or where a scan found a process outside the slice, in ``hierarchy``; ``filename``: an
    exec's."""

    t: float
    kind: str
    pid: int
    ppid: int | None = None
    comm: str | None = None
    wall: float | None = None
    cgroup: str | None = None
    hierarchy: str | None = None
    filename: str | None = None

    def to_record(self) -> dict[str, Any]:
        """The events.jsonl line: ``hierarchy`` and ``filename`` only where they apply."""
        record = {"t": self.t, "wall": self.wall, "kind": self.kind, "pid": self.pid,
                  "ppid": self.ppid, "comm": self.comm, "cgroup": self.cgroup}
        if self.hierarchy is not None:
            record["hierarchy"] = self.hierarchy
        if self.filename is not None:
            record["filename"] = self.filename
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Event | None:
        """The event of one line (format 1), None when it has no time, kind or pid."""
        t, kind, pid = record.get("t"), record.get("kind"), record.get("pid")
        if not is_number(t) or not isinstance(kind, str) or not is_integer(pid):
            return None
        return cls(t=float(t), kind=kind, pid=pid, ppid=integer(record.get("ppid")),
                   comm=text(record.get("comm")), wall=number(record.get("wall")),
                   cgroup=text(record.get("cgroup")), hierarchy=text(record.get("hierarchy")),
                   filename=text(record.get("filename")))

