"""ResourceCleanupVerifier, for real: a clean run and one positive control per detector
(orphan, escape to the unified root, leftover files), each found, named and cleaned up, with
nothing of the run alive or on disk afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from sandbox.host.slice import marked_pids
from sandbox.model.cleanup import CleanupFacts, ResourceState
from sandbox.tracer import start_tracer
from sandbox.verifier import ResourceCleanupVerifier

from .controls import control, control_run

SEED_STATE_FIELDS = {"timestamp", "total_processes", "browser_processes", "temp_directories",
                     "temp_files", "open_file_descriptors", "system_memory_mb",
                     "system_memory_percent"}


def start(run, name: str, *args: str) -> tuple[subprocess.Popen, list[int]]:
    """Run a control to the end of its main process; returns it and the pids it printed."""
    proc = run.spawn(control(name, *args), root=name == "escape", stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=30)
    return proc, [int(x) for x in out.split()] if name != "tmpfiles" else out.decode().split()


def assert_nothing_left(run, pids=()) -> None:
    assert not marked_pids(run.slice_.run_id)
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    assert not any(d.exists() for d in run.slice_.dirs.values())


def test_clean_run(needs_cgroups, tmp_path):
    verifier = ResourceCleanupVerifier(grace_s=2.0)
    with control_run(needs_cgroups, tmp_path) as run:
        verifier.capture_initial_state()
        proc = run.spawn([sys.executable, "-c", "print('ok')"], stdout=subprocess.DEVNULL)
        proc.wait(30)
        report = verifier.verify(run.slice_, run_dir=run.run_dir, main=proc, user=run.user,
                                 private_fs=run.private_fs)
        data = report.to_dict()
        assert_nothing_left(run)
    assert data["cleanup_successful"] is True
    assert data["issues_found"] == ["No cleanup issues detected"]
    assert data["process_cleanup"]["orphans"] == [] and data["escapes"] == []
    assert data["file_cleanup"]["remaining_temp_files"] == []
    assert data["after_teardown"]["clean"] is True
    timing = data["after_teardown"]["timing"]
    assert timing["processes"] == 0 <= timing["kill_to_empty_ms"] <= timing["kill_to_reaped_ms"]
    on_disk = json.loads((run.run_dir / "cleanup.json").read_text())
    assert on_disk["cleanup_successful"] is True
    assert {"process_cleanup", "file_cleanup", "issues_found"} <= on_disk.keys()


def test_orphan_is_found_named_and_killed(needs_cgroups, tmp_path):
    verifier = ResourceCleanupVerifier(grace_s=1.0, orphan_alert_s=0.0)
    with control_run(needs_cgroups, tmp_path) as run:
        verifier.capture_initial_state()
        proc, [orphan] = start(run, "orphan")
        report = verifier.verify(run.slice_, run_dir=run.run_dir, main=proc, user=run.user,
                                 private_fs=run.private_fs)
        data = report.to_dict()
        assert_nothing_left(run, [orphan])
    # cleanup.json reads back into the records the verifier made
    facts = CleanupFacts.from_dict(json.loads((run.run_dir / "cleanup.json").read_text()))
    assert facts.orphans == report.orphans and facts.after_teardown == report.after_teardown
    [found] = data["process_cleanup"]["orphans"]
    assert (found["pid"], found["comm"]) == (orphan, Path(sys.executable).name[:15])
    assert "orphan.py" in " ".join(found["cmdline"]) and found["is_browser"] is False
    assert found["ppid"] != proc.pid and found["age_s"] >= 0
    assert data["process_cleanup"]["process_leak_detected"] is True
    assert data["process_cleanup"]["orphaned_browser_processes"] == []
    assert data["cleanup_successful"] is False
    assert [a["pid"] for a in data["alerts"] if a["type"] == "process_leak"] == [orphan]
    assert data["after_teardown"]["clean"] is True
    assert data["after_teardown"]["timing"]["processes"] == 1  # the orphan, killed


@pytest.mark.parametrize("backend", ["ebpf", "scan", None])
def test_escape_is_found_with_its_destination_and_killed(needs_cgroups, tmp_path, backend):
    if backend == "ebpf" and not needs_cgroups.bpftrace:
        pytest.skip("bpftrace is not installed")
    procs = needs_cgroups.cgroup.unified_mount / "cgroup.procs"
    verifier = ResourceCleanupVerifier(grace_s=1.0)
    with control_run(needs_cgroups, tmp_path) as run:
        verifier.capture_initial_state()
        tracer = backend and start_tracer(run.slice_, run.run_dir / "events.jsonl", backend,
                                          facts=needs_cgroups)
        try:
            proc, [escaped] = start(run, "escape", str(procs))
        finally:
            if tracer:
                tracer.stop()
        data = verifier.verify(run.slice_, run_dir=run.run_dir, main=proc,
                               tracer=tracer or None, private_fs=run.private_fs).to_dict()
        assert_nothing_left(run, [escaped])
    [found] = data["escapes"]
    assert (found["pid"], found["cgroup"], found["killed"]) == (escaped, "/", True)
    assert "marker" in found["found_by"]
    if tracer:
        assert "tracer" in found["found_by"]
        assert found["moved"]["destination"] == "/"
        assert found["moved"]["kind"] == ("attach" if backend == "ebpf" else "seen")
        assert data["tracer"]["backend"] == backend
    assert data["cleanup_successful"] is False
    assert any(issue.startswith("CRITICAL") for issue in data["issues_found"])


def test_leftover_files_are_found_sized_and_removed(needs_cgroups, tmp_path):
    verifier = ResourceCleanupVerifier(grace_s=1.0, file_alert_s=0.0)
    with control_run(needs_cgroups, tmp_path) as run:
        verifier.capture_initial_state()
        proc, paths = start(run, "tmpfiles")
        data = verifier.verify(run.slice_, run_dir=run.run_dir, main=proc, user=run.user,
                                 private_fs=run.private_fs).to_dict()
        assert_nothing_left(run)
    files = data["file_cleanup"]
    assert sorted(files["remaining_temp_files"]) == sorted(paths)
    sizes = {f["path"]: f["size"] for f in files["leftover_files"]}
    assert sizes[paths[0]] == 4096 and sizes[paths[1]] == 8192 and sizes[paths[2]] == 1000
    assert files["file_leak_detected"] is True and data["cleanup_successful"] is False
    assert {a["path"] for a in data["alerts"] if a["type"] == "file_leak"} == set(paths)
    assert not any(os.path.lexists(p) for p in paths)
    assert data["after_teardown"]["files_left"] == []


def test_resource_state_keeps_the_seed_fields(tmp_path):
    state = ResourceCleanupVerifier().capture_state()
    assert isinstance(state, ResourceState)
    data = state.to_dict()
    assert data.keys() >= SEED_STATE_FIELDS
    assert data["total_processes"] > 0 and data["open_file_descriptors"] > 0
    for fs in ("/tmp", "/dev/shm"):
        assert data["filesystems"][fs]["free_inodes"] >= 0
    json.dumps(data)


def test_known_tmp_pattern_before_the_run_is_not_a_leftover(needs_cgroups, tmp_path):
    """A Playwright directory that existed before the run is not the run's."""
    old = Path("/tmp") / f"playwright-artifacts-preexisting-{os.getpid()}"
    old.mkdir()
    try:
        verifier = ResourceCleanupVerifier(grace_s=0.5)
        with control_run(needs_cgroups, tmp_path) as run:
            verifier.capture_initial_state()
            proc = run.spawn(["true"])
            proc.wait(30)
            data = verifier.verify(run.slice_, run_dir=run.run_dir, main=proc, user=run.user,
                                 private_fs=run.private_fs).to_dict()
        assert str(old) not in data["file_cleanup"]["remaining_temp_files"]
        assert old.exists()
    finally:
        old.rmdir()


def test_negative_grace_is_rejected():
    with pytest.raises(ValueError, match="grace period"):
        ResourceCleanupVerifier(grace_s=-1)
