"""One roles.jsonl record: a sweep of the slice's processes, summed per role
(docs/run-directory.md). A count sweep reads processes, fds, threads and RSS (statm); a memory
sweep PSS, USS and RSS (smaps_rollup) too."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sandbox.model.fields import integer, is_number

#: What every sweep reads; a memory sweep reads MEMORY_FIELDS too.
COUNT_FIELDS = ("processes", "fds", "threads", "rss")
MEMORY_FIELDS = ("pss", "uss")


@dataclass(slots=True)
class RoleTotals:
    """One role's sums in one sweep (bytes; None: not read by this sweep)."""

    processes: int = 0
    fds: int = 0
    threads: int = 0
    rss: int | None = None  # None only in count sweeps of format 1
    pss: int | None = None  # memory sweeps only
    uss: int | None = None

    def add(self, other: RoleTotals) -> None:
        """Add one process's (or another sum's) values; None stays None only if both are."""
        for key in (*COUNT_FIELDS, *MEMORY_FIELDS):
            mine, theirs = getattr(self, key), getattr(other, key)
            if theirs is not None:
                setattr(self, key, theirs if mine is None else mine + theirs)

    def to_record(self) -> dict[str, int]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RoleTotals:
        value = {key: integer(record.get(key)) for key in (*COUNT_FIELDS, *MEMORY_FIELDS)}
        return cls(processes=value["processes"] or 0, fds=value["fds"] or 0,
                   threads=value["threads"] or 0, rss=value["rss"], pss=value["pss"],
                   uss=value["uss"])


@dataclass(frozen=True, slots=True)
class RoleSweep:
    """``t``: s since the run started; ``roles``: role name -> its totals."""

    t: float
    roles: dict[str, RoleTotals]

    def reads(self, field: str) -> bool:
        """Whether this sweep read ``field`` (``pss``: a memory sweep; ``rss``: every sweep
        of format 2)."""
        return any(getattr(row, field) is not None for row in self.roles.values())

    def total(self, field: str) -> int:
        """``field`` summed over every role (0 where unread)."""
        return sum(getattr(row, field) or 0 for row in self.roles.values())

    def to_record(self) -> dict[str, Any]:
        """The roles.jsonl line (format 2)."""
        return {"t": self.t, "roles": {name: row.to_record() for name, row in self.roles.items()}}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RoleSweep | None:
        """The sweep of one line (formats 1 and 2), None without a time or roles."""
        roles = record.get("roles")
        if not is_number(record.get("t")) or not isinstance(roles, dict):
            return None
        return cls(t=float(record["t"]),
                   roles={str(name): RoleTotals.from_record(row)
                          for name, row in roles.items() if isinstance(row, dict)})
