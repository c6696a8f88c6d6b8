"""A process's identity: its pid and its kernel start time, so a pid reused by another process
is never taken for (nor signalled as) the one that was seen. Signals go through a pidfd.
Start times count clock ticks (10 ms): two processes on one pid within one tick look alike,
which takes forcing (ns_last_pid); wrapping pid_max takes seconds at the least."""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

TICKS_S = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcessId:
    """``start``: when the process started, in clock ticks since boot (/proc/<pid>/stat
    field 22)."""

    pid: int
    start: int

    @property
    def start_s(self) -> float:
        """The start time in seconds since boot (CLOCK_BOOTTIME)."""
        return self.start / TICKS_S


def parse_stat(raw: bytes) -> tuple[str, int, int]:
    """State letter, ppid and start time (clock ticks) from a /proc/<pid>/stat line. The
    comm field may hold spaces and ')': the fields after it start at the LAST ')'."""
    fields = raw[raw.rindex(b")") + 1:].split()
    return fields[0].decode("ascii", "replace"), int(fields[1]), int(fields[19])


def _stat(pid: int) -> tuple[str, int, int] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return parse_stat(f.read())
    except (OSError, ValueError, IndexError):
        return None


def start_time(pid: int) -> int | None:
    """``pid``'s start time in clock ticks since boot (None when there is no such process)."""
    stat = _stat(pid)
    return None if stat is None else stat[2]


def is_alive(pid: int) -> bool:
    """Whether ``pid`` names a process that is not a zombie waiting to be reaped."""
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def identify(pid: int) -> ProcessId | None:
    """The identity of the process that has ``pid`` now (None if there is none)."""
    start = start_time(pid)
    return None if start is None else ProcessId(pid, start)


def is_same(identity: ProcessId) -> bool:
    """Whether ``identity.pid`` still names the process that was identified (also as a zombie
    not yet reaped)."""
    return start_time(identity.pid) == identity.start


def send_signal(identity: ProcessId, sig: int = signal.SIGKILL) -> bool:
    """Signal the identified process, never another that took its pid. Returns whether the
    signal was sent."""
    return signal_checked(identity.pid, lambda: is_same(identity), sig)


def signal_checked(pid: int, check: Callable[[], bool], sig: int = signal.SIGKILL) -> bool:
    """Signal ``pid`` if ``check()`` (which reads /proc/<pid>) holds: the pidfd is opened
    first, then ``check`` run, then the signal sent through the pidfd, which names the process
    it was opened on; if that process died and its pid was taken meanwhile, the signal fails
    instead of reaching the newcomer. Without pidfds: check, then kill. Returns whether the
    signal was sent."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    except OSError as exc:
        if exc.errno != errno.ENOSYS:  # EINVAL: not a process (a thread id)
            return False
        return _check_and_kill(pid, check, sig)
    try:
        if not check():
            return False
        signal.pidfd_send_signal(fd, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(fd)


def _check_and_kill(pid: int, check: Callable[[], bool], sig: int) -> bool:
    """The fallback without pidfds (a short window remains between check and kill)."""
    if not check():
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True
