"""run.json: what the harness records about one run, every key declared here once
(docs/run-directory.md). Filled in as the run goes (start, watchers, workload's end, teardown,
verdict) and saved after each step, so a killed run's run.json says how far it got."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from sandbox.config import RunConfig, from_recorded, recorded
from sandbox.model.fields import number


@dataclass
class RunInfo:
    run_id: str
    config: RunConfig  # run.json keeps it as config.recorded() writes it
    host: dict[str, Any]  # HostFacts.to_dict()
    started: float | None  # Unix time (None only when read from a run.json without it)
    workload: str  # screenshot or command
    formats: dict[str, int] = field(default_factory=dict)  # rundir.FILE_FORMATS
    slice: dict[str, Any] | None = None  # name, backend, cgroup directories
    user: dict[str, Any] | None = None  # the run's UID (RunUser.to_dict())
    private_tmp: dict[str, Any] | None = None  # areas, size_bytes
    limits: dict[str, Any] | None = None  # per limit: value, source, hits (sandbox.limits)
    env: dict[str, Any] | None = None  # inherited, passed and all variable NAMES (no values)
    backend: dict[str, Any] | None = None  # cgroup, sampler, c_ticker, tracer
    roles: dict[str, Any] | None = None  # RoleSampler.to_dict()
    settle: dict[str, Any] | None = None  # settle points: SettleChannel.to_dict()
    workload_log: dict[str, Any] | None = None  # CappedLog.to_dict()
    workload_end_t: float | None = None  # s since the sampler started
    workload_returncode: int | None = None
    workload_exit: dict[str, Any] | None = None  # returncode, signal, ended_by
    disk_error: str | None = None
    ended: float | None = None  # Unix time
    stopped_by: str | None = None  # duration, decided, ended by itself, a signal, disk full
    #: --until-decided: the look plan (analysis.sequential.LookPlan), looks taken, and the
    #: deciding look's time (s since the sampler started) and outcome
    decision: dict[str, Any] | None = None
    exit_code: int | None = None  # the verdict's

    def to_dict(self) -> dict[str, Any]:
        """The run.json document: keys not known yet are left out."""
        doc = {key: value for key, value in asdict(self).items() if value is not None}
        return doc | {"config": recorded(self.config)}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> RunInfo:
        """A run.json of any format (1-4), also a killed run's: keys it does not declare are
        left out, a missing or mistyped required key reads as empty (the analysis then says
        what it could not tell); the config as :func:`sandbox.config.from_recorded` reads it."""
        known = {f.name: str(f.type) for f in fields(cls)}
        info = cls(run_id=str(doc.get("run_id") or ""),
                   config=from_recorded(_object(doc.get("config"))),
                   host=_object(doc.get("host")), started=number(doc.get("started")),
                   workload=str(doc.get("workload") or ""))
        for name, value in doc.items():
            if name in known and name not in _REQUIRED and _of_type(known[name], value):
                setattr(info, name, value)
        return info


_REQUIRED = ("run_id", "config", "host", "started", "workload")
_TYPES = {"dict": dict, "str": str, "int": int, "float": int | float}


def _of_type(annotation: str, value: Any) -> bool:
    """Whether ``value`` is of a field's declared type (``dict[str, Any] | None`` -> dict)."""
    expected = _TYPES[annotation.split("[")[0].split(" ")[0]]
    return isinstance(value, expected) and not isinstance(value, bool)


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
