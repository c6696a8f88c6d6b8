"""The memory verdict against a budget (on synthetic series; the real-trace calibration is in
test_corpus.py), the seed's rule, findings and the exit-code mapping."""


import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sandbox.analysis import analyze, trend_test
from sandbox.analysis.budget import BROWSER, LEAN_DRIVER_BROWSER, Budget, parse_budget
from sandbox.analysis.legacy import seed_severity
from sandbox.analysis.verdict import Finding, exit_code
from sandbox.model.alert import Alert
from sandbox.model.operation import Operation
from sandbox.model.role_sweep import RoleSweep, RoleTotals
from sandbox.report.junit import render_junit
from sandbox.report.text import render_text
from sandbox.runreader import RunData, read_run
from tests.synthetic import series, write_run

CLEAN_CLEANUP = {
    "process_cleanup": {"orphaned_browser_processes": [], "process_leak_detected": False},
    "file_cleanup": {"remaining_temp_files": [], "file_leak_detected": False},
    "cleanup_successful": True, "issues_found": ["No cleanup issues detected"], "escapes": [],
}


def _run(tmp_path, leak=0.0, step=0.0, duration=600, seed=1, cleanup=CLEAN_CLEANUP, **kw):
    t, y = series(np.random.default_rng(seed), duration, leak_mb_s=leak, step_mb=step,
                  noise_sd=3)
    return read_run(write_run(tmp_path / "run", t, y, cleanup=cleanup, **kw))


def test_step_then_flat_is_step_not_leak():
    t = np.arange(0, 600, 0.5)
    rng = np.random.default_rng(0)
    y = 300 + 50 * (t >= 300) + rng.normal(0, 1, len(t))
    r = trend_test(t, y)
    assert r.label == "step"
    assert len(r.steps) == 1 and r.steps[0]["t"] == pytest.approx(300, abs=10)
    assert r.steps[0]["size"] == pytest.approx(50, rel=0.2)


def test_leak_over_the_budget_with_rate_and_severity(tmp_path):
    res = analyze(_run(tmp_path, leak=0.2))
    v = res.verdict
    assert v.outcome == "over" and v.label == "leak" and v.severity == "warning"
    assert v.signal == "anon" and v.budget == "0.1 MB/s"
    assert v.slope_mb_s == pytest.approx(0.2, abs=0.03)
    assert 0.1 < v.slope_ci_mb_s[0] < v.slope_mb_s < v.slope_ci_mb_s[1]
    assert v.p_value < 0.01 and v.detection_limit_mb_s < 0.1
    assert v.mb_per_op == pytest.approx(0.2 * 3, rel=0.2)  # one operation every 3 s
    assert v.warmup_cut_s is not None and v.warmup_cut_s > 0
    assert res.exit_code == 1 and not res.overall_success and res.status == "FAIL"


def test_growth_within_a_budget_is_a_note(tmp_path):
    """The same 0.2 MB/s against a budget of 1000 MB/h: a note with its rate, exit 0."""
    res = analyze(_run(tmp_path, leak=0.2), budget=parse_budget("1000MB/h"))
    assert res.verdict.outcome == "within" and res.exit_code == 0
    [note] = [f for f in res.findings if f.check == "trend"]
    assert note.level == "note" and "MB/h" in note.message and "within" in note.message


@pytest.mark.parametrize(("text", "budget", "mb_s"), [
    ("0.03MB/s", Budget(0.03), 0.03), ("100MB/h", Budget(100, "h"), 100 / 3600),
    ("0.5MB/op", Budget(0.5, "op"), 0.25), ("500 KB/op", Budget(500 / 1024, "op"), 500 / 2048),
])
def test_budgets_in_every_unit(text, budget, mb_s):
    assert parse_budget(text) == budget
    assert budget.mb_per_s(ops_per_s=0.5) == pytest.approx(mb_s)


@pytest.mark.parametrize("text", ["fast", "-1MB/s", "0MB/h", "1MB", "1MB/day", "nanMB/s"])
def test_bad_budgets_are_refused(text):
    with pytest.raises(ValueError):
        parse_budget(text)


