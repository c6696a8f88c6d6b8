"""The unit files of systemd/ under a real systemd: they verify against the running manager, and
sandbox-run@.service hands the harness a delegated cgroup in sandbox.slice where it makes its
run's slice (ExecStart replaced by a drop-in that runs the probe instead of a whole run)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.guest.conftest import PROBE, REPO

pytestmark = pytest.mark.guest
RUNTIME_UNITS = Path("/run/systemd/system")
INSTANCE = "sandbox-run@probe.service"
MB = 1 << 20


def systemctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=120)


def test_units_verify_under_systemd() -> None:
    if not Path("/usr/local/bin/sandbox").exists():
        pytest.skip("the harness is not installed at /usr/local/bin/sandbox (ExecStart)")
    units = sorted((REPO / "systemd").iterdir())
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *map(str, units)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


@pytest.fixture
def installed_units(tmp_path: Path):
    """systemd/ installed as runtime units, ExecStart of the probe instance replaced."""
    installed = [RUNTIME_UNITS / u.name for u in (REPO / "systemd").iterdir()]
    for unit in (REPO / "systemd").iterdir():
        shutil.copy(unit, RUNTIME_UNITS)
    dropin = RUNTIME_UNITS / f"{INSTANCE}.d"
    dropin.mkdir()
    out = tmp_path / "probe.json"
    (dropin / "probe.conf").write_text(
        "[Service]\nExecStart=\nExecStopPost=\n"  # the probe makes no runs to prune
        f"ExecStart={sys.executable} {PROBE} slice\n"
        f"Environment=PYTHONPATH={REPO}\nStandardOutput=file:{out}\n"
    )
    systemctl("daemon-reload")
    yield out
    systemctl("stop", INSTANCE)
    systemctl("reset-failed", INSTANCE)
    shutil.rmtree(dropin)
    for unit in installed:
        unit.unlink()
    systemctl("daemon-reload")


def test_run_service_is_delegated_in_sandbox_slice(installed_units: Path) -> None:
    started = systemctl("start", "--wait", INSTANCE)
    assert started.returncode == 0, started.stderr
    state = json.loads(installed_units.read_text())
    service = Path(state["cgroup"])
    assert service.name == INSTANCE and service.parent.name == "sandbox.slice"
    assert state["delegated"] is True
    assert Path(state["harness_leaf"]).parent == service
    assert state["memory_current"] >= 32 * MB and state["pids_current"] == 1
