"""cleanup.json: what the verifier found at teardown (docs/run-directory.md, docs/verifier.md).
The verifier builds these records into a :class:`CleanupReport`, cleanup.json holds it under
the seed's keys, and runreader reads it back (formats 1 and 2) into :class:`CleanupFacts` for
the analysis."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sandbox.model.fields import integer, is_integer, mapping, number, text

R = TypeVar("R")
#: A leftover tree at least this many directories deep is named with its depth.
DEEP_TREE = 16


@dataclass(frozen=True, slots=True)
class Socket:
    """An open TCP or UDP socket of a process (its own network namespace's view)."""

    proto: str
    laddr: str | None = None
    raddr: str | None = None
    status: str | None = None

    @property
    def listening(self) -> bool:
        """A bound port that outlives the run as surely as its process (UDP: always)."""
        return self.status == "LISTEN" or self.proto == "udp"

    def to_record(self) -> dict[str, Any]:
        return {"proto": self.proto, "laddr": self.laddr, "raddr": self.raddr,
                "status": self.status}

    @classmethod
    def from_record(cls, record: Any) -> Socket | None:
        if not isinstance(record, dict) or not isinstance(record.get("proto"), str):
            return None
        return cls(record["proto"], text(record.get("laddr")), text(record.get("raddr")),
                   text(record.get("status")))


@dataclass(slots=True)
class ProcessRecord:
    """A process the verifier found alive: an orphan in the slice, or an escape outside it
    (then ``found_by``: tracer, marker, uid or descendant; ``cgroup`` where it is in the
    slice's hierarchy, ``cgroups`` in every one; ``moved``: the tracer's move event;
    ``killed``)."""

    pid: int
    comm: str | None = None
    cmdline: list[str] = field(default_factory=list)
    ppid: int | None = None
    user: str | None = None
    age_s: float | None = None
    created: float | None = None  # Unix time: with the pid, which process this was
    is_browser: bool = False
    sockets: list[Socket] = field(default_factory=list)
    found_by: list[str] | None = None
    cgroup: str | None = None
    cgroups: dict[str, str] | None = None
    moved: dict[str, Any] | None = None
    killed: bool | None = None

    @property
    def is_escape(self) -> bool:
        return self.found_by is not None

    @property
    def name(self) -> str:
        """``pid 123 (sleep)``."""
        return f"pid {self.pid}" + (f" ({self.comm})" if self.comm else "")

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "pid": self.pid, "ppid": self.ppid, "comm": self.comm, "cmdline": self.cmdline,
            "user": self.user, "age_s": self.age_s, "created": self.created,
            "is_browser": self.is_browser, "sockets": [s.to_record() for s in self.sockets]}
        if self.is_escape:
            record |= {"found_by": self.found_by, "cgroup": self.cgroup,
                       "cgroups": self.cgroups, "moved": self.moved, "killed": self.killed}
        return record

    @classmethod
    def from_record(cls, record: Any) -> ProcessRecord | None:
        """A process of cleanup.json (format 2), or a bare pid (format 1's seed keys)."""
        if is_integer(record):
            return cls(pid=record, is_browser=True)
        if not isinstance(record, dict) or not is_integer(record.get("pid")):
            return None
        found_by = record.get("found_by")
        return cls(
            pid=record["pid"], comm=text(record.get("comm")),
            cmdline=[str(a) for a in record.get("cmdline") or [] if isinstance(a, str)],
            ppid=integer(record.get("ppid")), user=text(record.get("user")),
            age_s=number(record.get("age_s")), created=number(record.get("created")),
            is_browser=record.get("is_browser") is True,
            sockets=[s for raw in record.get("sockets") or []
                     if (s := Socket.from_record(raw)) is not None],
            found_by=[str(f) for f in found_by] if isinstance(found_by, list) else None,
            cgroup=text(record.get("cgroup")),
            cgroups=record.get("cgroups") if isinstance(record.get("cgroups"), dict) else None,
            moved=record.get("moved") if isinstance(record.get("moved"), dict) else None,
            killed=record.get("killed") if isinstance(record.get("killed"), bool) else None)


@dataclass(frozen=True, slots=True)
class LeftoverFile:
    """A file or directory the run left (``where``: private /tmp, run tmp, host /tmp, ...,
    SysV IPC), or an entry of its HOME; SysV objects have ``kind`` and ``id``, no files.
    ``depth``: levels of directories in it (0 for a file)."""

    path: str
    where: str | None = None
    size: int | None = None
    files: int | None = None
    age_s: float | None = None
    is_dir: bool = False
    uid: int | None = None
    kind: str | None = None
    id: int | None = None
    depth: int | None = None

    @property
    def described(self) -> str:
        """The path, with the depth of a deep tree: ``/tmp/d (a tree 5000 levels deep)``."""
        if self.depth is not None and self.depth >= DEEP_TREE:
            return f"{self.path} (a tree {self.depth} levels deep)"
        return self.path

    def to_record(self) -> dict[str, Any]:
        record = {"path": self.path, "where": self.where, "size": self.size,
                  "files": self.files, "age_s": self.age_s, "is_dir": self.is_dir,
                  "uid": self.uid, "depth": self.depth}
        if self.kind is not None:
            record |= {"kind": self.kind, "id": self.id}
        return record

    @classmethod
    def from_record(cls, record: Any) -> LeftoverFile | None:
        """An entry of cleanup.json (format 2), or a bare path (format 1's seed keys)."""
        if isinstance(record, str):
            return cls(path=record)
        if not isinstance(record, dict) or not isinstance(record.get("path"), str):
            return None
        return cls(path=record["path"], where=text(record.get("where")),
                   size=integer(record.get("size")), files=integer(record.get("files")),
                   age_s=number(record.get("age_s")), is_dir=record.get("is_dir") is True,
                   uid=integer(record.get("uid")), kind=text(record.get("kind")),
                   id=integer(record.get("id")), depth=integer(record.get("depth")))


