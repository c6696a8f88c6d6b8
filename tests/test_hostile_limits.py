"""Default limits and a clean environment (issue 23, items 4 and 5), tried as a hostile
workload would: a fork bomb and a memory bomb with no limit flags are contained by the slice's
defaults and reported; a secret in the harness's environment does not reach the workload.
Each has its twin: ``--pids-max max`` lifts the limit, ``--env`` / ``--inherit-env`` pass
variables on purpose."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.errors import HarnessError
from sandbox.limits import DEFAULT_PIDS_MAX, default_memory_max, host_memory
from sandbox.scenarios import load_file
from tests.cli_helpers import only_run_dir

#: Prints the slice's limit files as the workload sees them (v1 controller directories or
#: the unified hierarchy), forks children that wait until argv[1] of them run or forks are
#: refused, prints what it got, then kills and reaps them. Bounded: never more than argv[1].
BOMB = """
import os, signal, sys

def limit_file(v1, v2):
    for line in open("/proc/self/cgroup"):
        _, controllers, path = line.rstrip("\\n").split(":", 2)
        if v1.split(".")[0] in controllers.split(","):
            return f"/sys/fs/cgroup/{v1.split('.')[0]}{path}/{v1}"
        if controllers == "":
            unified = path
    for mount in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        if os.path.exists(f"{mount}{unified}/{v2}"):
            return f"{mount}{unified}/{v2}"

def read(v1, v2):
    return open(limit_file(v1, v2)).read().strip()

print("memory.max=" + read("memory.limit_in_bytes", "memory.max"), flush=True)
children, refused = [], 0
while len(children) < int(sys.argv[1]) and refused < 20:
    try:
        pid = os.fork()
    except OSError:
        refused += 1
        continue
    if pid == 0:
        signal.pause()
        os._exit(0)
    children.append(pid)
print(f"forked={len(children)} refused={refused} current={read('pids.current', 'pids.current')}"
      f" pids.max={read('pids.max', 'pids.max')}", flush=True)
for pid in children:
    os.kill(pid, signal.SIGKILL)
for pid in children:
    os.waitpid(pid, 0)
