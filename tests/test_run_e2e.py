"""`sandbox run` end to end on real Chromium: reports, exit codes, positive controls, signals,
the asyncio API and a killed harness."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from sandbox.detector import MemoryLeakDetector
from sandbox.host.isolation import uid_pids
from sandbox.host.registry import state_dir
from sandbox.host.slice import marked_pids

from .cli_helpers import only_run_dir, sandbox, wait_for_lines

REPORT_FILES = ("run.json", "samples.jsonl", "events.jsonl", "operations.jsonl", "cleanup.json",
                "report.json", "report.txt", "report.html", "junit.xml", "metrics.prom",
                "report.md", "memory_leak_detection.log")


def test_smoke_scenario_end_to_end(needs_cgroups, needs_chromium, runs_dir):
    out = sandbox("run", "--scenario", "smoke", "--runs-dir", str(runs_dir), "--no-progress")
    assert out.returncode == 0, out.stdout + out.stderr
    run_dir = only_run_dir(runs_dir)
    for name in REPORT_FILES:
        assert (run_dir / name).stat().st_size > 0, name
    report = json.loads((run_dir / "report.json").read_text())
    # 20 s cannot tell (exit 0): overall_success follows the verdict, and no verdict is no success
    assert (report["status"], report["overall_success"]) == ("INCONCLUSIVE", False)
    assert report["cleanup_successful"] is True
    assert report["operations"]["count"] >= 8
    assert report["operations"]["failed"] == 0
    assert report["backend"]["cgroup"] == needs_cgroups.cgroup.mode
    ET.parse(run_dir / "junit.xml")
    assert "sandbox_status{" in (run_dir / "metrics.prom").read_text()
    assert "report.html" in out.stdout
    assert marked_pids(json.loads((run_dir / "run.json").read_text())["run_id"]) == set()


def test_pages_injection_is_a_critical_leak(needs_cgroups, needs_chromium, runs_dir):
    out = sandbox("run", "--scenario", "smoke", "--duration", "60s", "--ops-per-minute", "60",
                  "--inject", "pages", "--runs-dir", str(runs_dir), "--no-progress")
    report = json.loads((only_run_dir(runs_dir) / "report.json").read_text())
    assert out.returncode == 1, out.stdout + out.stderr
    assert report["verdict"]["label"] == "leak"
    assert report["overall_success"] is False


def test_orphan_injection_is_named(needs_cgroups, needs_chromium, runs_dir):
    out = sandbox("run", "--scenario", "smoke", "--inject", "orphan", "--runs-dir",
                  str(runs_dir), "--no-progress")
    assert out.returncode == 2, out.stdout + out.stderr
    report = json.loads((only_run_dir(runs_dir) / "report.json").read_text())
    orphans = report["process_cleanup"]["orphans"]
    assert len(orphans) == 1
    assert str(orphans[0]["pid"]) in out.stdout
    assert report["process_cleanup"]["process_leak_detected"] is True


def test_sigint_still_writes_reports(needs_cgroups, needs_chromium, runs_dir):
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "run", "--scenario", "quick", "--runs-dir",
         str(runs_dir), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    wait_for_lines(runs_dir, "operations.jsonl", 3)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode in (0, 2), stdout + stderr
    run_dir = only_run_dir(runs_dir)
    for name in REPORT_FILES:
        assert (run_dir / name).exists(), name
    assert json.loads((run_dir / "run.json").read_text())["stopped_by"] == "SIGINT"


def test_sigkilled_harness_leaves_a_reportable_run(needs_cgroups, needs_chromium, runs_dir):
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "run", "--scenario", "quick", "--runs-dir",
         str(runs_dir), "--no-progress"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_for_lines(runs_dir, "samples.jsonl", 10)
    proc.kill()
    proc.wait()
    run_dir = only_run_dir(runs_dir)
    run_id = json.loads((run_dir / "run.json").read_text())["run_id"]
    try:
        out = sandbox("report", str(run_dir))
        assert out.returncode == 3, out.stderr  # its cleanup was never verified
        assert "INCOMPLETE" in out.stdout
        report = json.loads((run_dir / "report.json").read_text())
        assert report["memory_stats"]["peak_mb"] > 0
        assert "incomplete" in {f["level"] for f in report["findings"]}
        assert 'type="incomplete"' in (run_dir / "junit.xml").read_text()
    finally:
        cleaned = sandbox("cleanup")
    assert f"removed sandbox-{run_id}" in cleaned.stdout
    assert f"reports of {run_dir}: written, exit code 3" in cleaned.stdout
    assert marked_pids(run_id) == set()
    uid = json.loads((run_dir / "run.json").read_text())["user"]["uid"]
    assert uid_pids(uid) == set() and not any(state_dir().glob(f"users/{uid}.json"))
    assert not any(state_dir().glob(f"fs/sandbox-{run_id}"))
    assert f"sandbox-{run_id}" not in Path("/proc/self/mountinfo").read_text()


def test_asyncio_api_returns_the_seeds_dict(needs_cgroups, needs_chromium, runs_dir):
    detector = MemoryLeakDetector(sample_interval=0.5, alert_threshold_mb=2048.0,
                                  runs_dir=runs_dir)
    results = asyncio.run(detector.run_extended_memory_test(duration_minutes=0.25,
                                                            operations_per_minute=30))
    assert (results["exit_code"], results["status"]) == (0, "INCONCLUSIVE")
    assert results["overall_success"] is False  # 15 s cannot tell: no verdict, no success
    trend = results["memory_analysis"]["memory_trend"]
    assert set(trend) >= {"slope_mb_per_second", "correlation", "leak_severity"}
    stats = results["memory_analysis"]["memory_stats"]
    assert set(stats) >= {"initial_mb", "final_mb", "peak_mb", "average_mb"}
    assert isinstance(results["memory_analysis"]["recommendations"], list)
    cleanup = results["cleanup_verification"]
    assert cleanup["process_cleanup"]["orphaned_browser_processes"] == []
    assert cleanup["file_cleanup"]["remaining_temp_files"] == []
    assert cleanup["cleanup_successful"] is True
    assert cleanup["issues_found"] == ["No cleanup issues detected"]
