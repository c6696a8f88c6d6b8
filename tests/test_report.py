"""Report files, compare, and the report/compare commands."""

import io
import json
import xml.etree.ElementTree as ET
from dataclasses import replace

import numpy as np
import pytest

from sandbox.analysis import analyze
from sandbox.analysis.compare import compare_runs
from sandbox.commands.compare import compare_command
from sandbox.commands.report import report_command
from sandbox.errors import HarnessError
from sandbox.report import ReportInputError, render_text, write_all
from sandbox.report.compare import (
    render_compare_json,
    render_compare_markdown,
    render_compare_text,
)
from sandbox.report.github import publish
from sandbox.runreader import read_run
from tests.synthetic import series, write_run

ORPHAN_CLEANUP = {
    "process_cleanup": {  # as the verifier writes it: details in orphans, the seed's pids
        "orphans": [{"pid": 7, "comm": "chrome_crashpad", "is_browser": True, "age_s": 40.0}],
        "orphaned_browser_processes": [7], "process_leak_detected": True},
    "file_cleanup": {"remaining_temp_files": ["/tmp/x/playwright-artifacts-1"],
                     "file_leak_detected": True},
    "cleanup_successful": False, "issues_found": ["1 orphan", "1 file"], "escapes": [],
}


def make_run(path, leak=0.0, seed=3, duration=600, cleanup=ORPHAN_CLEANUP, **kw):
    t, y = series(np.random.default_rng(seed), duration, leak_mb_s=leak, noise_sd=3)
    return write_run(path, t, y, cleanup=cleanup, **kw)


@pytest.fixture
def leaky(tmp_path):
    run_dir = make_run(tmp_path / "leaky", leak=0.3)
    return run_dir, analyze(read_run(run_dir))


def test_write_all_writes_every_file(leaky):
    run_dir, res = leaky
    paths = write_all(res, run_dir)
    assert sorted(p.name for p in paths) == sorted(
        ["report.json", "report.txt", "report.html", "junit.xml", "metrics.prom", "report.md"])
    assert not list(run_dir.glob("*.tmp"))


def test_github_actions_get_a_summary_and_annotations(leaky, tmp_path, monkeypatch):
    """Inside a workflow: the markdown summary is appended to $GITHUB_STEP_SUMMARY and each
    critical or warning finding is a workflow command; outside, nothing is printed."""
    _, res = leaky
    out = io.StringIO()
    publish(res, out)
    assert out.getvalue() == ""
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    publish(res, out)
    text = summary.read_text()
    assert text.startswith("## ❌ sandbox synthetic: FAIL (exit 1)")
    assert "| memory | **over** the budget 0.1 MB/s |" in text
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("::error title=sandbox trend::anon grows")
    assert any(line.startswith("::warning title=sandbox orphans::") for line in lines)


def test_report_json_has_seed_keys_and_verdict(leaky):
    run_dir, res = leaky
    write_all(res, run_dir, ["json"])
    doc = json.loads((run_dir / "report.json").read_text())
    assert doc["schema_version"] == 6
    assert set(doc["memory_trend"]) >= {"slope_mb_per_second", "correlation", "leak_severity"}
    assert set(doc["memory_stats"]) >= {"initial_mb", "final_mb", "peak_mb", "average_mb"}
    assert doc["process_cleanup"]["orphaned_browser_processes"] == [7]
    assert doc["file_cleanup"]["file_leak_detected"] is True
    assert doc["cleanup_successful"] is False and doc["issues_found"] == ["1 orphan", "1 file"]
    assert doc["verdict"]["label"] == "leak" and doc["verdict"]["severity"] == "warning"
    assert doc["verdict"]["slope_mb_per_second"] == pytest.approx(0.3, abs=0.05)
    assert doc["exit_code"] == 1 and doc["overall_success"] is False
    assert doc["backend"]["cgroup"] == "synthetic" and doc["host"] == {"name": "test"}
    assert doc["operations"]["count"] == 199 and doc["operations"]["failed"] == 0
    assert doc["alerts"] == [] and doc["events_summary"]["count"] == 0
    assert doc["recommendations"]


def test_junit_fails_the_failing_checks(leaky):
    run_dir, res = leaky
    root = ET.fromstring(write_all(res, run_dir, ["junit"])[0].read_text())
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert list(cases) == ["trend", "orphans", "escapes", "files", "operations", "workload",
                           "processes", "fds", "threads", "cleanup"]  # js_heap: not measured
    failed = {n for n, c in cases.items() if c.find("failure") is not None}
    assert failed == {"trend", "orphans", "files"}
    (suite,) = root.iter("testsuite")
    assert root.tag == "testsuites" and suite.get("failures") == "3"
    assert suite.get("name") == "sandbox.synthetic" and float(suite.get("time")) > 0
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["budget"] == "0.1 MB/s" and props["status"] == "FAIL"
    assert {c.get("classname") for c in cases.values()} == {"sandbox.synthetic"}


