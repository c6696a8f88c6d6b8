"""The workload's environment: clean, as systemd services and sudo's env_reset make it, so that
what is set for the harness (in CI: tokens, credentials) does not reach the workload.

A workload gets the locale, terminal, time zone and search path of the harness, the variables
its kind needs, its USER/LOGNAME, and what the user passes (``--env``); the launcher then
points HOME and TMPDIR at the run's own. ``--inherit-env`` hands over the harness's whole
environment instead (the old behaviour). The screenshot workload's Playwright driver also
gets :data:`DRIVER_NODE_OPTIONS`."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from sandbox.config import RunConfig, env_values
from sandbox.host.isolation import RunUser

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
#: Every workload: search path, locale, terminal, time zone.
BASE = ("PATH", "LANG", "LANGUAGE", "TERM", "TZ")
#: The screenshot workload (the harness's own Python module driving Playwright's Chromium):
#: where Playwright's browsers and driver are, the Python path the harness was started with,
#: a display and fonts when the host has them.
SCREENSHOT = ("PLAYWRIGHT_BROWSERS_PATH", "PLAYWRIGHT_DRIVER_PATH", "SANDBOX_CHROMIUM",
              "PYTHONPATH", "DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY", "FONTCONFIG_FILE",
              "FONTCONFIG_PATH")
KIND_NEEDS = {"command": (), "screenshot": SCREENSHOT}
#: The Playwright driver (Node) with V8's young generation kept at 1 MB per semi-space: by
#: default it grows to 16 MB in a run's first 30 s and is given back, a climb and drop of the
#: run's floor (+10 MB, then -18 MB) that the verdict's start-up cut must wait out
#: (docs/settle-points.md, bench/driver_startup.py).
DRIVER_NODE_OPTIONS = "--max-semi-space-size=1"
_SEMI_SPACE = re.compile(r"--max[-_]semi[-_]space[-_]size[= ](\d+)\b")


def workload_environment(kind: str, account: RunUser | None, *, passed: Mapping[str, str],
                         inherit: bool, source: Mapping[str, str] | None = None
                         ) -> dict[str, str]:
    """The environment a ``kind`` workload starts with (before its HOME and TMPDIR): from
    ``source`` (the harness's environment) only the BASE, LC_* and the kind's variables, or
    all of it with ``inherit``; USER/LOGNAME of ``account`` when clean; then ``passed``."""
    source = os.environ if source is None else source
    if inherit:
        env = dict(source)
    else:
        wanted = (*BASE, *KIND_NEEDS[kind])
        env = {name: value for name, value in source.items()
               if name in wanted or name.startswith("LC_")}
        env.setdefault("PATH", SYSTEM_PATH)
        if account is not None:
            env["USER"] = env["LOGNAME"] = account.name
    env.update(passed)
    if kind == "screenshot":
        env["NODE_OPTIONS"] = " ".join(filter(None, (env.get("NODE_OPTIONS"),
                                                     DRIVER_NODE_OPTIONS)))
    return env


def node_semi_space_mb(env: Mapping[str, str]) -> int | None:
    """The young generation's semi-space cap (MB) that ``env``'s NODE_OPTIONS gives Node
    (the last one given), None when it sets none."""
    sizes = _SEMI_SPACE.findall(env.get("NODE_OPTIONS", ""))
    return int(sizes[-1]) if sizes else None


def driver_semi_space_mb(config: RunConfig) -> int | None:
    """The young-generation cap the screenshot workload's driver will start with under
    ``config`` (None for a command: its Node, if any, is its own)."""
    if config.workload != "screenshot":
        return None
    return node_semi_space_mb(workload_environment(
        "screenshot", None, passed=env_values(config.env), inherit=config.inherit_env))
