"""One alerts.jsonl record: a live alert the sampler raised during the run (docs/run-directory.md):
the working set crossing the user's threshold, or a 30 s growth rate over the seed's limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.model.fields import is_number, number, text

KINDS = ("threshold", "growth_rate")


@dataclass(frozen=True, slots=True)
class Alert:
    """``value`` against ``limit``, in ``unit`` (MB or MB/s); ``t`` s since the run started."""

    t: float
    kind: str
    severity: str  # warning, critical
    value: float | None = None
    limit: float | None = None
    unit: str | None = None
    message: str = ""
    wall: float | None = None

    def to_record(self) -> dict[str, Any]:
        """The alerts.jsonl line (format 1)."""
        return {"t": self.t, "wall": self.wall, "kind": self.kind, "severity": self.severity,
                "value": self.value, "limit": self.limit, "unit": self.unit,
                "message": self.message}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Alert | None:
        """The alert of one line (also run.json's ``alerts`` of format 1), None without a
        time or kind."""
        if not is_number(record.get("t")) or not isinstance(record.get("kind"), str):
            return None
        return cls(t=float(record["t"]), kind=record["kind"],
                   severity=text(record.get("severity")) or "warning",
                   value=number(record.get("value")), limit=number(record.get("limit")),
                   unit=text(record.get("unit")), message=text(record.get("message")) or "",
                   wall=number(record.get("wall")))