def test_render_text_is_plain(leaky):
    _, res = leaky
    text = render_text(res)
    assert "\x1b[" not in text
    assert "Memory: OVER budget 0.1 MB/s on anon floor" in text
    assert "Seed rule" in text and "Recommendations" in text


def test_html_is_self_contained(leaky):
    run_dir, res = leaky
    html = write_all(res, run_dir, ["html"])[0].read_text()
    assert "<svg" in html and 'id="startup-cut"' in html and 'id="trend-fit"' in html
    namespaces = ('xmlns="http://www.w3.org/2000/svg"', 'xmlns:xlink="http://www.w3.org/1999/xlink"')
    for namespace in namespaces:
        html = html.replace(namespace, "")
    assert "http://" not in html
    assert "https://" not in html and "<script" not in html


def test_compare_flags_a_faster_leak_and_not_a_rerun(tmp_path):
    base = read_run(make_run(tmp_path / "base", leak=0.0, seed=1))
    same = read_run(make_run(tmp_path / "same", leak=0.0, seed=2))
    worse = read_run(make_run(tmp_path / "worse", leak=0.2, seed=2))
    assert compare_runs(base, same).exit_code == 0
    assert compare_runs(base, same).items[0].answer in ("same", "can't tell")
    res = compare_runs(base, worse)
    assert res.exit_code == 1
    growth = res.items[0]
    assert growth.metric == "growth MB/s" and growth.answer == "worse"
    assert growth.interval[0] > 0.1 and growth.interval[1] < 0.3
    assert "NEW is worse" in render_compare_text(res)
    doc = json.loads(render_compare_json(res))
    assert doc["worse"] is True and doc["metrics"][0]["answer"] == "worse"
    assert "| growth MB/s |" in render_compare_markdown(res)
    better = compare_runs(worse, base)
    assert better.exit_code == 0 and better.items[0].answer == "better"
    assert better.summary.startswith("NEW is better")


def test_compare_latency_with_mann_whitney(tmp_path):
    base = read_run(make_run(tmp_path / "base", seed=1))
    slow = read_run(make_run(tmp_path / "slow", seed=1))
    rng = np.random.default_rng(0)
    for ops, scale in ((base.operations, 0.4), (slow.operations, 0.6)):
        ops[:] = [replace(op, latency_s=float(rng.gamma(20, scale / 20))) for op in ops]
    latency = next(c for c in compare_runs(base, slow).items if c.metric.startswith("latency"))
    assert latency.worse and latency.new > latency.base and latency.ratio > 1.3


def test_commands_exit_codes_and_bad_input(tmp_path, capsys):
    run_dir = make_run(tmp_path / "r", leak=0.0, cleanup=None)
    assert report_command(run_dir, ["json", "text"]) == 3  # no cleanup.json: INCOMPLETE
    out = capsys.readouterr().out
    assert "INCOMPLETE" in out
    assert "report.json" in out and (run_dir / "report.txt").exists()
    assert not (run_dir / "report.html").exists()
    assert compare_command(run_dir, run_dir) == 0
    with pytest.raises(HarnessError, match="not a run directory"):
        report_command(tmp_path / "missing", None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportInputError, match="no samples"):
        report_command(tmp_path / "empty", None)
    with pytest.raises(ReportInputError, match="unknown format"):
        report_command(run_dir, ["pdf"])


def test_compare_says_each_runs_own_verdict_and_why_it_differs(tmp_path):
    """compare and run answer different questions: NEW growing 0.05 MB/s more than BASE is
    worse (exit 1) while NEW alone is within the default budget (no critical finding);
    compare says both in every format."""
    base = read_run(make_run(tmp_path / "base", leak=0.0, seed=1))
    slower = read_run(make_run(tmp_path / "new", leak=0.05, seed=2))
    res = compare_runs(base, slower)
    status, code, memory = res.own["NEW"]
    assert res.exit_code == 1 and code != 1 and memory == "within", res.own
    assert f"NEW {status} (exit {code}, memory within)" in render_compare_text(res)
    assert "so the two can differ" in render_compare_markdown(res)
    doc = json.loads(render_compare_json(res))
    assert doc["own_verdicts"]["NEW"] == {"status": status, "exit_code": code,
                                          "memory": "within"}
