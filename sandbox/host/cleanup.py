"""``sandbox cleanup``: remove the slices of harnesses that died without tearing down."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.host.reaper import reap
from sandbox.host.registry import SliceRecord, short_tmp_dir, stale_records
from sandbox.host.slice import SliceError, _read_pids, _rmtree_cgroup, marked_pids


@dataclass
class CleanedSlice:
    name: str
    killed: list[int] = field(default_factory=list)
    removed_dirs: list[str] = field(default_factory=list)
    error: str | None = None


def _slice_pids(record: SliceRecord) -> set[int]:
    pids: set[int] = set()
    for directory in record.dirs:
        for root, _, _ in os.walk(directory):
            pids |= _read_pids(Path(root) / "cgroup.procs")
    return pids | marked_pids(record.marker)


def _kill_all(record: SliceRecord, timeout: float = 10.0) -> list[int]:
    killed: set[int] = set()
    deadline = time.monotonic() + timeout
    while (pids := _slice_pids(record)) and time.monotonic() < deadline:
        for directory in record.dirs:
            kill_file = Path(directory) / "cgroup.kill"
            if kill_file.exists():
                with contextlib.suppress(OSError):
                    kill_file.write_text("1")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        killed |= pids
        time.sleep(0.02)
    return sorted(killed)


def clean_record(record: SliceRecord) -> CleanedSlice:
    result = CleanedSlice(record.name)
    result.killed = _kill_all(record)
    reap(result.killed)  # those reparented to this harness (a subreaper) would stay zombies
    try:
        for directory in record.dirs:
            if Path(directory).exists():
                _rmtree_cgroup(Path(directory))
                result.removed_dirs.append(directory)
        if record.harness_leaf and Path(record.harness_leaf).exists():
            with contextlib.suppress(OSError):
                os.rmdir(record.harness_leaf)
                result.removed_dirs.append(record.harness_leaf)
    except SliceError as exc:
        result.error = str(exc)
        return result
    shutil.rmtree(short_tmp_dir(record.marker), ignore_errors=True)
    record.delete()
    return result


def cleanup_stale() -> list[CleanedSlice]:
    """Kill and remove every slice whose harness is no longer alive."""
    return [clean_record(r) for r in stale_records()]
