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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pids-max", "-1"], "process limit must be 1-4194304"),
        (["--pids-max", "0"], "process limit must be 1-4194304"),
        (["--memory-max", "-1"], "not a size"),
        (["--memory-max", "0"], "memory limit must be at least"),
        (["--memory-max", "1"], "memory limit must be at least"),
        (["--duration", "inf"], "duration must be 1 s to 7 days"),
        (["--duration", "1e-9"], "duration must be 1 s to 7 days"),
        (["--duration", "0.5s"], "duration must be 1 s to 7 days"),
        (["--grace", "inf"], "grace period must be 0-600 s"),
        (["--sample-interval", "0"], "sample interval must be 0.01-10 s"),
        (["--tmp-size", "10"], "private tmpfs size must be at least 1 MiB"),
        (["--log-max", "1"], "workload log cap must be at least 4 KiB"),
        (["--ops-per-minute", "nan"], "operations per minute must be 0.1-600"),
    ],
)
def test_bad_run_settings_are_rejected_before_anything_is_made(args, message, tmp_path):
    runs = tmp_path / "runs"
    out = sandbox("run", "--runs-dir", str(runs), *args, "--", "true", cwd=tmp_path)
    assert out.returncode == 3, out.stderr
    assert out.stderr.count("\n") == 1 and message in out.stderr, out.stderr
    assert not runs.exists()


