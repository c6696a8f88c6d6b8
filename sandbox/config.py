"""RunConfig: everything that defines one run, stored in run.json; built from a scenario plus
command-line overrides."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from sandbox.errors import HarnessError
from sandbox.limits import UNLIMITED
from sandbox.scenarios import Scenario

INJECTIONS = ("pages", "heap", "orphan", "escape", "tmpfile")
CONTEXT_POLICIES = ("reuse", "fresh")
NETWORKS = ("isolated", "host")
TRACERS = ("auto", "ebpf", "proc-connector", "scan")
MAX_DURATION_S = 7 * 24 * 3600.0
MIN_MEMORY_MAX = 16 * 2**20  # below this not even a shell starts in the slice
MiB = 2**20


@dataclass
class RunConfig:
    """One run. ``command`` set means the generic command workload, ``test`` a pytest test's
    body (the pytest plugin gives the runner the body itself), else screenshots."""

    scenario: str | None = None
    command: list[str] = field(default_factory=list)
    test: str | None = None  # a pytest node id: the body runs as the harness's user
    duration_s: float = 20.0
    operations_per_minute: float = 30.0
    urls: list[str] = field(default_factory=list)
    inject: list[str] = field(default_factory=list)
    inject_rate_mb: float | None = None
    context_policy: str = "reuse"
    network: str | None = None
    user: str | None = None  # None: a user of the run's own (a free UID)
    sample_interval: float = 0.5
    alert_threshold_mb: float = 1024.0
    grace_s: float = 5.0
    keep_escapes: bool = False
    allow_userns: bool = False  # the workload may make user namespaces (seccomp refuses them)
    tracer: str = "auto"
    cgroup_mode: str | None = None
    memory_max: int | str | None = None  # bytes or "max"; None: the default (sandbox.limits)
    pids_max: int | str | None = None  # tasks or "max"; None: the default (sandbox.limits)
    env: list[str] = field(default_factory=list)  # NAME (from the harness's) or NAME=VALUE
    inherit_env: bool = False  # the workload gets the harness's whole environment
    temp_dir_prefix: str = "playwright"
    runs_dir: Path = Path("runs")
    stop_timeout_s: float = 10.0
    tmp_size: int = 1 << 30  # the private /tmp + /dev/shm tmpfs, bytes
    log_max: int = 16 * MiB  # workload.log before it rotates (two files at most)
    events_max: int = 16 * MiB  # events.jsonl's cap; later events are counted, not written
    budget: str = "0.1MB/s"  # memory growth allowed: MB/s, MB/h or MB/op (analysis.budget)
    fail_on_inconclusive: bool = False
    js_heap: float = 0.0  # seconds between JS-heap measurements of long-lived pages; 0: off
    #: screenshots: a settle point every N operations; 0 (the default): none; on the corpus
    #: the settle samples wander as the floors do and decided no sooner (docs/settle-points.md)
    settle_every: int = 0
    until_decided: bool = False  # stop once the memory verdict is decided; duration_s: the cap
    role_interval: float = 10.0  # seconds between per-role sweeps (sampler.roles)
    browser: str | None = None  # the Chromium to drive; None: host.browsers finds one
    metrics_textfile: Path | None = None  # node_exporter textfile, written atomically
    pushgateway: str | None = None  # Prometheus Pushgateway URL to push the results to

    @property
    def workload(self) -> str:
        return "test" if self.test else "command" if self.command else "screenshot"

    @property
    def label(self) -> str:
        if self.scenario:
            return self.scenario
        if self.test:  # short: the run directory holds the body's TMPDIR (Chromium's sockets)
            return "pytest"
        return Path(self.command[0]).name if self.command else "screenshot"

    def validate(self) -> RunConfig:
        """Every setting checked before anything is made: raises HarnessError (exit 3) with
        the first problem in one line."""
        def number(value: object, low: float, high: float) -> bool:
            return (isinstance(value, int | float) and not isinstance(value, bool)
                    and math.isfinite(value) and low <= value <= high)

        checks = [
            (number(self.duration_s, 1, MAX_DURATION_S), "duration must be 1 s to 7 days"),
            (number(self.operations_per_minute, 0.1, 600),
             "operations per minute must be 0.1-600"),
            (number(self.sample_interval, 0.01, 10), "sample interval must be 0.01-10 s"),
            (number(self.role_interval, 1, 600), "role interval must be 1-600 s"),
            (self.js_heap == 0 or number(self.js_heap, 1, 3600),
             "--js-heap interval must be 1-3600 s"),
            (not (self.command and self.js_heap),
             "--js-heap applies to the screenshot workload; a command's pages are its own"),
            (isinstance(self.settle_every, int) and number(self.settle_every, 0, 10_000),
             "settle every must be 0-10000 operations"),
            (number(self.alert_threshold_mb, 1, 2**30), "alert threshold must be >= 1 MB"),
            (number(self.grace_s, 0, 600), "grace period must be 0-600 s"),
            (self.inject_rate_mb is None or number(self.inject_rate_mb, 0.001, 1024),
             "inject rate must be 0.001-1024 MB per operation"),
            (self.memory_max in (None, UNLIMITED) or number(self.memory_max, MIN_MEMORY_MAX,
                                                            2**62),
             f"memory limit must be at least {MIN_MEMORY_MAX} bytes (16 MiB), or max"),
            (self.pids_max in (None, UNLIMITED) or number(self.pids_max, 1, 2**22),
             "process limit must be 1-4194304, or max"),
            (env_problem(self.env) is None, env_problem(self.env) or ""),
            (number(self.tmp_size, MiB, 2**50), "private tmpfs size must be at least 1 MiB"),
            (number(self.log_max, 4096, 2**40), "workload log cap must be at least 4 KiB"),
            (number(self.events_max, 4096, 2**40), "events cap must be at least 4 KiB"),
            (all(isinstance(u, str) and u for u in self.urls), "every URL must be a string"),
            (all(isinstance(i, str) for i in self.inject)
             and not set(self.inject) - set(INJECTIONS),
             f"unknown injection (known: {', '.join(INJECTIONS)})"),
            (self.context_policy in CONTEXT_POLICIES,
             f"context policy must be one of {', '.join(CONTEXT_POLICIES)}"),
            (self.network in (None, *NETWORKS), f"network must be one of {', '.join(NETWORKS)}"),
            (self.tracer in TRACERS, f"tracer must be one of {', '.join(TRACERS)}"),
            (self.pushgateway is None or (isinstance(self.pushgateway, str) and
                                          self.pushgateway.startswith(("http://", "https://"))),
             "the Pushgateway must be an http:// or https:// URL"),
            (self.metrics_textfile is None or Path(self.metrics_textfile).parent.is_dir(),
             f"no directory for the metrics textfile {self.metrics_textfile}"),
            (not (self.command and self.browser),
             "--browser applies to the screenshot workload; a command starts its own"),
            (not (self.command and (self.inject or self.urls)),
             "--inject and --url apply to the screenshot workload, not to a command"),
            (not (self.test and self.until_decided),
             "--until-decided applies to a run, not to a test's body"),
            (not (self.test and (self.command or self.inject or self.urls or self.js_heap
                                 or self.browser or self.user not in (None, "root"))),
             "a test's body is its own workload, run as the harness's user"),
        ]
        for ok, message in checks:
            if not ok:
                raise HarnessError(message)
        from sandbox.analysis.budget import parse_budget  # model -> config: no analysis on import

        try:
            budget = parse_budget(self.budget)
        except (TypeError, ValueError) as exc:
            raise HarnessError(str(exc)) from exc
        if self.until_decided and self.workload != "screenshot" and budget.per == "op":
            raise HarnessError(f"--until-decided needs a budget per time (MB/s, MB/h) for a "
                               f"command, not {budget}")
        runs = Path(self.runs_dir)
        if runs.exists() and not runs.is_dir():
            raise HarnessError(f"runs directory {runs} is not a directory")
        return self


#: run.json's config as pydantic writes it and reads it back (undeclared keys are ignored).
_RECORDED = TypeAdapter(RunConfig)


def env_problem(items: object) -> str | None:
    """Why ``items`` (``--env`` values) cannot be passed to the workload, if so."""
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        return "env must be a list of NAME or NAME=VALUE strings"
    for item in items:
        name, has_value, value = item.partition("=")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            return f"--env {name!r}: not NAME or NAME=VALUE (a value is not shown)"
        if "\0" in value:
            return f"--env {name}: the value holds a NUL byte"
        if not has_value and name not in os.environ:
            return f"--env {name}: not set in the harness's environment"
    return None


def env_values(items: list[str]) -> dict[str, str]:
    """The variables ``--env`` passes: NAME=VALUE as given, NAME from the harness's
    environment (the last of a name wins)."""
    values = {}
    for item in items:
        name, has_value, value = item.partition("=")
        values[name] = value if has_value else os.environ[name]
    return values


def recorded(config: RunConfig) -> dict[str, Any]:
    """The config as run.json keeps it (JSON types): ``--env`` values left out (names only)."""
    doc: dict[str, Any] = _RECORDED.dump_python(config, mode="json")
    doc["env"] = sorted({item.partition("=")[0] for item in config.env})
    return doc


def from_recorded(doc: dict[str, Any]) -> RunConfig:
    """run.json's config read back (any format): a key of a later version is left out, a
    missing one (an earlier version) or a mistyped one (a hand-edited file) takes its
    default. Not validated: a run already made is read as it was."""
    try:
        return _RECORDED.validate_python(doc)
    except ValidationError as exc:
        bad = {error["loc"][0] for error in exc.errors() if error["loc"]}
        return _RECORDED.validate_python({k: v for k, v in doc.items() if k not in bad})


def from_scenario(scenario: Scenario | None, **overrides: Any) -> RunConfig:
    """The scenario's shape and settings (or the defaults), then every override not None."""
    config = RunConfig()
    if scenario is not None:
        config = replace(
            config, scenario=scenario.name, duration_s=scenario.duration_s,
            operations_per_minute=scenario.operations_per_minute, **scenario.settings,
        )
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