def test_inconclusive_says_how_long_and_can_fail(tmp_path):
    """0.1 MB/s judged against 0.12 MB/s in 5 minutes: the interval holds the budget."""
    run = _run(tmp_path, leak=0.1, duration=300)
    res = analyze(run, budget=Budget(0.12))
    v = res.verdict
    assert v.outcome == "inconclusive" and v.minutes_needed > 5
    assert f"about {v.minutes_needed:g} min" in v.reasons[0]  # from the measured noise
    assert res.exit_code == 0 and res.status == "INCONCLUSIVE"
    assert '<skipped message="INCONCLUSIVE' in render_junit(res)
    assert "INCONCLUSIVE" in render_text(res).splitlines()[1]  # the heading, not PASS
    assert analyze(run, budget=Budget(0.12), fail_on_inconclusive=True).exit_code == 1


def test_clean_run_passes_and_file_cache_is_not_judged(tmp_path):
    res = analyze(_run(tmp_path))
    assert res.verdict.outcome == "within" and res.verdict.label == "none"
    assert res.exit_code == 0 and res.overall_success
    assert res.file_trend is not None and res.file_trend.label == "none"
    assert res.recommendations == ["No memory leak or cleanup issue detected"]


def test_seed_rule_reported_and_fooled_by_warmup(tmp_path):
    res = analyze(_run(tmp_path, duration=120))
    assert res.legacy.series == "memory_current"
    assert res.legacy.initial_mb < res.legacy.peak_mb
    assert res.legacy.initial_mb <= res.legacy.average_mb <= res.legacy.peak_mb
    assert res.legacy.slope_mb_per_second > 0  # the warm-up ramp looks like growth to OLS


@pytest.mark.parametrize(("slope", "r", "sev"), [
    (0.2, 0.9, "critical"), (0.2, 0.7, "moderate"), (0.2, 0.5, "minor"), (0.2, 0.3, "none"),
    (0.05, 0.99, "none")])
def test_seed_severity_table(slope, r, sev):
    assert seed_severity(slope, r) == sev


def test_exit_code_mapping():
    assert exit_code([]) == 0
    assert exit_code([Finding("trend", "note", "inconclusive")]) == 0
    assert exit_code([Finding("files", "warning", "x"), Finding("trend", "note", "y")]) == 2
    assert exit_code([Finding("files", "warning", "x"), Finding("escapes", "critical", "y")]) == 1


def test_escape_is_critical_and_orphan_a_warning(tmp_path):
    cleanup = {**CLEAN_CLEANUP, "escapes": [{"pid": 99, "comm": "sleep", "cgroup": "/"}]}
    assert analyze(_run(tmp_path, cleanup=cleanup)).exit_code == 1
    orphan = {**CLEAN_CLEANUP, "process_cleanup": {
        "orphans": [{"pid": 7, "comm": "chrome", "is_browser": True}],
        "orphaned_browser_processes": [7], "process_leak_detected": True},
        "cleanup_successful": False}
    res = analyze(_run(tmp_path, cleanup=orphan))
    assert res.exit_code == 2
    assert [f.check for f in res.findings if f.level == "warning"] == ["orphans"]


def test_short_run_is_inconclusive_and_exits_zero(tmp_path):
    res = analyze(_run(tmp_path, duration=10))
    assert res.verdict.label == "inconclusive"
    assert "too short" in res.verdict.reasons[0] and res.verdict.minutes_needed >= 2
    assert res.exit_code == 0
    assert any("inconclusive" in r for r in res.recommendations)


def test_missing_cleanup_is_incomplete(tmp_path):
    """No cleanup.json (the harness was killed): the run cannot be judged, exit 3."""
    res = analyze(_run(tmp_path, cleanup=None))
    assert any(f.level == "incomplete" and "never verified" in f.message for f in res.findings)
    assert res.exit_code == 3 and not res.overall_success


def test_disk_error_is_incomplete(tmp_path):
    res = analyze(_run(tmp_path, run_extra={"disk_error": "cannot write samples.jsonl: full"}))
    assert [f.check for f in res.findings if f.level == "incomplete"] == ["cleanup"]
    assert res.exit_code == 3