def test_bad_runs_dir_is_one_line(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for runs, message in ((afile, "is not a directory"),
                          ("/proc/self/no-such", "cannot make a run directory")):
        out = sandbox("run", "--runs-dir", str(runs), "--duration", "2s", "--", "true")
        assert out.returncode == 3, out.stderr
        assert out.stderr.count("\n") == 1 and message in out.stderr, out.stderr


def test_failed_launch_leaves_no_run_directory(needs_cgroups, runs_dir):
    out = sandbox("run", "--runs-dir", str(runs_dir), "--user", "no-such-user-xyz",
                  "--duration", "2s", "--", "true")
    assert out.returncode == 3 and "unknown user" in out.stderr, out.stderr
    assert list(runs_dir.iterdir()) == []


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


def test_command_runs_where_sandbox_was_started(needs_cgroups, runs_dir, tmp_path):
    """A relative path works as in the user's shell; from a directory inside /tmp (which the
    workload sees as its own) it runs there, read-only; from one its user cannot search
    (mode 700, outside /tmp) it runs in its HOME, with a warning."""
    (runs_dir / "script.sh").write_text("pwd\n")
    out = sandbox("run", "--duration", "3s", "--runs-dir", str(runs_dir / "runs"), "--",
                  "sh", "script.sh", cwd=runs_dir)
    assert out.returncode == 0, out.stderr
    (run_dir,) = (runs_dir / "runs").iterdir()
    assert (run_dir / "workload.log").read_text() == f"{runs_dir}\n"
    out = sandbox("run", "--duration", "3s", "--runs-dir", str(runs_dir / "runs2"), "--",
                  "sh", "-c", "pwd; touch here || echo read-only", cwd=tmp_path)
    (run_dir,) = (runs_dir / "runs2").iterdir()
    assert (run_dir / "workload.log").read_text().startswith(f"{tmp_path}\n")
    assert "read-only" in (run_dir / "workload.log").read_text()
    closed = runs_dir / "closed"
    closed.mkdir(mode=0o700)
    out = sandbox("run", "--duration", "3s", "--runs-dir", str(runs_dir / "runs3"), "--",
                  "pwd", cwd=closed)
    (run_dir,) = (runs_dir / "runs3").iterdir()
    assert (run_dir / "workload.log").read_text() == "/tmp/.home\n"
    assert f"not in {closed}" in out.stderr


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
        ("[scenario.x]\nduration = \"1m\"\noperations_per_minute = 5\nurls = [1, 2]\n",
         "urls must be a list of strings"),
        ("[scenario.x]\nduration = \"1m\"\noperations_per_minute = nan\n", "must be positive"),
        ("[scenario.x]\nduration = \"1m\"\noperations_per_minute = inf\n", "must be positive"),
        ("[scenario.x]\nduration = \"1m\"\noperations_per_minute = 5\ngrace_s = -3\n",
         "grace period must be 0-600 s"),
        ("[scenario.x]\nduration = \"1m\"\noperations_per_minute = 5\nsample_interval = 0\n",
         "sample interval must be 0.01-10 s"),
    ],
)
def test_bad_scenario_file_is_one_line_and_exit_3(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out = sandbox("run", "--scenario", "x", "--scenario-file", str(path))
    assert out.returncode == 3
    assert out.stderr.count("\n") == 1 and message in out.stderr, out.stderr


def test_every_harness_error_derives_from_one_base_with_its_exit_code():
    from sandbox.errors import HarnessError
    from sandbox.host.isolation import IsolationError
    from sandbox.host.slice import SliceError
    from sandbox.report import ReportInputError
    from sandbox.runreader import RunReadError
    from sandbox.tracer import TracerError
    from sandbox.workloads.launcher import LaunchError
    from sandbox.workloads.network import NetworkError

    for error in (IsolationError, SliceError, ReportInputError, RunReadError, TracerError,
                  LaunchError, NetworkError):
        assert issubclass(error, HarnessError) and error.exit_code == 3


def test_version_is_printed():
    out = sandbox("--version")
    assert out.returncode == 0 and out.stdout.strip().startswith("sandbox 0."), out.stderr


def test_report_takes_a_comma_separated_format_list(tmp_path):
    import numpy as np

    from tests.synthetic import series, write_run

    t, y = series(np.random.default_rng(1), 120)
    run_dir = write_run(tmp_path / "run", t, y, cleanup={"cleanup_successful": True})
    out = sandbox("report", str(run_dir), "--format", "json,text")
    assert out.returncode == 0, out.stderr
    assert (run_dir / "report.json").exists() and (run_dir / "report.txt").exists()
    assert not (run_dir / "report.html").exists()


def test_report_goes_to_another_directory_or_stdout(tmp_path):
    import numpy as np

    from tests.synthetic import series, write_run

    t, y = series(np.random.default_rng(1), 120)
    run_dir = write_run(tmp_path / "run", t, y, cleanup={"cleanup_successful": True})
    out = sandbox("report", str(run_dir), "--format", "json", "-o", "-")
    assert out.returncode == 0 and json.loads(out.stdout)["schema_version"] == 6, out.stderr
    out = sandbox("report", str(run_dir), "--format", "markdown", "-o", str(tmp_path / "out"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "out" / "report.md").read_text().startswith("## ")
    assert not (run_dir / "report.md").exists()
    out = sandbox("report", str(run_dir), "-o", "-")
    assert out.returncode == 3 and "exactly one --format" in out.stderr


def test_run_compares_with_a_baseline(needs_cgroups, runs_dir, tmp_path):
    import numpy as np

    from tests.synthetic import series, write_run

    out = sandbox("run", "--baseline", str(tmp_path / "nope"), "--runs-dir", str(runs_dir),
                  "--", "true")
    assert out.returncode == 3 and "not a run directory" in out.stderr
    assert list(runs_dir.iterdir()) == []
    t, y = series(np.random.default_rng(1), 120)
    base = write_run(tmp_path / "base", t, y, cleanup={"cleanup_successful": True})
    out = sandbox("run", "--baseline", str(base), "--duration", "3s", "--runs-dir",
                  str(runs_dir), "--", "sleep", "2")
    assert out.returncode == 0, out.stderr
    assert f"compare BASE {base}" in out.stdout
    assert "growth MB/s" in out.stdout and "CAN'T TELL" in out.stdout  # 3 s tell nothing
