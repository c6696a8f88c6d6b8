"""Read a run directory back from disk (also of a killed run) for analysis and reports."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from sandbox import rundir
from sandbox.errors import HarnessError
from sandbox.model.alert import Alert
from sandbox.model.cleanup import CleanupFacts
from sandbox.model.event import Event
from sandbox.model.operation import JsHeapMeasurement, Operation
from sandbox.model.role_sweep import RoleSweep
from sandbox.model.run_info import RunInfo
from sandbox.model.sample import SAMPLE_FIELDS

log = logging.getLogger(__name__)
R = TypeVar("R")

#: Numeric fields of samples.jsonl (docs/run-directory.md); unknown numeric keys are kept too.
NUMERIC_FIELDS = tuple(f for f in SAMPLE_FIELDS if f not in ("source", "tier", "caveat"))


class RunReadError(HarnessError):
    """A run directory or one of its files cannot be read."""


@dataclass
class RunData:
    """Everything a run left on disk: the model's records, the samples as numpy arrays."""

    path: Path
    run: RunInfo = field(default_factory=lambda: RunInfo.from_dict({}))
    samples: dict[str, np.ndarray] = field(default_factory=dict)
    operations: list[Operation] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    cleanup: CleanupFacts = field(default_factory=lambda: CleanupFacts(available=False))
    alerts: list[Alert] = field(default_factory=list)
    sample_source: str | None = None
    roles: list[RoleSweep] = field(default_factory=list)  # roles.jsonl sweeps
    js_heap: list[JsHeapMeasurement] = field(default_factory=list)  # jsheap.jsonl

    @property
    def n_samples(self) -> int:
        """Number of samples read."""
        return len(self.samples.get("t", ()))


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file of objects; skip blank lines and a last line cut mid-write.

    Malformed lines that are not the last one are skipped with one warning for the file (they
    cannot be a cut write). A missing file reads as an empty list.
    """
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    rows: list[dict[str, Any]] = []
    malformed: list[int] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            if i != len(lines) - 1:
                malformed.append(i + 1)
            continue
        if isinstance(obj, dict):
            rows.append(obj)
    if malformed:
        log.warning("%s: skipped %d malformed line(s), the first at line %d", path,
                    len(malformed), malformed[0])
    return rows


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunReadError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise RunReadError(f"{path}: expected a JSON object")
    return obj


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return float("nan")


def _carry_forward(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A ``fast`` sample has only the fields read for it; the others are those of the last
    full sample before it (docs/run-directory.md, ``tier``)."""
    last: dict[str, Any] = {}
    out = []
    for row in rows:
        if row.get("tier") == "fast":
            row = {**last, "settle": None, **row}  # a settle point is its own sample's
        else:
            last = row
        out.append(row)
    return out


def samples_to_arrays(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Turn sample rows into float arrays keyed by field (NaN for null or missing), sorted by t.

    Rows without a numeric ``t`` are dropped. ``settle`` is always there: the settle point's
    number on the samples taken at one, NaN elsewhere.
    """
    rows = _carry_forward(
        [r for r in rows if isinstance(r.get("t"), int | float) and not isinstance(r["t"], bool)])
    keys = [k for k in NUMERIC_FIELDS if any(k in r for r in rows)]
    extra = sorted(
        {k for r in rows for k, v in r.items()
         if k not in NUMERIC_FIELDS and isinstance(v, int | float) and not isinstance(v, bool)}
    )
    arrays = {k: np.array([_to_float(r.get(k)) for r in rows], dtype=float) for k in keys + extra}
    if "t" not in arrays:
        arrays["t"] = np.empty(0, dtype=float)
    if "settle" not in arrays:  # samples.jsonl before format 3: no settle points
        arrays["settle"] = np.full(len(arrays["t"]), np.nan)
    order = np.argsort(arrays["t"], kind="stable")
    return {k: v[order] for k, v in arrays.items()}


def read_run(run_dir: str | Path, *, events: bool = True) -> RunData:
    """Read run.json, samples.jsonl, operations.jsonl, events.jsonl (unless not
    ``events``: a live run's look needs none), cleanup.json, alerts, roles.jsonl and
    jsheap.jsonl.

    Missing files read as empty. Alerts come from ``run.json["alerts"]`` and ``alerts.jsonl``.
    Raises RunReadError when the directory does not exist or a JSON document is corrupt.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise RunReadError(f"{path}: not a run directory")
    run = _read_json(path / rundir.RUN) or {}
    sample_rows = read_jsonl(path / rundir.SAMPLES)
    sources = {r.get("source") for r in sample_rows if r.get("source")}
    alerts = [a for row in run.get("alerts") or [] if isinstance(row, dict)
              and (a := Alert.from_record(row)) is not None]  # run.json 1 kept them
    alerts += _records(path / rundir.ALERTS, Alert.from_record)
    return RunData(
        path=path,
        run=RunInfo.from_dict(run),
        samples=samples_to_arrays(sample_rows),
        operations=_records(path / rundir.OPERATIONS, Operation.from_record),
        events=_records(path / rundir.EVENTS, Event.from_record) if events else [],
        cleanup=CleanupFacts.from_dict(_read_json(path / rundir.CLEANUP)),
        alerts=alerts,
        sample_source=",".join(sorted(str(s) for s in sources)) or None,
        roles=_records(path / rundir.ROLES, RoleSweep.from_record),
        js_heap=_records(path / rundir.JS_HEAP, JsHeapMeasurement.from_record),
    )


def _records(path: Path, parse: Callable[[dict[str, Any]], R | None]) -> list[R]:
    """The records of a JSON-lines file; lines that are not one of them are skipped."""
    return [record for row in read_jsonl(path) if (record := parse(row)) is not None]
