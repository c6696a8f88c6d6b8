"""The command line: bad input gives one clear line and exit 3; a command run leaves a run
directory and nothing else behind."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

SANDBOX = [sys.executable, "-m", "sandbox"]


def sandbox(*args: str, user: str | None = None, cwd=None) -> subprocess.CompletedProcess:
    prefix = []
    if user:
        if not shutil.which("setpriv"):
            pytest.skip("setpriv not installed")
        prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    return subprocess.run(prefix + SANDBOX + list(args), capture_output=True, text=True,
                          cwd=cwd, check=False, timeout=120)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--no-such-option"], "No such option: --no-such-option"),
        (["run", "--scenario", "nope"], "unknown scenario 'nope'"),
        (["run", "--inject", "bogus"], "unknown injection"),
        (["run", "--scenario", "smoke", "--", "true"], "not both"),
        (["run", "--duration", "3x", "--", "true"], "not a duration"),
        (["run", "--cgroup-mode", "v3", "--", "true"], "unknown cgroup mode"),
        (["frobnicate"], "No such command"),
    ],
)
def test_bad_input_is_one_line_and_exit_3(args, message, tmp_path):
    out = sandbox(*args, cwd=tmp_path)
    assert out.returncode == 3
    assert out.stderr.count("\n") == 1, out.stderr
    assert message in out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def test_non_root_gets_one_line_and_exit_3(tmp_path):
    tmp_path.chmod(0o777)
    out = sandbox("run", "--", "true", user="nobody", cwd=tmp_path)
    assert out.returncode == 3
    assert out.stderr.strip() == (
        "sandbox: error: must run as root (cgroups, eBPF and network namespaces need it)"
    )


def test_command_run_writes_run_json(needs_cgroups, runs_dir):
    out = sandbox("run", "--duration", "5s", "--runs-dir", str(runs_dir), "--",
                  "sh", "-c", "echo hello; sleep 0.2", cwd=runs_dir)
    assert out.returncode == 0, out.stderr
    (run_dir,) = runs_dir.iterdir()
    assert run_dir.name.endswith("-sh")
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["config"]["command"] == ["sh", "-c", "echo hello; sleep 0.2"]
    assert meta["host"]["cgroup"]["mode"] == needs_cgroups.cgroup.mode
    assert meta["workload_returncode"] == 0
    assert (run_dir / "workload.log").read_text() == "hello\n"


SCENARIOS = """
[scenario.nightly]
description = "30 minutes, fresh context per screenshot"
duration = "30m"
operations_per_minute = 20
context_policy = "fresh"
"""


def test_custom_scenarios_are_listed(tmp_path):
    path = tmp_path / "scenarios.toml"
    path.write_text(SCENARIOS)
    out = sandbox("scenarios", "--scenario-file", str(path))
    assert out.returncode == 0, out.stderr
    for name in ("smoke", "quick", "medium", "endurance", "nightly"):
        assert name in out.stdout
    assert "1800 s" in out.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[scenario.x]\nduration = \"1m\"\n", "missing 'operations_per_minute'"),
        ("[scenario.x]\nduration = \"1m\"\noperations_per_minute = 5\ncolour = 1\n",
         "unknown setting 'colour'"),
        ("[scenario.x\n", "is not valid TOML"),
        ("[scenario.x]\nduration = \"soon\"\noperations_per_minute = 5\n", "not a duration"),
    ],
)
def test_bad_scenario_file_is_one_line_and_exit_3(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out = sandbox("run", "--scenario", "x", "--scenario-file", str(path))
    assert out.returncode == 3
    assert out.stderr.count("\n") == 1 and message in out.stderr, out.stderr
