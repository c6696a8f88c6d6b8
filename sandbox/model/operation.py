"""What the screenshot workload reports on its stdout, one JSON object per line: an operation
(operations.jsonl) and, with ``--js-heap``, a JS heap measurement (jsheap.jsonl). The
workload writes them through these records, the launcher sorts its stdout by them and
runreader reads the files back through them (a command's stdout is only logged)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.model.fields import integer, is_number, number, text


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation: ``op`` its number or name, ``t`` its start (s since the run started),
    ``ok`` False when it failed (None: the line did not say; not counted as failed)."""

    op: int | str
    t: float | None = None
    wall: float | None = None
    url: str | None = None
    latency_s: float | None = None
    bytes: int | None = None
    ok: bool | None = None
    error: str | None = None
    settle_s: float | None = None  # the settle point after it took this long (none: None)

    @property
    def failed(self) -> bool:
        return self.ok is False

    @property
    def end(self) -> float | None:
        """When it ended (its start plus its latency), None without a start."""
        return None if self.t is None else self.t + (self.latency_s or 0.0)

    def to_record(self) -> dict[str, Any]:
        """The operations.jsonl line (format 1; ``settle_s`` only after a settle point)."""
        record = {"op": self.op, "t": self.t, "wall": self.wall, "url": self.url,
                  "latency_s": self.latency_s, "bytes": self.bytes, "ok": self.ok,
                  "error": self.error}
        return record if self.settle_s is None else record | {"settle_s": self.settle_s}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Operation | None:
        """The operation of a line with an ``op`` key (None for other lines); values of the
        wrong type read as None, the error as text."""
        op = record.get("op")
        if not isinstance(op, int | str) or isinstance(op, bool):
            return None
        ok = record.get("ok")
        error = record.get("error")
        return cls(op=op, t=number(record.get("t")), wall=number(record.get("wall")),
                   url=text(record.get("url")), latency_s=number(record.get("latency_s")),
                   bytes=integer(record.get("bytes")),
                   ok=ok if isinstance(ok, bool) else None,
                   error=None if error is None else str(error),
                   settle_s=number(record.get("settle_s")))


@dataclass(frozen=True, slots=True)
class JsHeapMeasurement:
    """The long-lived pages' JS heap after a forced GC, summed over ``pages``."""

    t: float
    wall: float | None = None
    pages: int = 0
    used_bytes: int | None = None
    dom_nodes: int | None = None
    listeners: int | None = None

    def to_record(self) -> dict[str, Any]:
        """The workload's ``jsheap`` line, as jsheap.jsonl keeps it (format 1)."""
        return {"kind": "jsheap", "t": self.t, "wall": self.wall, "pages": self.pages,
                "used_bytes": self.used_bytes, "dom_nodes": self.dom_nodes,
                "listeners": self.listeners}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> JsHeapMeasurement | None:
        """The measurement of a ``jsheap`` line, None for other lines or without a time."""
        if record.get("kind") != "jsheap" or not is_number(record.get("t")):
            return None
        return cls(t=float(record["t"]), wall=number(record.get("wall")),
                   pages=integer(record.get("pages")) or 0,
                   used_bytes=integer(record.get("used_bytes")),
                   dom_nodes=integer(record.get("dom_nodes")),
                   listeners=integer(record.get("listeners")))
