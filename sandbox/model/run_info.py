"""run.json: what the harness records about one run, every key declared here once
(docs/run-directory.md). Filled in as the run goes (start, watchers, workload's end, teardown,
verdict) and saved after each step, so a killed run's run.json says how far it got."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RunInfo:
    run_id: str
    config: dict[str, Any]  # the RunConfig, as given
    host: dict[str, Any]  # HostFacts.to_dict()
    started: float  # Unix time
    workload: str  # screenshot or command
    formats: dict[str, int] = field(default_factory=dict)  # rundir.FILE_FORMATS
    slice: dict[str, Any] | None = None  # name, backend, cgroup directories
    user: dict[str, Any] | None = None  # the run's UID (RunUser.to_dict())
    private_tmp: dict[str, Any] | None = None  # areas, size_bytes
    backend: dict[str, Any] | None = None  # cgroup, sampler, c_ticker, tracer
    roles: dict[str, Any] | None = None  # RoleSampler.to_dict()
    workload_log: dict[str, Any] | None = None  # CappedLog.to_dict()
    workload_end_t: float | None = None  # s since the sampler started
    workload_returncode: int | None = None
    workload_exit: dict[str, Any] | None = None  # returncode, signal, ended_by
    disk_error: str | None = None
    ended: float | None = None  # Unix time
    stopped_by: str | None = None  # duration, ended by itself, a signal, disk full
    exit_code: int | None = None  # the verdict's

    def to_dict(self) -> dict[str, Any]:
        """The run.json document: keys not known yet are left out."""
        return {key: value for key, value in asdict(self).items() if value is not None}
