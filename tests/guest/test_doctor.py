"""``sandbox doctor`` on a pure cgroup v2 host with systemd as PID 1."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.guest


def doctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sandbox", "doctor", *args],
                          capture_output=True, text=True, timeout=60)


def test_doctor_reports_v2_with_memory_and_pids() -> None:
    result = doctor("--json")
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    assert facts["cgroup"]["mode"] == "v2"
    assert {"memory", "pids"} <= set(facts["cgroup"]["v2_controllers"])
    assert list(facts["cgroup"]["parents"]) == ["unified"]
    assert facts["cgroup"]["v1_mounts"] == {}
    assert facts["systemd_pid1"] is True


def test_doctor_table_names_the_mode() -> None:
    result = doctor()
    assert result.returncode == 0, result.stderr
    mode_row = next(line for line in result.stdout.splitlines() if "cgroup mode" in line)
    assert "v2" in mode_row