@pytest.mark.parametrize("end, finding", [
    ({"returncode": 7, "signal": None, "ended_by": "itself"}, "exited with status 7"),
    ({"returncode": -11, "signal": "SIGSEGV", "ended_by": "itself"}, "killed by SIGSEGV"),
    ({"returncode": -15, "signal": "SIGTERM", "ended_by": "harness"}, None),
    ({"returncode": 0, "signal": None, "ended_by": "itself"}, None),
])
def test_workload_end_is_judged(tmp_path, end, finding):
    res = analyze(_run(tmp_path, run_extra={"workload_exit": end}))
    found = [f for f in res.findings if f.check == "workload"]
    if finding is None:
        assert found == []
    else:
        assert found[0].level == "critical" and finding in found[0].message
        assert res.exit_code == 1


def test_failed_operations_over_limit_are_critical(tmp_path):
    run = _run(tmp_path)
    run.operations[:20] = [replace(op, ok=False, error="timeout") for op in run.operations[:20]]
    res = analyze(run)
    assert res.operations.failed == 20 and res.operations.errors == {"timeout": 20}
    assert res.exit_code == 1
    assert res.operations.latency_p50_s == pytest.approx(0.4)


def test_growing_process_count_is_a_warning(tmp_path):
    run = _run(tmp_path)
    run.samples["nprocs"] = 21 + np.floor(run.samples["t"] / 20)
    res = analyze(run)
    assert res.resource_trends["processes"].label == "leak"
    assert res.resource_trends["processes"].slope == pytest.approx(0.05, rel=0.2)
    assert res.exit_code == 2


@pytest.mark.parametrize("series_name", ["nprocs", "tmp_files"])
def test_a_count_that_steps_once_is_not_growth(tmp_path, series_name):
    """Chromium's process count 10 -> 11 once, the TMPDIR's files 112 -> 128 once: steps."""
    run = _run(tmp_path, duration=300)
    t = run.samples["t"]
    run.samples[series_name] = np.where(t < 170, 10.0, 11.0) if series_name == "nprocs" \
        else np.where(t < 120, 112.0, 128.0)
    res = analyze(run)
    name = "processes" if series_name == "nprocs" else "tmp_files"
    assert res.resource_trends[name].label in ("step", "none")
    assert res.exit_code == 0, res.findings


#: A clean 50 s screenshot run's sweeps (recorded here, 2026-11-27): a third renderer for one
#: sweep at 40.8 s. Floors of one sweep each once read it as growth of 1.9 fds/s.
SWEEP_T = [1.2, 3.2, 5.2, 7.2, 9.2, 11.2, 13.6, 15.6, 17.6, 19.6, 21.6, 24.3, 26.3, 28.3, 30.3,
           32.3, 34.8, 36.8, 38.8, 40.8, 42.8, 45.1, 47.1, 49.1, 51.1]
SWEEP_FDS = [0, 329, 334, 334, 334, 336, 381, 379, 382, 383, 384, 334, 336, 336, 336, 336, 336,
             336, 334, 381, 336, 336, 336, 334, 336]