@dataclass
class ResourceState:
    """The host's resources at one moment (the seed's fields, plus free space and inodes of
    /tmp and /dev/shm and the /dev/shm entries)."""

    timestamp: datetime
    total_processes: int
    browser_processes: list[int]
    temp_directories: list[str]
    temp_files: list[str]
    open_file_descriptors: int
    system_memory_mb: float
    system_memory_percent: float
    filesystems: dict[str, dict[str, int] | None] = field(default_factory=dict)
    shm_entries: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["timestamp"] = self.timestamp.isoformat()
        return data


@dataclass
class CleanupReport:
    """What the verifier found and did; ``to_dict`` has the seed's keys."""

    orphans: list[ProcessRecord]
    escapes: list[ProcessRecord]
    leftover_files: list[LeftoverFile]
    home_files: list[LeftoverFile]
    shmem_charged_bytes: int | None
    oom_kills: int | None
    alerts: list[dict[str, Any]]
    after_teardown: dict[str, Any]
    grace_s: float
    waited_s: float
    tracer: dict[str, Any] | None
    state_before: ResourceState | None
    state_after: ResourceState | None
    issues: list[str]
    forged_markers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def process_leak_detected(self) -> bool:
        return bool(self.orphans)

    @property
    def file_leak_detected(self) -> bool:
        return bool(self.leftover_files)

    @property
    def cleanup_successful(self) -> bool:
        return not (self.orphans or self.escapes or self.leftover_files
                    or not self.after_teardown["clean"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "process_cleanup": {
                "orphaned_browser_processes": [o.pid for o in self.orphans if o.is_browser],
                "orphans": [o.to_record() for o in self.orphans],
                "process_leak_detected": self.process_leak_detected,
                "grace_s": self.grace_s,
                "waited_s": self.waited_s,
            },
            "escapes": [e.to_record() for e in self.escapes],
            "forged_markers": self.forged_markers,
            "file_cleanup": {
                "remaining_temp_files": [f.path for f in self.leftover_files],
                "leftover_files": [f.to_record() for f in self.leftover_files],
                "home_files": [f.to_record() for f in self.home_files],
                "shmem_charged_bytes": self.shmem_charged_bytes,
                "file_leak_detected": self.file_leak_detected,
            },
            "oom_kills": self.oom_kills,
            "alerts": self.alerts,
            "tracer": self.tracer,
            "after_teardown": self.after_teardown,
            "state_before": self.state_before.to_dict() if self.state_before else None,
            "state_after": self.state_after.to_dict() if self.state_after else None,
            "cleanup_successful": self.cleanup_successful,
            "issues_found": self.issues or ["No cleanup issues detected"],
        }


@dataclass
class CleanupFacts:
    """cleanup.json as read back (``available`` False: the run has none: not verified)."""

    available: bool
    orphans: list[ProcessRecord] = field(default_factory=list)
    escapes: list[ProcessRecord] = field(default_factory=list)
    leftover_files: list[LeftoverFile] = field(default_factory=list)
    home_files: list[LeftoverFile] = field(default_factory=list)
    process_leak_detected: bool = False
    file_leak_detected: bool = False
    cleanup_successful: bool | None = None
    issues_found: list[str] = field(default_factory=list)
    oom_kills: int | None = None
    after_teardown: dict[str, Any] | None = None  # format 2: what was left, teardown timing

    @classmethod
    def from_dict(cls, doc: dict[str, Any] | None) -> CleanupFacts:
        """Formats 1 (the seed's keys: browser pids, paths) and 2; missing keys read as
        nothing found."""
        if doc is None:
            return cls(available=False)
        proc, files = mapping(doc.get("process_cleanup")), mapping(doc.get("file_cleanup"))
        orphans = _records(proc.get("orphans") or proc.get("orphaned_browser_processes"),
                           ProcessRecord.from_record)
        leftovers = _records(files.get("leftover_files") or files.get("remaining_temp_files"),
                             LeftoverFile.from_record)
        successful = doc.get("cleanup_successful")
        after = doc.get("after_teardown")
        return cls(
            available=True, orphans=orphans,
            escapes=_records(doc.get("escapes"), ProcessRecord.from_record),
            leftover_files=leftovers,
            home_files=_records(files.get("home_files"), LeftoverFile.from_record),
            process_leak_detected=bool(proc.get("process_leak_detected", bool(orphans))),
            file_leak_detected=bool(files.get("file_leak_detected", bool(leftovers))),
            cleanup_successful=successful if isinstance(successful, bool) else None,
            issues_found=[str(i) for i in doc.get("issues_found") or []],
            oom_kills=integer(doc.get("oom_kills")),
            after_teardown=after if isinstance(after, dict) else None)


def _records(values: Any, parse: Callable[[Any], R | None]) -> list[R]:
    """The records of a JSON list (anything else reads as none); entries that are not one
    are skipped."""
    return [r for v in values if (r := parse(v)) is not None] \
        if isinstance(values, list) else []
