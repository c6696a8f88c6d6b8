"""On-disk registry of live slices, so a SIGKILLed harness's leftovers can be found and removed.

Each slice gets ``<state dir>/<slice name>.json`` written BEFORE its cgroup directories are made
and removed after they are gone. It names the harness (pid + kernel start time, so a reused
pid is not mistaken for a live harness), the cgroup directories and the run's environment
marker.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from sandbox.host import procid
from sandbox.model.fields import is_integer, is_number

SLICE_PREFIX = "sandbox-"


def state_dir() -> Path:
    """Where slice records live: $SANDBOX_STATE_DIR, else /run/sandbox (tmpfs: gone on reboot,
    as the cgroups are)."""
    return Path(os.environ.get("SANDBOX_STATE_DIR", "/run/sandbox"))


@dataclass
class SliceRecord:
    name: str
    harness_pid: int
    harness_start: int | float  # clock ticks since boot (a float: an earlier version's)
    mode: str
    marker: str
    dirs: list[str] = field(default_factory=list)
    harness_leaf: str | None = None
    uid: int | None = None  # the run's own UID (a dynamic user), released by cleanup
    private_fs: str | None = None  # the run's tmpfs mount point
    run_dir: str | None = None  # where cleanup finishes the reports of a killed harness

    @property
    def path(self) -> Path:
        return state_dir() / f"{self.name}.json"

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.parent.chmod(0o700)  # workloads must not see other runs' records
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, self.path)

    def delete(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def harness_alive(self) -> bool:
        return harness_alive(self.harness_pid, self.harness_start)


def this_harness() -> tuple[int, int]:
    """This harness's pid and kernel start time (clock ticks since boot)."""
    start = procid.start_time(os.getpid())
    assert start is not None  # this process exists
    return os.getpid(), start


def harness_alive(pid: int, start: int | float) -> bool:
    """Whether the harness a record names is alive: by its kernel start time in clock ticks,
    never by a wall-clock time (the boot time /proc/stat gives moves with clock adjustments:
    a live harness then looked gone, and another run's cleanup killed its slice). A record of
    an earlier version holds a wall-clock time, compared within 2 s."""
    if is_integer(start):
        return procid.start_time(pid) == start
    try:
        return abs(psutil.Process(pid).create_time() - float(start)) < 2.0
    except psutil.Error:
        return False


def _well_typed(record: SliceRecord) -> bool:
    """Whether every field of a record read back has its declared type (a corrupt record is
    skipped, never acted on)."""
    optional = (record.harness_leaf, record.private_fs, record.run_dir)
    return (all(isinstance(v, str) for v in (record.name, record.mode, record.marker))
            and is_integer(record.harness_pid) and is_number(record.harness_start)
            and isinstance(record.dirs, list) and all(isinstance(d, str) for d in record.dirs)
            and (record.uid is None or is_integer(record.uid))
            and all(v is None or isinstance(v, str) for v in optional))


def load_records() -> list[SliceRecord]:
    """The slice records in the state directory; unreadable or corrupt ones are skipped."""
    records = []
    for path in sorted(state_dir().glob(f"{SLICE_PREFIX}*.json")):
        try:
            record = SliceRecord(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if _well_typed(record):
            records.append(record)
    return records


def stale_records() -> list[SliceRecord]:
    """Records whose harness is gone; only directories named ``sandbox-*`` are ever touched."""
    return [
        r for r in load_records()
        if r.name.startswith(SLICE_PREFIX) and not r.harness_alive()
    ]