def _count_run(t, fds):
    sweeps = [RoleSweep(t=ti, roles={"renderer": RoleTotals(processes=2, fds=n, threads=n // 3)})
              for ti, n in zip(t, fds, strict=True)]
    ops = [Operation(op=i, t=2.4 + i, latency_s=0.25, ok=True) for i in range(int(t[-1]) - 2)]
    return analyze(RunData(path=Path("run"), operations=ops, roles=sweeps))


def test_one_sweep_of_a_transient_renderer_is_not_fd_growth():
    res = _count_run(SWEEP_T, SWEEP_FDS)
    assert {res.resource_trends[name].label for name in ("fds", "threads")} <= \
        {"none", "step", "inconclusive"}, res.resource_trends
    assert not [f for f in res.findings if f.check in ("fds", "threads")], res.findings


def test_fds_growing_through_sparse_sweeps_are_growth():
    """The twin: 0.5 fds/s over 150 s of 2 s sweeps."""
    t = [2.0 * i for i in range(75)]
    res = _count_run(t, [330 + i for i in range(75)])
    assert res.resource_trends["fds"].label == "leak"
    assert res.resource_trends["fds"].slope == pytest.approx(0.5, rel=0.1)


def test_one_hour_slow_leak_against_a_tight_budget(tmp_path):
    run = _run(tmp_path, duration=3600, leak=0.02)
    res = analyze(run)
    assert res.n_samples == 7200
    assert res.verdict.outcome == "within" and res.exit_code == 0  # 72 MB/h < 360 MB/h
    assert analyze(run, budget=Budget(0.01)).verdict.outcome == "over"


def test_growth_rate_alerts_are_notes_threshold_crossings_warnings(tmp_path):
    rate = Alert(t=60.0, kind="growth_rate", severity="warning", value=0.2, limit=0.1,
                 unit="MB/s", message="working set growing 0.2 MB/s")
    crossing = Alert(t=90.0, kind="threshold", severity="warning", value=1100.0, limit=1024.0,
                     unit="MB", message="working set crossed 1024 MB")
    run = _run(tmp_path)
    assert analyze(run).exit_code == 0
    run.alerts = [rate]
    res = analyze(run)
    assert res.exit_code == 0
    assert [f for f in res.findings if "alert" in f.message] == []  # in alerts.jsonl only
    run.alerts = [rate, crossing]
    assert analyze(run).exit_code == 2


def test_marker_limits_each_fire_on_a_series_that_breaks_them_only():
    """analysis.marker_limits (the pytest marker's memory limits) on a 3 s body sampled at
    20 Hz: 50 MB/s of growth breaks each limit; a flat twin breaks none."""
    from sandbox.analysis.marker_limits import MemoryLimits, memory_findings

    t = np.arange(0, 3, 0.05)
    rng = np.random.default_rng(4)
    flat, growing = 100 + rng.normal(0, 0.2, len(t)), 100 + 50 * t
    limits = MemoryLimits(max_growth_mb_per_s=10, max_growth_mb=60, max_memory_mb=200)
    found = memory_findings(t, growing, limits)
    assert [f.split(" ")[2] for f in found] == ["at", "by", "at"], found
    assert "peaked at 247.5 MB" in found[2]
    assert memory_findings(t, flat, limits) == []
    assert memory_findings(t, growing, MemoryLimits()) == []


def _command_run(tmp_path, t, mb, *, test=None):
    """A command (or a pytest body) run without a browser: one role sweep of a script."""
    extra = {"workload": "command",
             "config": {"command": ["python3"], **({"test": test} if test else {})}}
    run = read_run(write_run(tmp_path / "run", t, mb, ops_every_s=1e9, run_extra=extra,
                             cleanup=CLEAN_CLEANUP))
    return replace(run, roles=[RoleSweep(1.0, {"script": RoleTotals(processes=1)})])


def test_a_short_command_without_a_browser_is_judged_on_its_own_start(tmp_path):
    """A 20 s command keeping 2 MB/s is over the budget (a command's start-up is its imports,
    not a browser's 45 s); a clean 20 s twin is within it."""
    t = np.arange(0, 20, 0.5)
    rng = np.random.default_rng(3)
    leak = analyze(_command_run(tmp_path / "a", t, 50 + 2 * t + rng.normal(0, 0.05, len(t))))
    assert leak.verdict.workload_kind == "command"
    assert leak.verdict.outcome == "over" and leak.exit_code == 1, leak.verdict.reasons
    assert not any("browser" in line for line in leak.recommendations), leak.recommendations
    clean = analyze(_command_run(tmp_path / "b", t, 50 + rng.normal(0, 0.05, len(t))))
    assert clean.verdict.outcome == "within" and clean.exit_code == 0


def test_a_short_browser_run_is_over_only_when_no_start_up_explains_it(tmp_path):
    """A 30 s screenshot run: 5 MB/s from its start is over the budget (more than any
    Chromium start-up on the corpus); 0.5 MB/s, as a start-up climbs, is inconclusive, with
    the minutes a browser run needs."""
    t = np.arange(0, 30, 0.5)
    steep = analyze(read_run(write_run(tmp_path / "a", t, 200 + 5 * t, cleanup=CLEAN_CLEANUP)))
    assert steep.verdict.workload_kind == "browser"
    assert steep.verdict.outcome == "over", steep.verdict.reasons
    assert "from the start" in steep.verdict.reasons[-1]
    climb = analyze(read_run(write_run(tmp_path / "b", t, 200 + 0.5 * t,
                                       cleanup=CLEAN_CLEANUP)))
    assert climb.verdict.outcome == "inconclusive" and climb.exit_code == 0
    assert climb.verdict.minutes_needed == 2, climb.verdict.reasons


def test_a_browser_with_a_lean_driver_is_judged_after_a_shorter_start_up(tmp_path):
    """A 70 s screenshot run whose floor climbs for 15 s and is level after: with its
    Playwright driver's young generation kept at 1 MB (run.json env.node_semi_space_mb, as
    the built-in workload starts it), 20 s are cut and it is within the budget; the same
    samples with Node's default driver lose 45 s and cannot tell."""
    t = np.arange(0, 70, 0.5)
    floor = 200 + np.minimum(t, 15.0)
    lean = analyze(read_run(write_run(tmp_path / "a", t, floor, cleanup=CLEAN_CLEANUP,
                                      run_extra={"env": {"node_semi_space_mb": 1}})))
    assert lean.verdict.outcome == "within", lean.verdict.reasons
    default = analyze(read_run(write_run(tmp_path / "b", t, floor, cleanup=CLEAN_CLEANUP,
                                         run_extra={"env": {"node_semi_space_mb": None}})))
    assert default.verdict.outcome == "inconclusive", default.verdict.reasons
    assert LEAN_DRIVER_BROWSER.cut_s < lean.verdict.warmup_cut_s < BROWSER.cut_s


def test_memory_is_judged_on_anon_read_on_the_full_records_only(tmp_path):
    """The sampler reads memory.stat (anon) on about two samples in three; the working set on
    every one. A clean anon floor is judged on anon, not on a working set whose active file
    cache grows 0.2 MB/s."""
    t = np.arange(0, 300, 0.5)
    run_dir = write_run(tmp_path / "run", t, np.full(t.size, 300.0), cleanup=CLEAN_CLEANUP)
    records = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    for i, record in enumerate(records):
        record["working_set"] += int(0.2 * record["t"] * 2**20)
        if i % 3 == 2:  # a fast sample: no memory.stat
            record["anon"] = record["file"] = record["inactive_file"] = None
    (run_dir / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    res = analyze(read_run(run_dir))
    assert res.verdict.signal == "anon" and res.verdict.outcome == "within", res.verdict


def test_a_test_body_is_judged_as_a_test_body(tmp_path):
    """The plugin's runs (config.test) are judged with a test body's start-up: 3 s of
    50 MB/s is over the budget, as the plugin says and `sandbox report` must say too."""
    t = np.arange(0, 3, 0.05)
    res = analyze(_command_run(tmp_path, t, 100 + 50 * t, test="t.py::test_x"))
    assert res.verdict.workload_kind == "test body" and res.verdict.outcome == "over"


def test_too_short_is_said_up_front_with_the_duration_needed():
    from sandbox.analysis.budget import DEFAULT_BUDGET, too_short

    line = too_short("screenshot", 20, DEFAULT_BUDGET, 30)
    needed = int(BROWSER.shortest_s(0.1)) + 1
    assert f"needs {needed} s at least (--duration {needed}s)" in line
    assert too_short("screenshot", 600, DEFAULT_BUDGET, 30) is None
    lean = int(LEAN_DRIVER_BROWSER.shortest_s(0.1)) + 1  # the built-in workload's driver
    assert lean < needed
    assert f"needs {lean} s" in too_short("screenshot", 20, DEFAULT_BUDGET, 30, 1)
    assert too_short("screenshot", lean, DEFAULT_BUDGET, 30, 1) is None
    assert "command needs" in too_short("command", 5, DEFAULT_BUDGET, None)
    assert "starts a browser" in too_short("command", 30, DEFAULT_BUDGET, None)
    assert too_short("command", 300, DEFAULT_BUDGET, None) is None
