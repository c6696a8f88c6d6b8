"""The container image, for real: scripts/build-image.sh builds it without a registry (the
mmdebstrap base is cached in /var/cache/sandbox-image), and real podman runs the harness in it
the documented way (docs/container.md), with the run directories on a host volume.

Slow (the build and four real runs take minutes): ``pytest -m slow tests/test_container.py``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "scripts/build-image.sh"
TAG = "localhost/sandbox:latest"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

#: Keeps 1 MB more every second (the leak); the clean twin allocates and frees the same.
LEAK = ("import time\nkeep = []\nwhile True:\n"
        "    keep.append(bytearray(1 << 20)); time.sleep(1)")
CLEAN = ("import time\nwhile True:\n"
         "    block = bytearray(1 << 20); del block; time.sleep(1)")


@pytest.fixture(scope="module")
def image() -> str:
    if os.geteuid() != 0:
        pytest.skip("needs root to build and run the image")
    for tool in ("podman", "runc", "mmdebstrap"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (bash scripts/apt-ensure.sh podman runc mmdebstrap)")
    built = subprocess.run([str(BUILD), "--tag", TAG], capture_output=True, text=True,
                           timeout=1200)
    assert built.returncode == 0, built.stderr[-3000:]
    assert built.stdout.strip() == TAG
    return TAG


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


def podman_run(image: str, runs: Path, *args: str, timeout: float = 300
               ) -> subprocess.CompletedProcess[str]:
    """``sandbox ARGS`` in the image, as docs/container.md runs it."""
    return subprocess.run(
        ["podman", "--runtime", "runc", "run", "--rm", "--privileged",
         "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096",
         "-v", f"{runs}:/runs", image, *args],
        capture_output=True, text=True, timeout=timeout)


def new_run_dir(runs: Path, before: set[Path]) -> Path:
    """The one run directory a run added to the host volume, with its reports."""
    added = set(runs.iterdir()) - before
    assert len(added) == 1, added
    run_dir = added.pop()
    for name in ("run.json", "report.json", "report.html", "samples.jsonl"):
        assert (run_dir / name).is_file(), f"{name} missing in {run_dir}"
    return run_dir


def test_doctor_in_the_container(image: str, runs: Path) -> None:
    result = podman_run(image, runs, "doctor", "--json")
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    assert facts["problems"] == []
    assert facts["cgroup"]["mode"] != "none", facts["cgroup"]
    assert facts["chromium"] == "/usr/bin/chromium"
    assert facts["bpftrace"] and facts["ticker"]
    text = podman_run(image, runs, "doctor")
    assert text.returncode == 0, text.stderr
    assert text.stdout.strip().splitlines()[-1].startswith("Runs can be made here")


@pytest.mark.parametrize(("script", "exit_code"), [(LEAK, 1), (CLEAN, 0)],
                         ids=["leak-1MB/s", "clean-twin"])
def test_command_run_is_judged(image: str, runs: Path, script: str, exit_code: int) -> None:
    before = set(runs.iterdir())
    result = podman_run(image, runs, "run", "--duration", "40s", "--",
                        "python3", "-c", script)
    assert result.returncode == exit_code, result.stdout[-3000:] + result.stderr[-2000:]
    report = json.loads((new_run_dir(runs, before) / "report.json").read_text())
    assert report["exit_code"] == exit_code and report["cleanup_successful"] is True


def test_quick_scenario_runs_to_a_report(image: str, runs: Path) -> None:
    before = set(runs.iterdir())
    result = podman_run(image, runs, "run", "--scenario", "quick", timeout=600)
    assert result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-2000:]
    run_dir = new_run_dir(runs, before)
    report = json.loads((run_dir / "report.json").read_text())
    assert report["operations"]["count"] > 0, report["operations"]
    assert report["cleanup_successful"] is True


def test_an_orphan_in_the_container_is_no_escape(image: str, runs: Path) -> None:
    """A background child that outlives its shell is an orphan (exit 2), as on the host, not
    an escape: the slice's cgroup path in the container (v1: under the libpod cgroup the
    runtime bind-mounted) is read as /proc/PID/cgroup names it, and the tracer is one that sees
    the container's own pids (issue 25: this once said FAIL, escaped)."""
    before = set(runs.iterdir())
    result = podman_run(image, runs, "run", "--duration", "4s", "--", "sh", "-c",
                        "sleep 1 & sleep 30")
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-2000:]
    run_dir = new_run_dir(runs, before)
    report = json.loads((run_dir / "report.json").read_text())
    assert [f["check"] for f in report["findings"] if f["level"] != "note"] == ["orphans"]
    tracer = json.loads((run_dir / "run.json").read_text())["backend"]["tracer"]
    assert tracer["backend"] == "scan", tracer
