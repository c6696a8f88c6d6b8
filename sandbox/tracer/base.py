"""The tracer interface and its event log (events.jsonl), common to every backend."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import IO, Any

from sandbox.errors import HarnessError
from sandbox.host.procid import TICKS_S, ProcessId, identify, is_same
from sandbox.model.event import Event
from sandbox.rundir import private_opener
from sandbox.tracer.target import SliceTarget

DEFAULT_EVENTS_MAX = 16 * 2**20  # events.jsonl's cap, bytes (~0.9 GB/h under a fork/exec loop)


def _started_by(identity: ProcessId, mono: float) -> bool:
    """Whether the process started by CLOCK_MONOTONIC time ``mono`` (its start time counts
    from boot, suspend included; one clock tick of slack)."""
    boot_offset = time.clock_gettime(time.CLOCK_BOOTTIME) - time.monotonic()
    return identity.start_s <= mono + boot_offset + 1 / TICKS_S


class TracerError(HarnessError):
    """A tracer backend cannot start here (one line: why)."""


class Tracer:
    """Follows the processes of one run's slice and appends one JSON line per event to
    ``out_path``. Events: ``{t, wall, kind, pid, ppid, comm, cgroup}`` with ``kind`` one of
    fork, exec, exit, attach (``cgroup`` = destination, ``hierarchy`` names it) or seen.
    The file stops growing at ``events_max`` bytes: later events are counted as dropped
    (the verifier's pids and moves are still kept in memory)."""

    backend = "abstract"
    limitations: tuple[str, ...] = ()

    def __init__(self, target: SliceTarget, out_path: Path, t0: float | None = None) -> None:
        self.target = target
        self.out_path = Path(out_path)
        self.t0 = time.monotonic() if t0 is None else t0
        self._clock = (time.monotonic(), time.time())
        self._lock = threading.Lock()
        # Runs last hours: keep counts and the few events the verifier needs, not every event
        # (they are all in events.jsonl).
        self._count = 0
        self._placed: list[Event] = []
        self._pids: set[int] = set()
        self._alive: dict[int, ProcessId] = {}
        self._out: IO[bytes] | None = None
        self.events_max = DEFAULT_EVENTS_MAX
        self._written = 0
        self.dropped = 0
        self.notes: list[str] = []

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Tracer:
        """Open the event log and start following; returns once no event can be missed."""
        self._out = open(self.out_path, "ab", buffering=0,  # noqa: SIM115 (closed in stop)
                         opener=private_opener)
        self._written = self._out.tell()
        try:
            self._start()
        except BaseException:
            self._close()
            raise
        return self

    def stop(self) -> None:
        """Stop following (idempotent); the events gathered so far stay readable."""
        if self._out is None:
            return
        try:
            self._stop()
        finally:
            self._close()

    def __enter__(self) -> Tracer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _close(self) -> None:
        with self._lock:
            if self._out is not None:
                self._out.close()
                self._out = None

    # -- backend interface -----------------------------------------------------------------
    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    # -- events ----------------------------------------------------------------------------
    def emit(self, kind: str, pid: int, ppid: int | None, comm: str | None,
             cgroup: str | None = None, mono: float | None = None, *,
             hierarchy: str | None = None, filename: str | None = None) -> None:
        """Record one event; ``mono`` is its CLOCK_MONOTONIC time (default: now)."""
        mono = time.monotonic() if mono is None else mono
        event = Event(t=round(mono - self.t0, 6), kind=kind, pid=pid, ppid=ppid, comm=comm,
                      wall=round(self._clock[1] + (mono - self._clock[0]), 6), cgroup=cgroup,
                      hierarchy=hierarchy, filename=filename)
        with self._lock:
            known = self._alive.get(pid)
        # Identified when first seen (a fork is a new process): only a process started by
        # the event's time can be the one the event is about, not one that took its pid since.
        identity = identify(pid) if kind == "fork" or (known is None and kind != "exit") \
            else None
        with self._lock:
            self._count += 1
            if cgroup is not None:
                self._placed.append(event)
            self._pids.add(pid)
            if identity is not None and _started_by(identity, mono):
                self._alive[pid] = identity
            elif (kind == "exit" and known is not None and _started_by(known, mono)
                  and self._alive.get(pid) == known):
                del self._alive[pid]
            if self._out is not None:
                line = (json.dumps(event.to_record()) + "\n").encode()
                if self._written + len(line) > self.events_max:
                    self.dropped += 1
                    return
                try:
                    self._out.write(line)
                except OSError:  # disk full: the run ends on the sampler's error
                    self.dropped += 1
                    return
                self._written += len(line)

    def seen_pids(self) -> set[int]:
        """Every pid the tracer followed (processes of the run, also those that left it); a
        pid here may name another process by now: act on :meth:`live_processes`."""
        with self._lock:
            return set(self._pids)

    def live_processes(self) -> list[ProcessId]:
        """The followed processes whose exit was not seen and whose pid still names them."""
        with self._lock:
            alive = list(self._alive.values())
        return [i for i in alive if is_same(i)]

    def moves_out(self) -> list[Event]:
        """Events that place a followed process outside the slice's membership cgroup:
        attach events naming the destination, or a scan's sighting with its location."""
        hierarchy = self.target.hierarchy
        with self._lock:
            placed = list(self._placed)
        return [e for e in placed
                if e.hierarchy == hierarchy and e.cgroup is not None
                and not self.target.inside(e.cgroup)]

    def to_dict(self) -> dict[str, Any]:
        """For run.json and the report: which backend ran and what it cannot see."""
        return {"backend": self.backend, "limitations": list(self.limitations),
                "notes": list(self.notes), "events": self._count,
                "events_max": self.events_max, "events_dropped": self.dropped}
