"""Read a slice's cgroup files: kept open, ``pread`` on every sample, parsed into one record.

Two layouts share one reader: pure cgroup v2 (every file in one unified directory) and v1 /
hybrid (memory, pids and cpuacct controllers in their own hierarchies; on a hybrid host the
unified directory adds memory PSI and ``cpu.stat``). A file that is absent, or vanishes
mid-run (ENOENT, ENODEV once the cgroup is removed), reads as ``None``: no value, no crash.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.host.slice import Slice

_CHUNK = 65536

FULL_PERIOD_S = 1.0
MOVE_BYTES = 1 << 20
V2_STAT_KEYS = ("anon", "file", "shmem", "inactive_file", "kernel")
V1_STAT_KEYS = ("total_rss", "total_cache", "total_shmem", "total_inactive_file")
OOM_KEYS = ("oom", "oom_kill")
CPU_KEYS = ("usage_usec",)


class ControlFile:
    """One control file, opened once and re-read from offset 0 with ``pread``."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.fd: int | None = None
        if path is not None:
            try:
                self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                self.fd = None

    def read(self) -> bytes | None:
        if self.fd is None:
            return None
        try:
            data = os.pread(self.fd, _CHUNK, 0)
            while len(data) % _CHUNK == 0 and data:
                more = os.pread(self.fd, _CHUNK, len(data))
                if not more:
                    break
                data += more
            return data
        except OSError:
            return None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def parse_int(data: bytes | None) -> int | None:
    """A single-number file (``memory.current``, ``pids.current``); ``max`` reads as None."""
    if not data:
        return None
    try:
        return int(data.split()[0])
    except (ValueError, IndexError):
        return None


def parse_keyed(data: bytes | None, keys: tuple[str, ...] | None = None) -> dict[str, int]:
    """A flat-keyed file (``memory.stat``, ``memory.events``, ``cpu.stat``, ``oom_control``);
    only ``keys`` when given (converting just those is most of the parse time saved)."""
    if not data:
        return {}
    tokens = data.split()
    pairs = dict(zip(tokens[::2], tokens[1::2], strict=False))
    out: dict[str, int] = {}
    for key in keys if keys is not None else [k.decode() for k in pairs]:
        value = pairs.get(key.encode())
        if value is None:
            continue
        try:
            out[key] = int(value)
        except ValueError:
            continue
    return out


def parse_psi(data: bytes | None) -> tuple[float | None, float | None]:
    """``some``/``full`` avg10 from a PSI file (``memory.pressure``)."""
    some = full = None
    if not data:
        return some, full
    for line in data.splitlines():
        kind, _, rest = line.partition(b" ")
        for field in rest.split():
            if field.startswith(b"avg10="):
                try:
                    value = float(field[6:])
                except ValueError:
                    break
                if kind == b"some":
                    some = value
                elif kind == b"full":
                    full = value
                break
    return some, full


def _fd(control: ControlFile | None) -> int:
    """The open fd of a control file, -1 when it is absent or could not be opened."""
    return control.fd if control is not None and control.fd is not None else -1


