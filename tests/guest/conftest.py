"""Tests of the pure cgroup v2 + systemd path. They run inside the qemu guest
(scripts/v2-guest/run-tests.sh) or on any host with pure cgroup v2 and systemd as PID 1,
with pytest started in a delegated scope:
``systemd-run --scope -p Delegate=yes -- python -m pytest -m guest tests/guest``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("probe.py")


@pytest.fixture(autouse=True)
def pure_v2_systemd_host(facts):
    if facts.cgroup.mode != "v2" or not facts.systemd_pid1:
        pytest.skip(f"needs pure cgroup v2 and systemd as PID 1 (here: {facts.cgroup.mode}, "
                    f"systemd PID 1: {facts.systemd_pid1}); run scripts/v2-guest/run-tests.sh")
    return facts


@pytest.fixture
def delegated(facts):
    """The test process itself creates slices: it must sit in a delegated cgroup."""
    if not facts.in_delegated_cgroup:
        pytest.skip("pytest is not in a delegated cgroup: start it with "
                    "systemd-run --scope -p Delegate=yes")
    return facts


def probe(*args: str, systemd_run: list[str], timeout: float = 120) -> list[str]:
    """Run tests/guest/probe.py under ``systemd-run`` (a scope or a transient service) and
    return its output lines; fails the test on a non-zero exit."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        ["systemd-run", "--quiet", "--collect", *systemd_run,
         "--", sys.executable, str(PROBE), *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )
    assert result.returncode == 0, f"probe {args} failed: {result.stdout}{result.stderr}"
    return result.stdout.splitlines()
