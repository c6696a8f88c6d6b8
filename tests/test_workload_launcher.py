"""The launcher for real: any command in a slice as a UID of its own with a private HOME, /tmp
and /dev/shm and an optional network namespace; the stdout reader; bad input as one line."""

from __future__ import annotations

import io
import json
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.host import open_slice
from sandbox.host.cgroups import CgroupLayout
from sandbox.host.slice import resolve_user
from sandbox.workloads.launcher import (
    LaunchError,
    Workload,
    _read_operations,
    launch_command,
    launch_screenshot,
    python_module,
)
from sandbox.workloads.logfile import CappedLog
from sandbox.workloads.network import NETNS_DIR
from sandbox.workloads.screenshot import ScreenshotSpec

from .workload_helpers import new_run_dir, run_isolation

REPORT = ("id -un; echo HOME=$HOME; echo TMPDIR=$TMPDIR; echo MARK=$SANDBOX_RUN_ID; "
          "stat -c %u /tmp/. /dev/shm/.; touch /tmp/mine; cat /proc/self/cgroup; cat /proc/net/dev")


@pytest.fixture
def run_dir():
    path = new_run_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("network", ["isolated", "host"])
def test_command_runs_as_its_own_user_in_the_slice(needs_cgroups, run_dir, network):
    run_id = f"test-{secrets.token_hex(4)}"
    with run_isolation(run_id, run_dir) as (user, private_fs), \
            open_slice(run_id, needs_cgroups.cgroup) as slice_:
        workload = launch_command(slice_, ["sh", "-c", REPORT], run_dir, network=network,
                                  user=user, private_fs=private_fs)
        assert workload.proc.wait(timeout=30) == 0
        workload.close()
        left = private_fs.leftovers()
        assert (private_fs.root / "home").stat().st_uid == user.uid
    log = (run_dir / "workload.log").read_text()
    assert log.splitlines()[:6] == [user.name, "HOME=/tmp/.home",
                                    "TMPDIR=/tmp", f"MARK={run_id}", "0", "0"]
    assert [e.name for e in left["/tmp"]] == ["mine"] and left["/tmp"][0].uid == user.uid
    assert not Path("/tmp/mine").exists()
    assert f"0::/sandbox-{run_id}" in log or f"/sandbox-{run_id}\n" in log
    interfaces = {line.split(":")[0].strip() for line in log.split("Inter-|")[1].splitlines()[2:]}
    assert (interfaces == {"lo"}) == (network == "isolated")
    assert not (NETNS_DIR / f"sandbox-{run_id}").exists()


def test_stdout_reader_splits_operations_records_and_noise(run_dir):
    lines = [{"op": 0, "t": 1.0, "ok": True}, {"kind": "ready", "pid": 1},
             {"op": 1, "t": 2.0, "ok": False}, {"kind": "summary", "operations": 2}]
    stream = io.BytesIO(b"".join(json.dumps(x).encode() + b"\n" for x in lines)
                        + b"a stray print\n" + b'{"op": 2, "t": 3.0')  # cut mid-write
    workload = Workload(proc=None, run_dir=run_dir, log=CappedLog(run_dir / "workload.log"))
    _read_operations(stream, run_dir, workload)
    workload.log.close()
    ops = (run_dir / "operations.jsonl").read_text().splitlines()
    assert [json.loads(x)["op"] for x in ops] == [0, 1]
    assert workload.operations == 2
    assert workload.summary == {"kind": "summary", "operations": 2}
    assert "a stray print" in (run_dir / "workload.log").read_text()


def test_launch_errors_are_one_line(needs_cgroups, run_dir, tmp_path):
    run_id = f"test-{secrets.token_hex(4)}"
    with open_slice(run_id, needs_cgroups.cgroup) as slice_:
        with pytest.raises(LaunchError, match="unknown user"):
            launch_command(slice_, ["true"], run_dir, user="no-such-user-xyz")
        with pytest.raises(LaunchError, match="no command"):
            launch_command(slice_, [], run_dir, user="nobody")
        with pytest.raises(LaunchError, match="network 'bridge'"):
            launch_command(slice_, ["true"], run_dir, network="bridge", user="nobody")
        private = tmp_path / "private"  # pytest's tmp_path is 0700: nobody cannot reach it
        private.mkdir()
        with pytest.raises(LaunchError, match="not searchable by the workload's user"):
            launch_command(slice_, ["true"], private, user="nobody")
    none_slice = open_slice(run_id, CgroupLayout(mode="none", reason="test"))
    with pytest.raises(LaunchError, match="needs a cgroup slice"):
        launch_screenshot(none_slice, ScreenshotSpec(inject=["escape"]), run_dir, user=None)


def test_python_module_for_root_is_this_interpreter():
    assert python_module("x.y", None) == [sys.executable, "-m", "x.y"]
    argv = python_module("x.y", resolve_user("nobody"))
    assert argv[-1] == "x.y" and Path(argv[0]).name.startswith("python")


@pytest.mark.parametrize("args, message", [
    (["--inject", "nope"], "invalid choice: 'nope'"),
    (["--config", '{"foo": 1}'], "unknown setting 'foo'"),
    (["--config", "{not json"], "not valid JSON"),
    (["--viewport", "12x"], "bad viewport"),
    (["--url", "ftp://example.invalid/"], "bad URL"),
    (["--ops-per-minute", "0"], "operations_per_minute must be a positive number"),
    (["--context-policy", "sometimes"], "invalid choice"),
    (["--config", '{"inject_rate_mb": 0}'], "inject_rate_mb must be in"),
])
def test_workload_bad_input_is_one_line(args, message):
    out = subprocess.run([sys.executable, "-m", "sandbox.workloads.screenshot", *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.count("\n") == 1 and message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_an_environment_under_tmp_is_shown_to_the_workload_read_only(
        needs_cgroups, run_dir, tmp_path, monkeypatch):
    """A venv under /tmp (a CI checkout there), which the workload's private /tmp would hide:
    the workload sees it where it is, read-only, and reads it (it used to end in "cannot
    start .../python3: No such file"); the mount point is not a leftover."""
    from sandbox.workloads import launcher

    venv = tmp_path / "ci-checkout" / ".venv"  # under /tmp/pytest-of-root (mode 700)
    venv.mkdir(parents=True)
    (venv / "marker").write_text("the venv\n")
    monkeypatch.setattr(sys, "prefix", str(venv))
    run_id = f"test-{secrets.token_hex(4)}"
    with run_isolation(run_id, run_dir) as (user, private_fs), \
            open_slice(run_id, needs_cgroups.cgroup) as slice_:
        launcher.expose_environment(private_fs)
        script = f'cat {venv}/marker; touch {venv}/new || echo read-only; touch /tmp/mine'
        workload = launch_command(slice_, ["sh", "-c", script], run_dir, user=user,
                                  private_fs=private_fs)
        assert workload.proc.wait(timeout=30) == 0
        workload.close()
        left = private_fs.leftovers()
    log = (run_dir / "workload.log").read_text()
    assert log.startswith("the venv\n") and "read-only" in log, log
    assert not (venv / "new").exists()
    assert [e.name for e in left["/tmp"]] == ["mine"]
