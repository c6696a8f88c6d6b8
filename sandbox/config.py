"""RunConfig: everything that defines one run, stored in run.json; built from a scenario plus
command-line overrides."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from sandbox.errors import HarnessError
from sandbox.scenarios import Scenario

INJECTIONS = ("pages", "heap", "orphan", "escape", "tmpfile")
CONTEXT_POLICIES = ("reuse", "fresh")
NETWORKS = ("isolated", "host")
TRACERS = ("auto", "ebpf", "proc-connector", "scan")


@dataclass
class RunConfig:
    """One run. ``command`` set means the generic command workload, else screenshots."""

    scenario: str | None = None
    command: list[str] = field(default_factory=list)
    duration_s: float = 20.0
    operations_per_minute: float = 30.0
    urls: list[str] = field(default_factory=list)
    inject: list[str] = field(default_factory=list)
    inject_rate_mb: float | None = None
    context_policy: str = "reuse"
    network: str | None = None
    user: str | None = None
    sample_interval: float = 0.5
    alert_threshold_mb: float = 1024.0
    grace_s: float = 5.0
    keep_escapes: bool = False
    tracer: str = "auto"
    cgroup_mode: str | None = None
    memory_max: int | None = None
    pids_max: int | None = None
    temp_dir_prefix: str = "playwright"
    runs_dir: Path = Path("runs")
    stop_timeout_s: float = 10.0

    @property
    def workload(self) -> str:
        return "command" if self.command else "screenshot"

    @property
    def label(self) -> str:
        if self.scenario:
            return self.scenario
        return Path(self.command[0]).name if self.command else "screenshot"

    def validate(self) -> RunConfig:
        checks = [
            (self.duration_s > 0, "duration must be positive"),
            (self.operations_per_minute > 0, "operations per minute must be positive"),
            (0.01 <= self.sample_interval <= 10, "sample interval must be 0.01-10 s"),
            (not set(self.inject) - set(INJECTIONS),
             f"unknown injection (known: {', '.join(INJECTIONS)})"),
            (self.context_policy in CONTEXT_POLICIES,
             f"context policy must be one of {', '.join(CONTEXT_POLICIES)}"),
            (self.network in (None, *NETWORKS), f"network must be one of {', '.join(NETWORKS)}"),
            (self.tracer in TRACERS, f"tracer must be one of {', '.join(TRACERS)}"),
            (not (self.command and (self.inject or self.urls)),
             "--inject and --url apply to the screenshot workload, not to a command"),
            (self.grace_s >= 0, "grace period must not be negative"),
        ]
        for ok, message in checks:
            if not ok:
                raise HarnessError(message)
        return self


def from_scenario(scenario: Scenario | None, **overrides: object) -> RunConfig:
    """The scenario's shape and settings (or the defaults), then every override not None."""
    config = RunConfig()
    if scenario is not None:
        config = replace(
            config, scenario=scenario.name, duration_s=scenario.duration_s,
            operations_per_minute=scenario.operations_per_minute, **scenario.settings,
        )
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