class Members:
    """The pids in a membership cgroup and all cgroups below it (``cgroup.procs``)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.procs = ControlFile(directory / "cgroup.procs" if directory else None)
        # cgroup.stat (v2 core, present on hybrid too) says whether any child cgroup exists.
        self.stat = ControlFile(directory / "cgroup.stat" if directory else None)

    def pids(self) -> list[int] | None:
        data = self.procs.read()
        if data is None or self.directory is None:
            return None
        found = [int(x) for x in data.split()]
        nested = parse_keyed(self.stat.read(), ("nr_descendants",)).get("nr_descendants")
        if nested == 0:  # v2 core says no child cgroup: skip the walk
            return found
        for root, dirs, _ in os.walk(self.directory):
            if root == str(self.directory):
                continue
            try:
                with open(os.path.join(root, "cgroup.procs"), "rb") as f:
                    found.extend(int(x) for x in f.read().split())
            except OSError:
                dirs[:] = []
        return found

    def close(self) -> None:
        self.procs.close()
        self.stat.close()


class CgroupReader:
    """Reads one sample's cgroup values. ``kind`` is ``v2`` or ``v1`` (v1 and hybrid hosts).

    Tiered: the cheap single-number files (usage, pids, peak) are read on every sample;
    memory.stat, PSI, CPU, OOM counters and the process list (the dear part: memory.stat
    alone is ~25 us of kernel time on v1) on a *full* sample, at most ``full_period_s`` apart,
    or as soon as the usage moved ``move_bytes`` since the last full one. A fast sample has
    only :data:`FAST_FIELDS` (the working set from the fresh usage and the last full sample's
    inactive file); its ``tier`` says ``fast``."""

    def __init__(self, kind: str, files: dict[str, Path | None],
                 membership: Path | None = None, *, full_period_s: float = FULL_PERIOD_S,
                 move_bytes: int = MOVE_BYTES) -> None:
        if kind not in ("v2", "v1"):
            raise ValueError(f"unknown cgroup reader kind {kind!r}")
        self.kind = kind
        self.source = f"cgroup-{kind}"
        self.files = {role: ControlFile(path) for role, path in files.items()}
        self.members = Members(membership)
        self.full_period_s = full_period_s
        self.move_bytes = move_bytes
        self._full: tuple[float, dict[str, Any], list[int] | None, int | None] | None = None
        # (when, the full record, pids, usage then)

    @classmethod
    def for_slice(cls, slice_: Slice) -> CgroupReader:
        """The reader for a slice with a cgroup (``Slice.sampler_files``)."""
        files = slice_.sampler_files()
        if files is None:
            raise ValueError(f"slice {slice_.name} has no cgroup to read")
        return cls(*files)

    def next_full(self) -> None:
        """Make the next sample a full one."""
        self._full = None

    def read(self) -> tuple[dict[str, Any], list[int] | None]:
        """(record of documented sample fields, pids in the slice or None); see the class
        docstring for which fields a fast sample reads."""
        files = self.files
        usage = parse_int(files["current"].read()) if "current" in files else None
        now = time.monotonic()
        if self._full_due(now, usage):
            return self._read_full(now, usage)
        return self._fast(usage, parse_int(files["pids"].read()) if "pids" in files else None,
                          parse_int(files["peak"].read()) if "peak" in files else None)

    def fast_fds(self) -> tuple[int, int, int] | None:
        """The open fds of usage, pids and peak (-1 where absent) for the C ticker; None
        without a usage file."""
        current = self.files.get("current")
        if current is None or current.fd is None:
            return None
        return current.fd, _fd(self.files.get("pids")), _fd(self.files.get("peak"))

    def from_ticks(self, ticks: list[tuple[int, ...]]
                   ) -> tuple[list[tuple[float, int | None, int | None, int | None,
                                         int | None]], bool]:
        """Fast samples of values the ticker read, ``(t, usage, working set, pids, peak)``
        per tick (t on the monotonic clock; a value the ticker could not read is None), and
        whether a full sample is due; none before the first full sample."""
        full = self._full
        if full is None:
            return [], True
        inactive, due, out = full[1]["inactive_file"], False, []
        for t_ns, usage, pids, peak in ticks:
            t = t_ns / 1e9
            current = usage if usage >= 0 else None
            out.append((t, current, _working_set(current, inactive),
                        pids if pids >= 0 else None, peak if peak >= 0 else None))
            due = due or self._full_due(t, current)
        return out, due

    def _full_due(self, now: float, usage: int | None) -> bool:
        full = self._full
        return (full is None or usage is None or full[3] is None  # gone: nothing to repeat
                or now - full[0] >= self.full_period_s
                or abs(usage - full[3]) >= self.move_bytes)

    def _read_full(self, now: float, usage: int | None
                   ) -> tuple[dict[str, Any], list[int] | None]:
        raw = {role: f.read() for role, f in self.files.items() if role != "current"}
        record = (v2_record if self.kind == "v2" else v1_record)(raw, usage)
        pids = self.members.pids()
        record["nprocs"] = len(pids) if pids is not None else None
        self._full = (now, record, pids, usage)
        return dict(record), pids

    def _fast(self, usage: int | None, pids_current: int | None, peak: int | None
              ) -> tuple[dict[str, Any], list[int] | None]:
        full = self._full
        assert full is not None
        return {"memory_current": usage,
                "working_set": _working_set(usage, full[1]["inactive_file"]),
                "pids_current": pids_current, "peak": peak, "tier": "fast"}, full[2]

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.members.close()


#: What the cgroup files do not have (per-process figures: the psutil reader's).
_NOT_READ = {"uss": None, "pss": None, "file_descriptors": None, "tier": "full"}


def _working_set(current: int | None, inactive_file: int | None) -> int | None:
    if current is None or inactive_file is None:
        return None
    return max(current - inactive_file, 0)


def v2_record(raw: dict[str, bytes | None], current: int | None = None) -> dict[str, Any]:
    """Sample fields from pure-v2 file contents (role -> bytes or None; ``current``: the
    usage when it was read apart)."""
    stat = parse_keyed(raw.get("stat"), V2_STAT_KEYS)
    events = parse_keyed(raw.get("events"), OOM_KEYS) if raw.get("events") is not None else None
    current = parse_int(raw.get("current")) if "current" in raw else current
    some, full = parse_psi(raw.get("pressure"))
    return {
        "memory_current": current,
        "anon": stat.get("anon"),
        "file": stat.get("file"),
        "shmem": stat.get("shmem"),
        "inactive_file": stat.get("inactive_file"),
        "kernel": stat.get("kernel"),
        "working_set": _working_set(current, stat.get("inactive_file")),
        "peak": parse_int(raw.get("peak")),
        "pids_current": parse_int(raw.get("pids")),
        "nprocs": None,  # set by CgroupReader.read from cgroup.procs
        "cpu_usage_usec": parse_keyed(raw.get("cpu"), CPU_KEYS).get("usage_usec"),
        "oom": events.get("oom") if events is not None else None,
        "oom_kill": events.get("oom_kill") if events is not None else None,
        "psi_some_avg10": some,
        "psi_full_avg10": full,
        **_NOT_READ,
    }


def v1_record(raw: dict[str, bytes | None], current: int | None = None) -> dict[str, Any]:
    """Sample fields from v1 (or hybrid) file contents (``current`` as for v2_record).
    memory.stat's ``total_*`` keys are hierarchical (they include child cgroups); ``oom`` is
    ``under_oom`` (1 while in OOM)."""
    stat = parse_keyed(raw.get("stat"), V1_STAT_KEYS)
    oom = (parse_keyed(raw.get("oom_control"), ("under_oom", "oom_kill"))
           if raw.get("oom_control") is not None else None)
    current = parse_int(raw.get("current")) if "current" in raw else current
    cpu_ns = parse_int(raw.get("cpuacct"))
    cpu_usec = (cpu_ns // 1000 if cpu_ns is not None
                else parse_keyed(raw.get("cpu"), CPU_KEYS).get("usage_usec"))
    some, full = parse_psi(raw.get("pressure"))
    return {
        "memory_current": current,
        "anon": stat.get("total_rss"),
        "file": stat.get("total_cache"),
        "shmem": stat.get("total_shmem"),
        "inactive_file": stat.get("total_inactive_file"),
        "kernel": parse_int(raw.get("kmem")),
        "working_set": _working_set(current, stat.get("total_inactive_file")),
        "peak": parse_int(raw.get("peak")),
        "pids_current": parse_int(raw.get("pids")),
        "nprocs": None,  # set by CgroupReader.read from cgroup.procs
        "cpu_usage_usec": cpu_usec,
        "oom": oom.get("under_oom") if oom is not None else None,
        "oom_kill": oom.get("oom_kill") if oom is not None else None,
        "psi_some_avg10": some,
        "psi_full_avg10": full,
        **_NOT_READ,
    }
