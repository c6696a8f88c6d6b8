"""The unit files in systemd/ verify with systemd-analyze, delegate on the service only, and the
delegated-scope decision of sandbox.host.systemd follows the host's facts."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.host import open_slice
from sandbox.host.systemd import SCOPE_ENV, ensure_delegated_scope, needs_delegated_scope

REPO = Path(__file__).resolve().parent.parent
UNITS = sorted((REPO / "systemd").iterdir())
SYSTEM_UNITS = Path("/usr/lib/systemd/system")
EXEC_START = "/usr/local/bin/sandbox"


def unit_settings(path: Path) -> dict[str, dict[str, str]]:
    """section -> key -> value of a unit file (last assignment wins, as for these keys)."""
    sections: dict[str, dict[str, str]] = {}
    current = sections.setdefault("", {})
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, _, value = line.partition("=")
            current[key.strip()] = value.strip()
    return sections


@pytest.fixture
def analyze_root(tmp_path: Path) -> Path:
    """A root directory for ``systemd-analyze verify --root``: the units installed in
    /etc/systemd/system, the distribution's units, and an executable where ExecStart points
    (this host need not have the harness installed there)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed (apt-get install systemd)")
    if not SYSTEM_UNITS.is_dir():
        pytest.skip(f"no distribution units in {SYSTEM_UNITS}")
    (tmp_path / "usr/lib/systemd").mkdir(parents=True)
    shutil.copytree(SYSTEM_UNITS, tmp_path / "usr/lib/systemd/system", symlinks=True)
    etc = tmp_path / "etc/systemd/system"
    etc.mkdir(parents=True)
    for unit in UNITS:
        shutil.copy(unit, etc)
    stub = tmp_path / EXEC_START.lstrip("/")
    stub.parent.mkdir(parents=True)
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    return tmp_path


def verify(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", "--man=no", "--generators=no",
         *(f"/etc/systemd/system/{u.name}" for u in UNITS)],
        capture_output=True, text=True, timeout=60,
    )


def test_units_are_the_three_expected() -> None:
    assert [u.name for u in UNITS] == [
        "sandbox-endurance.timer", "sandbox-run@.service", "sandbox.slice"]


def test_units_verify_cleanly(analyze_root: Path) -> None:
    result = verify(analyze_root)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # unknown keys are only warnings


def test_verify_catches_a_broken_unit(analyze_root: Path) -> None:
    """Negative control: a misspelt key and a bad Delegate value do not pass unnoticed."""
    service = analyze_root / "etc/systemd/system/sandbox-run@.service"
    service.write_text(service.read_text().replace("Delegate=yes", "Delegate=bogus")
                       .replace("Slice=", "Slize="))
    result = verify(analyze_root)
    assert "Slize" in result.stderr and "bogus" in result.stderr


def test_verify_catches_a_missing_executable(analyze_root: Path) -> None:
    (analyze_root / EXEC_START.lstrip("/")).unlink()
    result = verify(analyze_root)
    assert result.returncode != 0 and "not executable" in result.stderr


def test_delegation_is_on_the_service_never_on_the_slice() -> None:
    service = unit_settings(REPO / "systemd/sandbox-run@.service")["Service"]
    assert service["Delegate"] == "yes"
    assert service["Slice"] == "sandbox.slice"
    assert service["ExecStart"] == f"{EXEC_START} run --scenario %i"
    assert "Delegate" not in unit_settings(REPO / "systemd/sandbox.slice").get("Slice", {})
    timer = unit_settings(REPO / "systemd/sandbox-endurance.timer")["Timer"]
    assert timer["Unit"] == "sandbox-run@endurance.service"


def test_scope_wanted_only_on_a_systemd_host_outside_delegation(facts, monkeypatch) -> None:
    monkeypatch.delenv(SCOPE_ENV, raising=False)
    systemd_host = dataclasses.replace(facts, systemd_pid1=True, in_delegated_cgroup=False,
                                       is_root=True)
    if facts.cgroup.mode == "none":
        pytest.skip(f"no usable cgroup hierarchy: {facts.cgroup.reason}")
    assert needs_delegated_scope(systemd_host)
    assert not needs_delegated_scope(dataclasses.replace(systemd_host, systemd_pid1=False))
    # delegated, but sharing the cgroup (here: the root) with other processes
    assert needs_delegated_scope(dataclasses.replace(systemd_host, in_delegated_cgroup=True))
    monkeypatch.setenv(SCOPE_ENV, "1")  # already re-executed once: never loop
    assert not needs_delegated_scope(systemd_host)


ALONE_PROBE = """
import dataclasses
from sandbox.host import discover
from sandbox.host.systemd import needs_delegated_scope
facts = dataclasses.replace(discover(), systemd_pid1=True, in_delegated_cgroup=True)
print(needs_delegated_scope(facts))
"""


@pytest.mark.parametrize(("command", "wanted"), [
    ([sys.executable, "-c", ALONE_PROBE], "False"),
    (["sh", "-c", 'sleep 30 >/dev/null & "$0" -c "$1"', sys.executable, ALONE_PROBE],
     "True"),
])
def test_no_scope_only_when_alone_in_a_delegated_cgroup(needs_cgroups, monkeypatch, command,
                                                        wanted) -> None:
    """A harness alone in a delegated cgroup stays; one beside other processes (e.g. started
    by a test inside someone's delegated scope) asks for a scope of its own."""
    if "unified" not in needs_cgroups.cgroup.parents:
        pytest.skip("needs the unified hierarchy")
    monkeypatch.delenv(SCOPE_ENV, raising=False)
    with open_slice("t-alone", needs_cgroups.cgroup) as slice_:
        out, _ = slice_.spawn(command, stdout=subprocess.PIPE).communicate(timeout=60)
    assert out.decode().strip() == wanted


def test_ensure_delegated_scope_returns_on_this_host(facts) -> None:
    """Without systemd as PID 1 (this host) the harness stays where it is; the re-exec itself
    is exercised in the pure v2 guest (tests/guest/test_delegation.py)."""
    if facts.systemd_pid1 and not facts.in_delegated_cgroup:
        pytest.skip("systemd host outside a delegated cgroup: this call would re-execute")
    assert ensure_delegated_scope(facts, ["/bin/false"]) is None


def test_the_service_prunes_old_runs_after_each_run(tmp_path: Path) -> None:
    """ExecStopPost's retention command works as written, in the service's working directory
    (runs/ under it), and keeps the newest runs."""
    import json
    import os
    import time

    service = unit_settings(REPO / "systemd/sandbox-run@.service")["Service"]
    argv = service["ExecStopPost"].removeprefix("-").split()  # "-": a failed prune is no failure
    assert argv[:3] == [EXEC_START, "runs", "prune"]
    now = time.time()
    for i in range(35):
        run = tmp_path / "runs" / f"run-{i:02d}"
        run.mkdir(parents=True)
        (run / "run.json").write_text(json.dumps({"started": now - (34 - i) * 86400}))
    done = subprocess.run([str(Path(sys.executable).parent / "sandbox"), *argv[1:]],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "SANDBOX_STATE_DIR": str(tmp_path / "state")})
    assert done.returncode == 0, done.stderr
    left = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert left == [f"run-{i:02d}" for i in range(5, 35)]  # 30 kept; 0-4 are 30-34 days old
