"""Hostile input the harness must survive without harm (issue 23, items 6 and 8): one run's
workload reading another run's records, an events flood, a full disk, a scenario file with
wrong types, a command that cannot run. Each with its clean twin."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox import rundir
from sandbox.cli import main
from sandbox.errors import HarnessError
from sandbox.scenarios import load_file
from sandbox.workloads.preflight import Credentials, PreflightError, resolve
from tests.cli_helpers import sandbox

NOBODY = 65534


def run_sh(runs: Path, script: str, *opts: str, duration: str = "4s",
           umask: int = 0o022) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sandbox", "run", "--duration", duration, "--no-progress", "-q",
         "--grace", "1s", "--runs-dir", str(runs), *opts, "--", "sh", "-c", script],
        capture_output=True, text=True, timeout=240, umask=umask, check=False)


@pytest.fixture
def outside():
    """A root-owned 0755 directory outside /tmp and /var/tmp (which runs see privately)."""
    path = Path("/var/lib") / f"sandbox-hostile-{os.getpid()}-{time.monotonic_ns()}"
    path.mkdir(mode=0o755)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def tiny_disk(outside):
    """A 8 MiB tmpfs of this test's own, unmounted after it."""
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", str(outside)],
                   check=True)
    yield outside
    subprocess.run(["umount", str(outside)], check=True)


def as_nobody(argv: list[str]) -> tuple[int, str]:
    """``sandbox ARGV`` in a forked child running as nobody: exit code, stdout + stderr."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        code = 99
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            sys.stdout = sys.stderr = os.fdopen(write, "w")
            code = main(argv)
            sys.stdout.flush()
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as f:
        out = f.read()
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), out


def run_json(run_dir: Path) -> dict:
    return json.loads((run_dir / rundir.RUN).read_text())


def test_a_run_cannot_read_another_runs_directory(needs_cgroups, outside):
    """Run B's workload tries to read run A's records: refused; a world-readable file next to
    them (the clean twin) it reads. The runs directory the harness makes is 0755 whatever the
    umask, the run directory 0700, its files 0600; another user's ``sandbox report`` and
    ``sandbox runs list`` say so in one line, exit 3; root's work."""
    runs = outside / "runs"
    (outside / "shared.txt").write_text("public words\n")
    a = run_sh(runs, "echo secret-of-A", umask=0o077)
    assert a.returncode == 0, a.stderr
    (run_a,) = runs.iterdir()
    assert stat.S_IMODE(runs.stat().st_mode) == 0o755
    assert stat.S_IMODE(run_a.stat().st_mode) == 0o700
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in run_a.iterdir()}
    assert {rundir.RUN, rundir.EVENTS, rundir.WORKLOAD_LOG, rundir.REPORT} <= set(modes)
    assert set(modes.values()) == {0o600}, modes
    b = run_sh(runs, f"cat {run_a}/workload.log {run_a}/run.json {run_a}/events.jsonl; "
                     f"ls {run_a}; cat {outside}/shared.txt")
    run_b = next(p for p in runs.iterdir() if p != run_a)
    log = (run_b / rundir.WORKLOAD_LOG).read_text()
    assert "secret-of-A" not in log and '"run_id"' not in log, log
    assert log.count("Permission denied") == 4 and "public words" in log, log
    assert b.returncode == 0, b.stderr
    code, out = as_nobody(["report", str(run_a)])
    assert (code, out.count("\n")) == (3, 1) and "private to the user" in out, out
    code, out = as_nobody(["runs", "list", "--runs-dir", str(runs)])
    assert (code, out.count("\n")) == (3, 1) and "cannot read 2 run directories" in out, out
    listed = subprocess.run([sys.executable, "-m", "sandbox", "runs", "list", "--json",
                             "--runs-dir", str(runs)], capture_output=True, text=True,
                            check=True)
    assert len(listed.stdout.splitlines()) == 2


def test_events_stay_under_their_cap_under_a_fork_exec_loop(needs_cgroups, outside):
    """A fork/exec loop fills events.jsonl up to --events-max, no further; the rest is counted
    in run.json. Clean twin: a quiet run drops nothing."""
    out = run_sh(outside, "while :; do /bin/true; done", "--events-max", "64K")
    assert out.returncode in (0, 2), out.stderr
    (run_dir,) = outside.iterdir()
    tracer = run_json(run_dir)["backend"]["tracer"]
    assert (run_dir / rundir.EVENTS).stat().st_size <= 64 * 1024
    assert tracer["events_max"] == 64 * 1024 and tracer["events_dropped"] > 100, tracer
    quiet = outside / "quiet"
    out = run_sh(quiet, "sleep 1", "--events-max", "64K", duration="2s")
    (run_dir,) = quiet.iterdir()
    assert run_json(run_dir)["backend"]["tracer"]["events_dropped"] == 0