"""

#: Prints the memory limit, then touches 8 MiB blocks up to argv[1] MiB (bounded).
MEMORY_BOMB = """
import sys
print("allocating", flush=True)
blocks = [bytearray(8 << 20) for _ in range(int(sys.argv[1]) // 8)]
print("survived", len(blocks), flush=True)
"""

SECRET = "D_HARNESS_SECRET"
SECRET_VALUE = "secret-value-5e1f"
PASSED_VALUE = "passed-value-93c2"
SET_VALUE = "set-value-7b1d"


def run(runs: Path, *args: str, env: dict[str, str] | None = None, duration: str = "20s"
        ) -> tuple[subprocess.CompletedProcess, Path, dict, dict]:
    """``sandbox run`` of ``args`` (options, then ``--`` and the command); its run directory,
    run.json and report.json."""
    out = subprocess.run([sys.executable, "-m", "sandbox", "run", "--duration", duration,
                          "--no-progress", "-q", "--grace", "0s", "--runs-dir", str(runs),
                          *args], capture_output=True, text=True, timeout=180,
                         env={**os.environ, **(env or {})}, check=False)
    run_dir = only_run_dir(runs)
    return (out, run_dir, json.loads((run_dir / "run.json").read_text()),
            json.loads((run_dir / "report.json").read_text()))


def log_of(run_dir: Path) -> str:
    return (run_dir / "workload.log").read_text()


def pids_findings(report: dict) -> list[str]:
    return [f["message"] for f in report["findings"] if "process limit" in f["message"]]


def test_a_fork_bomb_without_flags_is_held_at_4096_and_reported(needs_cgroups, runs_dir):
    out, run_dir, run_json, report = run(runs_dir, "--", "python3", "-c", BOMB, "6000")
    log = log_of(run_dir)
    seen = dict(item.split("=") for line in log.splitlines() for item in line.split())
    assert seen["pids.max"] == str(DEFAULT_PIDS_MAX), log
    assert int(seen["current"]) <= DEFAULT_PIDS_MAX and int(seen["refused"]) > 0, log
    assert DEFAULT_PIDS_MAX - 10 <= int(seen["forked"]) < DEFAULT_PIDS_MAX, log
    # the memory default, read by the workload from its live slice
    default = default_memory_max(host_memory())
    assert abs(int(seen["memory.max"]) - default) < 4096, (seen, default)
    assert run_json["limits"]["pids_max"] == {"value": DEFAULT_PIDS_MAX, "source": "default",
                                              "hits": run_json["limits"]["pids_max"]["hits"]}
    assert run_json["limits"]["pids_max"]["hits"] > 0
    assert run_json["limits"]["memory_max"] == {"value": default, "source": "default"}
    assert pids_findings(report), report["findings"]
    assert out.returncode == 2, out.stderr
    assert "Limits: pids 4096 (default" in (run_dir / "report.txt").read_text()


def test_pids_max_max_lifts_the_limit(needs_cgroups, runs_dir):
    out, run_dir, run_json, report = run(runs_dir, "--pids-max", "max",
                                         "--alert-threshold-mb", "65536", "--",  # 4196 Pythons
                                         "python3", "-c", BOMB, str(DEFAULT_PIDS_MAX + 100))
    log = log_of(run_dir)
    assert f"forked={DEFAULT_PIDS_MAX + 100} refused=0" in log and "pids.max=max" in log, log
    assert run_json["limits"]["pids_max"]["value"] == "max"
    assert run_json["limits"]["pids_max"]["source"] == "given"
    assert not pids_findings(report)
    assert out.returncode == 0, (out.stderr, report["findings"])


def test_a_memory_bomb_is_oom_killed_in_the_slice_and_reported(needs_cgroups, runs_dir):
    out, run_dir, run_json, report = run(runs_dir, "--memory-max", "64M", "--",
                                         "python3", "-c", MEMORY_BOMB, "512")
    log = log_of(run_dir)
    assert "allocating" in log and "survived" not in log, log
    assert run_json["limits"]["memory_max"] == {"value": 64 << 20, "source": "given"}
    assert run_json["workload_exit"]["signal"] == "SIGKILL", run_json["workload_exit"]
    assert any("OOM kill" in f["message"] for f in report["findings"]), report["findings"]
    assert out.returncode in (1, 2), out.stderr


@pytest.mark.slow
def test_a_memory_bomb_without_flags_is_held_by_the_default(needs_cgroups, runs_dir):
    """No flag: a workload touching 1 GiB more than the default limit (half the host's RAM)
    is OOM-killed inside its slice and reported; the harness, outside it, lives on. Slow: it
    touches ~12 GiB on a 24 GiB host (about 25 s at ~0.5 GB/s here)."""
    default = default_memory_max(host_memory())
    out, run_dir, run_json, report = run(runs_dir, "--", "python3", "-c", MEMORY_BOMB,
                                         str((default >> 20) + 1024), duration="120s")
    log = log_of(run_dir)
    assert "allocating" in log and "survived" not in log, log
    assert run_json["limits"]["memory_max"] == {"value": default, "source": "default"}
    assert run_json["workload_exit"]["signal"] == "SIGKILL", run_json["workload_exit"]
    assert any("OOM kill" in f["message"] for f in report["findings"]), report["findings"]
    assert out.returncode in (1, 2), out.stderr


def test_the_harness_environment_does_not_reach_the_workload(needs_cgroups, runs_dir):
    env = {SECRET: SECRET_VALUE, "D_PASSED": PASSED_VALUE}
    out, run_dir, run_json, report = run(
        runs_dir, "--env", "D_PASSED", "--env", f"D_SET={SET_VALUE}", "--env",
        "NODE_OPTIONS=--max-semi-space-size=1", "--", "env", env=env)
    log = log_of(run_dir)
    assert SECRET not in log and SECRET_VALUE not in log, log
    assert f"D_PASSED={PASSED_VALUE}" in log and f"D_SET={SET_VALUE}" in log, log
    assert "PATH=" in log and "HOME=" in log, log
    assert run_json["env"]["inherited"] is False
    assert run_json["env"]["passed"] == ["D_PASSED", "D_SET", "NODE_OPTIONS"]
    assert run_json["env"]["node_semi_space_mb"] == 1  # what the verdict's start-up reads
    assert {"D_PASSED", "D_SET", "PATH", "HOME"} <= set(run_json["env"]["names"])
    assert SECRET not in run_json["env"]["names"]
    for name in ("run.json", "report.json", "report.txt"):  # names, never values
        text = (run_dir / name).read_text()
        assert PASSED_VALUE not in text and SET_VALUE not in text, name
    assert not pids_findings(report)  # the clean twin of the fork bomb
    assert out.returncode == 0, (out.stderr, report["findings"])


def test_inherit_env_passes_everything(needs_cgroups, runs_dir):
    out, run_dir, run_json, _ = run(runs_dir, "--inherit-env", "--", "env",
                                    env={SECRET: SECRET_VALUE})
    assert f"{SECRET}={SECRET_VALUE}" in log_of(run_dir)
    assert run_json["env"]["inherited"] is True and SECRET in run_json["env"]["names"]
    assert SECRET_VALUE not in (run_dir / "run.json").read_text()
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--pids-max", "lots"], "expected max or a whole number"),
    (["--memory-max", "1X"], "expected max or not a size"),
    (["--memory-max", "1M"], "memory limit must be at least"),
    (["--env", "1NAME=secret"], "not NAME or NAME=VALUE"),
    (["--env", "D_NOT_SET_ANYWHERE"], "not set in the harness's environment"),
])
def test_bad_limit_and_env_options_are_one_line(args, message, runs_dir):
    out = subprocess.run([sys.executable, "-m", "sandbox", "run", "--runs-dir", str(runs_dir),
                          *args, "--", "true"], capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 3 and message in out.stderr and len(out.stderr.splitlines()) == 1
    assert "secret" not in out.stderr  # a value is never echoed
    assert not any(runs_dir.iterdir())


def test_scenario_files_set_limits_and_env(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[scenario.a]\nduration = "5s"\noperations_per_minute = 10\n'
                    'pids_max = "max"\nmemory_max = "2G"\ninherit_env = false\n'
                    'env = { API = "http://x", TOKEN = true }\n')
    settings = load_file(path)["a"].settings
    assert settings == {"pids_max": "max", "memory_max": 2 << 30, "inherit_env": False,
                        "env": ["API=http://x", "TOKEN"]}
    path.write_text('[scenario.a]\nduration = "5s"\noperations_per_minute = 10\n'
                    'pids_max = [1]\n')
    with pytest.raises(HarnessError, match="pids_max must be a number or"):
        load_file(path)
