"""Scenarios: named run shapes. The seed's quick, medium and endurance, a 20 s smoke run, and
custom ones from a TOML file::

    [scenario.nightly]
    description = "30 minutes, fresh context per screenshot"
    duration = "30m"
    operations_per_minute = 20
    context_policy = "fresh"      # optional: any RunConfig workload setting below
    sample_interval = "500ms"     # durations as on the command line: a bare number is seconds
    alert_threshold_mb = "2G"     # sizes as on the command line: a bare number is MB here
    js_heap = true                # as --js-heap (every 10 s); "30s": that often; false: off
    until_decided = true          # as --until-decided: duration is then the cap
    pids_max = "max"              # limits: a number (memory_max also "2G") or "max"
    env = { API_URL = "http://localhost:8080", CI_TOKEN = true }  # true: the harness's value
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.durations import parse_duration, parse_megabytes, parse_size
from sandbox.errors import HarnessError

#: --js-heap (``js_heap = true``): seconds between JS-heap measurements.
JS_HEAP_INTERVAL_S = 10.0
#: --until-decided's cap when neither a duration nor a scenario gives one.
UNTIL_DECIDED_CAP_S = 20 * 60.0

#: Settings with a unit, as the command line takes them: a duration (a bare number is
#: seconds), MB (a bare number is MB) or bytes (a bare number is bytes).
DURATION, MEGABYTES, BYTES = "duration", "megabytes", "bytes"
_UNITS: dict[str, tuple[Callable[[str | int | float], float], str]] = {
    DURATION: (parse_duration, 'a duration such as "30s"'),
    MEGABYTES: (parse_megabytes, 'a size such as "512M" (a bare number is MB)'),
    BYTES: (parse_size, 'a size such as "1G" (a bare number is bytes)'),
}
#: Workload settings a scenario file may set besides duration and rate.
SCENARIO_SETTINGS: dict[str, Any] = {
    "context_policy": str, "urls": list, "inject": list, "inject_rate_mb": MEGABYTES,
    "network": str, "sample_interval": DURATION, "alert_threshold_mb": MEGABYTES,
    "grace_s": DURATION, "budget": str, "fail_on_inconclusive": bool, "metrics_textfile": str,
    "pushgateway": str, "browser": str, "role_interval": DURATION, "inherit_env": bool,
    "tmp_size": BYTES, "settle_every": int, "until_decided": bool,
}
#: Settings with values of their own kind: the slice's limits, the workload's variables, the
#: JS-heap switch (true/false as --js-heap, or its interval).
SPECIAL_SETTINGS = ("memory_max", "pids_max", "env", "js_heap")


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    duration_s: float
    operations_per_minute: float
    settings: dict[str, Any] = field(default_factory=dict)


BUILT_IN = {
    s.name: s
    for s in (
        Scenario("smoke", "Smoke test: a first look in 20 seconds", 20, 30),
        Scenario("quick", "Quick Stability Test", 120, 30),
        Scenario("medium", "Medium Load Test", 300, 20),
        Scenario("endurance", "Extended Endurance Test", 600, 15),
        Scenario("ci", "CI: stops once the memory verdict is decided, at most 10 minutes",
                 600, 24, {"until_decided": True}),
    )
}


def _parse(name: str, table: dict[str, Any], source: Path) -> Scenario:
    where = f"{source}: scenario {name!r}"
    if not isinstance(table, dict):
        raise HarnessError(f"{where} must be a table ([scenario.{name}])")
    known = {"description", "duration", "operations_per_minute", *SCENARIO_SETTINGS,
             *SPECIAL_SETTINGS}
    if unknown := sorted(set(table) - known):
        raise HarnessError(f"{where}: unknown setting {unknown[0]!r} "
                           f"(known: {', '.join(sorted(known))})")
    for key, kinds, what in (("duration", (str, int, float), "a duration such as \"30m\""),
                             ("operations_per_minute", (int, float), "a number"),
                             ("description", (str,), "a string")):
        value = table.get(key)
        if key in table and (not isinstance(value, kinds) or isinstance(value, bool)):
            raise HarnessError(f"{where}: {key} must be {what}, not {type(value).__name__}")
    try:
        duration = parse_duration(str(table["duration"]))
        rate = float(table["operations_per_minute"])
    except KeyError as exc:
        raise HarnessError(f"{where}: missing {exc.args[0]!r}") from exc
    except ValueError as exc:
        raise HarnessError(f"{where}: {exc}") from exc
    if not (math.isfinite(duration) and math.isfinite(rate)) or duration <= 0 or rate <= 0:
        raise HarnessError(f"{where}: duration and operations_per_minute must be positive")
    settings = {}
    for key, kind in SCENARIO_SETTINGS.items():
        if key in table:
            value = table[key]
            if kind in _UNITS:
                settings[key] = _with_unit(key, value, kind, where)
                continue
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                raise HarnessError(f"{where}: {key} must be a {kind.__name__}")
            if kind is list and not all(isinstance(item, str) for item in value):
                raise HarnessError(f"{where}: {key} must be a list of strings")
            settings[key] = value
    for key in SPECIAL_SETTINGS:
        if key in table:
            settings[key] = _special(key, table[key], where)
    return Scenario(name, str(table.get("description", name)), duration, rate, settings)


def _with_unit(key: str, value: Any, kind: str, where: str) -> float:
    """A duration or size setting (a number in its bare unit, or a string with a unit)."""
    parse, what = _UNITS[kind]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise HarnessError(f"{where}: {key} must be {what}")
    try:
        return parse(value)
    except ValueError as exc:
        raise HarnessError(f"{where}: {key}: {exc}") from exc


def _special(key: str, value: Any, where: str) -> Any:
    """A limit as RunConfig takes it (bytes or tasks, or "max"); ``env`` as ``--env`` items
    (a string value is set, ``true`` takes the harness's); ``js_heap`` as its interval
    (true: --js-heap's, false: off)."""
    if key == "js_heap":
        if isinstance(value, bool):
            return JS_HEAP_INTERVAL_S if value else 0.0
        return _with_unit(key, value, DURATION, where)
    if key == "env":
        if not isinstance(value, dict) or not all(
                isinstance(v, str) or v is True for v in value.values()):
            raise HarnessError(f"{where}: env must be a table of NAME = \"VALUE\" or true")
        return [name if v is True else f"{name}={v}" for name, v in value.items()]
    if value == "max" or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if key == "memory_max" and isinstance(value, str):
        try:
            return parse_size(value)
        except ValueError as exc:
            raise HarnessError(f"{where}: memory_max: {exc}") from exc
    raise HarnessError(f"{where}: {key} must be a number or \"max\"")


def load_file(path: Path) -> dict[str, Scenario]:
    """Custom scenarios of a TOML file (one clear error for any problem in it)."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise HarnessError(f"cannot read scenario file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise HarnessError(f"scenario file {path} is not valid TOML: {exc}") from exc
    tables = data.get("scenario")
    if not isinstance(tables, dict) or not tables:
        raise HarnessError(f"scenario file {path} has no [scenario.NAME] tables")
    return {name: _parse(name, table, path) for name, table in tables.items()}


def available(scenario_file: Path | None = None) -> dict[str, Scenario]:
    scenarios = dict(BUILT_IN)
    if scenario_file is not None:
        scenarios.update(load_file(scenario_file))
    return scenarios


def get(name: str, scenario_file: Path | None = None) -> Scenario:
    scenarios = available(scenario_file)
    if name not in scenarios:
        raise HarnessError(f"unknown scenario {name!r} (known: {', '.join(scenarios)})")
    return scenarios[name]
