"""The workload's environment: clean, as systemd services and sudo's env_reset make it, so that
what is set for the harness (in CI: tokens, credentials) does not reach the workload.

A workload gets the locale, terminal, time zone and search path of the harness, the variables
its kind needs, its USER/LOGNAME, and what the user passes (``--env``); the launcher then
points HOME and TMPDIR at the run's own. ``--inherit-env`` hands over the harness's whole
environment instead (the old behaviour)."""

from __future__ import annotations

import os
from collections.abc import Mapping

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
    return env