def test_a_full_disk_leaves_a_complete_incomplete_run_and_no_temporary_file(needs_cgroups,
                                                                            tiny_disk):
    """The workload's output and a fork/exec loop fill the runs directory's disk: the run ends
    early, its log is cut to make room, every record is written (INCOMPLETE, exit 3), no
    ``*.tmp`` is left. Then an atomic write onto the full disk fails and leaves nothing."""
    out = run_sh(tiny_disk, "(while :; do /bin/true; done) & head -c 20000000 /dev/zero; "
                            "sleep 30", "--log-max", "64M", duration="25s")
    assert out.returncode == 3 and "Traceback" not in out.stderr, out.stderr
    (run_dir,) = tiny_disk.iterdir()
    run = run_json(run_dir)
    assert run["stopped_by"] == "disk full" and run["workload_log"]["cut_bytes"] > 1_000_000
    report = json.loads((run_dir / rundir.REPORT).read_text())
    assert report["status"] == "INCOMPLETE" and report["exit_code"] == 3
    assert (run_dir / rundir.CLEANUP).is_file()
    assert not [p for p in tiny_disk.rglob("*") if p.name.endswith(".tmp")]
    with open(tiny_disk / "filler", "wb", buffering=0) as f, pytest.raises(OSError):
        while True:
            f.write(b"\0" * 2**20)
    with pytest.raises(OSError):
        rundir.write_text(run_dir / "big.txt", "x" * 2**20)
    assert not [p for p in tiny_disk.rglob("*") if p.name.endswith(".tmp")]
    (tiny_disk / "filler").unlink()
    rundir.write_text(run_dir / "name.txt", "/tmp/\udcff\udcfe\n")  # a workload's bytes
    assert (run_dir / "name.txt").read_text() == "/tmp/\\udcff\\udcfe\n"


SCENARIO = '[scenario.x]\nduration = "1m"\noperations_per_minute = 5\n'


@pytest.mark.parametrize("text", [
    '[scenario.x]\nduration = "1m"\noperations_per_minute = [5]\n',
    '[scenario.x]\nduration = "1m"\noperations_per_minute = "5"\n',
    '[scenario.x]\nduration = [60]\noperations_per_minute = 5\n',
    '[scenario.x]\nduration = true\noperations_per_minute = 5\n',
    SCENARIO + "description = [1]\n",
    SCENARIO + "grace_s = [1]\n",
    SCENARIO + 'inject = "pages"\n',
    "[scenario]\nx = 5\n",
])
def test_scenario_values_of_the_wrong_type_are_one_clear_error(tmp_path, text):
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(HarnessError, match="scenario 'x'"):
        load_file(path)


def test_a_bad_scenario_file_creates_nothing(tmp_path):
    """Through the command line: one line, exit 3, no runs directory. Clean twin: the
    valid file is listed."""
    bad, good = tmp_path / "bad.toml", tmp_path / "good.toml"
    bad.write_text('[scenario.x]\nduration = "1m"\noperations_per_minute = [5]\n')
    good.write_text(SCENARIO)
    out = sandbox("run", "--scenario", "x", "--scenario-file", str(bad),
                  "--runs-dir", str(tmp_path / "runs"))
    assert out.returncode == 3 and out.stderr.count("\n") == 1, out.stderr
    assert "operations_per_minute must be a number, not list" in out.stderr
    assert not (tmp_path / "runs").exists()
    assert sandbox("scenarios", "--scenario-file", str(good)).returncode == 0


@pytest.mark.parametrize(("command", "message"), [
    ("no-such-command-here", "not found on PATH"),
    ("/etc/passwd", "is not executable by the run's user"),
    ("/etc", "is a directory"),
    ("ROOT_ONLY", "is not executable by the run's user"),
])
def test_a_command_that_cannot_run_fails_at_once(tmp_path, outside, command, message):
    """Missing, not executable (for the run's own UID, though root could), a directory: one
    line, exit 3, within a second, no runs directory."""
    if command == "ROOT_ONLY":
        command = str(outside / "mine.sh")
        Path(command).write_text("#!/bin/sh\ntrue\n")
        Path(command).chmod(0o700)
    started = time.monotonic()
    out = sandbox("run", "--runs-dir", str(tmp_path / "runs"), "--", command)
    took = time.monotonic() - started
    assert out.returncode == 3 and out.stderr.count("\n") == 1, out.stderr
    assert message in out.stderr and took < 1.5, (out.stderr, took)
    assert not (tmp_path / "runs").exists()


def test_a_bare_name_is_found_past_directories_the_user_cannot_search(outside):
    """As execvp does: a missing directory and one the run's user cannot search (which holds
    the name, runnable by root) are skipped, the system's copy is found. Clean twin: root
    finds the first."""
    closed = outside / "closed"
    closed.mkdir(mode=0o700)
    (closed / "true").write_text("#!/bin/sh\n")
    (closed / "true").chmod(0o755)
    search = f"{outside}/missing:{closed}:/usr/bin:/bin"
    found = resolve("true", search, Path("/"), Credentials(None))
    assert found.parent != closed and os.access(found, os.X_OK)
    assert resolve("true", search, Path("/"), Credentials(0)) == closed / "true"
    with pytest.raises(PreflightError, match="not found"):
        resolve("true", f"{outside}/missing:{closed}", Path("/"), Credentials(None))
