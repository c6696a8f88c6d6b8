"""Process lifecycle tracing of one run's slice: eBPF (bpftrace) first, the proc connector
(pyroute2) second, a /proc scan last. ``start_tracer`` picks the best one usable here."""

from __future__ import annotations

import os
from pathlib import Path

from sandbox.host.facts import HostFacts, discover
from sandbox.host.slice import Slice
from sandbox.tracer.base import Tracer, TracerError
from sandbox.tracer.ebpf import EbpfTracer
from sandbox.tracer.proc_connector import ProcConnectorTracer
from sandbox.tracer.scan import ScanTracer
from sandbox.tracer.target import SliceTarget

BACKENDS = ("ebpf", "proc-connector", "scan")

__all__ = ["BACKENDS", "SliceTarget", "Tracer", "TracerError", "start_tracer"]


#: The kernel's initial pid namespace has this fixed inode number (PROC_PID_INIT_INO).
INIT_PID_NS_INO = 0xEFFFFFFC


def nested_pid_namespace(link: str = "/proc/self/ns/pid") -> bool:
    """Whether this process lives in a pid namespace below the host's (a container's, whose
    own /proc shows only its own pids)."""
    try:
        return os.stat(link).st_ino != INIT_PID_NS_INO
    except OSError:
        return False


def _unusable(backend: str, facts: HostFacts, target: SliceTarget) -> str | None:
    """Why ``backend`` cannot run here (None when it can)."""
    if backend in ("ebpf", "proc-connector") and nested_pid_namespace():
        # both report the host's pids, which /proc here does not show (or shows as others)
        return "this pid namespace is not the host's (a container's): it sees the host's pids"
    if backend == "ebpf":
        if not facts.is_root:
            return "eBPF needs root"
        if not facts.bpftrace:
            return "bpftrace is not installed"
        if target.hierarchy is None:
            return "eBPF filters by cgroup and this run has none"
    if backend == "proc-connector" and not facts.proc_connector:
        return "the proc connector needs root and pyroute2"
    return None


def _make(backend: str, slice_: Slice, target: SliceTarget, out_path: Path, t0: float | None,
          facts: HostFacts) -> Tracer:
    if backend == "ebpf":
        return EbpfTracer(target, out_path, t0, bpftrace=facts.bpftrace or "bpftrace")
    if backend == "proc-connector":
        return ProcConnectorTracer(target, out_path, t0)
    return ScanTracer(target, out_path, slice_.pids, t0)


def start_tracer(slice_: Slice, out_path: Path, backend: str = "auto", *,
                 facts: HostFacts | None = None, t0: float | None = None,
                 events_max: int | None = None) -> Tracer:
    """Start following ``slice_``'s processes (call after the slice is created, before the
    workload is spawned) and append events to ``out_path``. ``backend`` is ``auto`` (the best
    that starts here; why better ones were skipped is in ``Tracer.notes``) or one of BACKENDS,
    which is then required. ``t0`` is the run's monotonic start (events' ``t``);
    ``events_max`` caps ``out_path`` (bytes; default DEFAULT_EVENTS_MAX)."""
    if backend != "auto" and backend not in BACKENDS:
        raise TracerError(f"unknown tracer backend {backend!r} (auto, {', '.join(BACKENDS)})")
    facts = facts or discover()
    target = SliceTarget.of(slice_)
    skipped: list[str] = []
    for candidate in BACKENDS if backend == "auto" else (backend,):
        reason = _unusable(candidate, facts, target)
        if reason is None:
            tracer = _make(candidate, slice_, target, Path(out_path), t0, facts)
            if events_max is not None:
                tracer.events_max = events_max
            try:
                tracer.start()
            except TracerError as exc:
                reason = str(exc)
            else:
                tracer.notes[:0] = skipped
                return tracer
        if backend != "auto":
            raise TracerError(f"tracer backend {candidate} unusable: {reason}")
        skipped.append(f"{candidate} skipped: {reason}")
    raise AssertionError("the scan backend always starts")
