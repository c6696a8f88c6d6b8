"""The verifier on the real screenshot workload (Playwright + system Chromium as a UID of the
run's own): a clean run leaves nothing, and the injected escape is found, traced and killed."""

from __future__ import annotations

import json

import psutil
import pytest

from sandbox.host.slice import marked_pids
from sandbox.tracer import start_tracer
from sandbox.verifier import ResourceCleanupVerifier
from sandbox.workloads.screenshot import ScreenshotSpec

from .workload_helpers import screenshot_run


def test_clean_chromium_run(needs_cgroups, needs_chromium):
    verifier = ResourceCleanupVerifier()
    verifier.capture_initial_state()
    spec = ScreenshotSpec(duration_s=5, operations_per_minute=60)
    with screenshot_run(needs_chromium, spec) as run:
        tracer = start_tracer(run.slice, run.run_dir / "events.jsonl", facts=needs_chromium)
        try:
            run.wait_ready()
            code = run.wait_exit(60)
        finally:
            tracer.stop()
        report = verifier.verify(run.slice, run_dir=run.run_dir, main=run.workload.proc,
                                 tracer=tracer, user=run.user, private_fs=run.private_fs)
        data = report.to_dict()
        assert not marked_pids(run.run_id)
        events = (run.run_dir / "events.jsonl").read_text().splitlines()
    assert code == 0, run.log()
    assert data["cleanup_successful"] is True, data["issues_found"]
    assert data["issues_found"] == ["No cleanup issues detected"]
    assert data["process_cleanup"]["orphaned_browser_processes"] == []
    assert data["escapes"] == [] and data["file_cleanup"]["remaining_temp_files"] == []
    assert any(json.loads(line)["comm"].startswith("chrom") for line in events)


def test_injected_escape_in_chromium_run(needs_cgroups, needs_chromium):
    if not needs_chromium.bpftrace:
        pytest.skip("bpftrace is not installed")
    verifier = ResourceCleanupVerifier(grace_s=2.0)
    verifier.capture_initial_state()
    spec = ScreenshotSpec(duration_s=3, operations_per_minute=60, inject=["escape"])
    with screenshot_run(needs_chromium, spec) as run:
        tracer = start_tracer(run.slice, run.run_dir / "events.jsonl", "ebpf",
                              facts=needs_chromium)
        try:
            run.wait_ready()
            run.wait_exit(60)
        finally:
            tracer.stop()
        data = verifier.verify(run.slice, run_dir=run.run_dir, main=run.workload.proc,
                               tracer=tracer, private_fs=run.private_fs).to_dict()
        escaped = [e["pid"] for e in data["escapes"]]
        assert not marked_pids(run.run_id)
    assert escaped, data["issues_found"]
    assert all(not psutil.pid_exists(p) for p in escaped)
    top = data["escapes"][0]
    assert top["cgroup"] == "/" and top["killed"] is True
    assert "marker" in top["found_by"]
    assert data["cleanup_successful"] is False
