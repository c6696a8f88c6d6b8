"""Options and output through the real CLI (issue 26): one way to give a unit, one way to ask
for JSON, flags shown as flags, CI logs unwrapped, a command run without browser rows, live
runs listed, permission problems in one line, inconclusive verdicts naming the minutes."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import replace
from html import escape as html_escape
from pathlib import Path

import numpy as np
import pytest

from sandbox.analysis import analyze
from sandbox.report.common import LEGACY_NOTE, minutes_needed
from sandbox.runreader import read_run
from sandbox.scenarios import JS_HEAP_INTERVAL_S, load_file
from tests.cli_helpers import only_run_dir, start_sandbox
from tests.synthetic import series, write_run

#: what an inconclusive verdict says in every format (report.common.minutes_needed)
MINUTES = re.compile(r"run about \d+ min|longer than a day|the minutes needed could not be "
                     r"estimated")
CLEAN = {"cleanup_successful": True}


def sandbox(*args: str, as_nobody: bool = False, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess:
    prefix = []
    if as_nobody:
        if not shutil.which("setpriv"):
            pytest.skip("setpriv not installed")
        prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    return subprocess.run([*prefix, sys.executable, "-m", "sandbox", *args], capture_output=True,
                          text=True, timeout=120, check=False, env=env)


def synthetic_run(path: Path, seed: int = 1, **kw) -> Path:
    t, y = series(np.random.default_rng(seed), 120)
    return write_run(path, t, y, cleanup=kw.pop("cleanup", CLEAN), **kw)


def test_help_shows_flags_as_flags_and_the_bare_unit():
    wide = {**os.environ, "COLUMNS": "250"}
    for args in ([], ["run"], ["report"], ["compare"], ["runs", "list"]):
        out = sandbox(*args, "--help", env=wide)
        assert out.returncode == 0, out.stderr
        assert "<bool>" not in out.stdout and "<int>" not in out.stdout, out.stdout
    run_help = sandbox("run", "--help", env=wide).stdout
    for option, unit in (("--sample-interval", "seconds"), ("--role-interval", "seconds"),
                         ("--grace", "seconds"), ("--js-heap-interval", "seconds"),
                         ("--alert-threshold", "MB"), ("--inject-rate", "MB"),
                         ("--tmp-size", "bytes")):
        line = next(line for line in run_help.splitlines()
                    if re.search(rf"{option}(?![-\w])", line))
        assert f"a bare number is {unit}" in line, line
    cli = (Path(__file__).parent.parent / "sandbox" / "cli.py").read_text()
    assert "typer._" not in cli  # no private module of typer


@pytest.mark.parametrize(("args", "message"), [
    (["--sample-interval", "20s"], "sample interval must be 0.01-10 s"),
    (["--sample-interval", "11"], "sample interval must be 0.01-10 s"),  # bare: seconds
    (["--role-interval", "500ms"], "role interval must be 1-600 s"),
    (["--grace", "11m"], "grace period must be 0-600 s"),
    (["--alert-threshold", "512K"], "alert threshold must be >= 1 MB"),
    (["--alert-threshold", "0.5"], "alert threshold must be >= 1 MB"),  # bare: MB
    (["--alert-threshold-mb", "0.5"], "alert threshold must be >= 1 MB"),  # the old spelling
    (["--inject-rate", "1K"], "inject rate must be 0.001-1024 MB"),
    (["--inject-rate", "2G"], "inject rate must be 0.001-1024 MB"),
    (["--tmp-size", "512K"], "private tmpfs size must be at least 1 MiB"),
    (["--js-heap", "--js-heap-interval", "2h"], "--js-heap interval must be 1-3600 s"),
    (["--sample-interval", "soon"], "not a duration"),
    (["--alert-threshold", "lots"], "not a size"),
])
def test_units_on_the_command_line(args, message):
    out = sandbox("run", *args, "--duration", "5s")
    assert out.returncode == 3 and out.stderr.count("\n") == 1, out.stderr
    assert message in out.stderr


@pytest.mark.parametrize(("setting", "message"), [
    ('sample_interval = "20s"', "sample interval must be 0.01-10 s"),
    ('role_interval = "500ms"', "role interval must be 1-600 s"),
    ('grace_s = "11m"', "grace period must be 0-600 s"),
    ('alert_threshold_mb = "512K"', "alert threshold must be >= 1 MB"),
    ('inject_rate_mb = "2G"', "inject rate must be 0.001-1024 MB"),
    ('tmp_size = "512K"', "private tmpfs size must be at least 1 MiB"),
    ('js_heap = "2h"', "--js-heap interval must be 1-3600 s"),  # as --js-heap-interval 2h
    ('sample_interval = "soon"', "not a duration"),
    ("sample_interval = true", 'a duration such as "30s"'),
])
def test_units_in_a_scenario_file_mean_the_same(tmp_path, setting, message):
    path = tmp_path / "s.toml"
    path.write_text(f'[scenario.x]\nduration = "1m"\noperations_per_minute = 5\n{setting}\n')
    out = sandbox("run", "--scenario", "x", "--scenario-file", str(path))
    assert out.returncode == 3 and out.stderr.count("\n") == 1, out.stderr
    assert message in out.stderr


def test_scenario_file_values_with_and_without_units(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[scenario.a]\nduration = "1m"\noperations_per_minute = 5\n'
                    'sample_interval = "250ms"\ngrace_s = "1m"\nalert_threshold_mb = "2G"\n'
                    'inject_rate_mb = "512K"\ntmp_size = "64M"\njs_heap = true\n'
                    '[scenario.b]\nduration = 60\noperations_per_minute = 5\n'
                    'sample_interval = 0.25\ngrace_s = 60\nalert_threshold_mb = 2048\n'
                    'inject_rate_mb = 0.5\ntmp_size = 67108864\njs_heap = "30s"\n'
                    '[scenario.c]\nduration = "1m"\noperations_per_minute = 5\njs_heap = false\n')
    a, b, c = (s.settings for s in load_file(path).values())
    assert a["js_heap"] == JS_HEAP_INTERVAL_S and b["js_heap"] == 30 and c["js_heap"] == 0
    a.pop("js_heap"), b.pop("js_heap")
    assert a == b == {"sample_interval": 0.25, "grace_s": 60, "alert_threshold_mb": 2048,
                      "inject_rate_mb": 0.5, "tmp_size": 64 * 2**20}


def test_json_one_way_on_every_data_command(tmp_path):
    base, new = synthetic_run(tmp_path / "runs" / "a", 1), synthetic_run(tmp_path / "runs" / "b", 2)
    listed = sandbox("runs", "list", "--runs-dir", str(tmp_path / "runs"), "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert [json.loads(line)["path"] for line in listed.stdout.splitlines()] == [str(base),
                                                                                 str(new)]
    assert sandbox("runs", "list", "--runs-dir", str(tmp_path / "runs"), "--json").stdout \
        == listed.stdout
    compared = sandbox("compare", str(base), str(new), "--format", "json")
    assert compared.returncode == 0 and json.loads(compared.stdout)["base"] == str(base)
    assert sandbox("compare", str(base), str(new), "--json").stdout == compared.stdout
    both = sandbox("compare", str(base), str(new), "--format", "json,markdown")
    assert both.stdout.startswith(compared.stdout) and "| metric |" in both.stdout
    reported = sandbox("report", str(base), "--format", "json")  # writes report.json
    assert reported.returncode == 0 and (base / "report.json").exists()
    printed = sandbox("report", str(base), "--json")  # prints it, as --format json -o -
    assert json.loads(printed.stdout) == json.loads((base / "report.json").read_text())
    bad = sandbox("runs", "list", "--runs-dir", str(tmp_path / "runs"), "--format", "xml")
    assert bad.returncode == 3 and "unknown format 'xml'" in bad.stderr


def test_ci_log_is_not_wrapped_and_report_o_names_the_files(tmp_path):
    long = "/tmp/x/" + "deep-directory-name/" * 8 + "playwright-artifacts-1"
    cleanup = {"file_cleanup": {"remaining_temp_files": [long], "file_leak_detected": True},
               "cleanup_successful": False, "issues_found": ["1 file"], "escapes": []}
    run_dir = synthetic_run(tmp_path / "run", cleanup=cleanup)
    out = sandbox("report", str(run_dir), "--format", "text,json")
    assert out.returncode == 2, out.stderr
    assert "…" not in out.stdout and long in out.stdout, out.stdout  # a table cell not cut
    assert LEGACY_NOTE in [line.strip() for line in out.stdout.splitlines()]  # one line
    text = (run_dir / "report.txt").read_text()
    assert "…" not in text and LEGACY_NOTE in [line.strip() for line in text.splitlines()]
    out = sandbox("report", str(run_dir), "--format", "text,json,html", "-o", str(tmp_path / "o"))
    assert out.returncode == 2, out.stderr
    assert out.stdout.splitlines() == [f"wrote {tmp_path / 'o' / name}"
                                       for name in ("report.txt", "report.json", "report.html")]


def test_report_to_a_directory_on_a_terminal_names_the_files(tmp_path):
    """``report -o DIR`` with stdout a terminal (a pty) prints one line per file too, not the
    text report (that goes to report.txt)."""
    run_dir = synthetic_run(tmp_path / "run")
    primary, secondary = pty.openpty()
    with subprocess.Popen([sys.executable, "-m", "sandbox", "report", str(run_dir),
                           "--format", "text,json", "-o", str(tmp_path / "o")],
                          stdin=subprocess.DEVNULL, stdout=secondary,
                          stderr=subprocess.PIPE) as proc:
        os.close(secondary)
        shown = b""
        with contextlib.suppress(OSError):  # EIO once the child closed the terminal
            while chunk := os.read(primary, 4096):
                shown += chunk
        os.close(primary)
        assert proc.wait(timeout=60) in (0, 2), proc.stderr.read() if proc.stderr else ""
    assert shown.decode().splitlines() == [f"wrote {tmp_path / 'o' / name}"
                                           for name in ("report.txt", "report.json")]


def test_minutes_wording_is_one_helper(tmp_path):
    verdict = analyze(read_run(synthetic_run(tmp_path / "run"))).verdict
    minutes = (None, 0.2, 12.1, 1439, 1440, 1e9)
    assert [minutes_needed(replace(verdict, minutes_needed=m)) for m in minutes] == [
        "the minutes needed could not be estimated", "run about 1 min", "run about 13 min",
        "run about 1439 min", "longer than a day", "longer than a day"]


def test_short_command_run_is_listed_live_and_shows_only_what_applies(needs_cgroups, runs_dir):
    """A 5 s command run: listed RUNNING while it runs; its reports have no operations, no
    js_heap or operations case; inconclusive names the minutes in every format; the units
    given reach run.json."""
    proc = start_sandbox("run", "--duration", "5s", "--sample-interval", "250ms",
                         "--role-interval", "2s", "--grace", "1", "--alert-threshold", "512M",
                         "--tmp-size", "64M", "--no-progress", "--runs-dir", str(runs_dir),
                         "--", "sleep", "30")
    try:
        deadline = time.monotonic() + 30
        while not list(runs_dir.glob("*/samples.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.2)
        live = sandbox("runs", "list", "--runs-dir", str(runs_dir), "--json")
        assert [json.loads(line)["status"] for line in live.stdout.splitlines()] == ["RUNNING"]
    finally:
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    run_dir = only_run_dir(runs_dir)
    config = json.loads((run_dir / "run.json").read_text())["config"]
    assert (config["sample_interval"], config["role_interval"], config["grace_s"],
            config["alert_threshold_mb"], config["tmp_size"]) == (0.25, 2, 1, 512, 64 * 2**20)
    done = sandbox("runs", "list", "--runs-dir", str(runs_dir), "--json")
    assert json.loads(done.stdout)["status"] == "INCONCLUSIVE"
    report = json.loads((run_dir / "report.json").read_text())
    assert report["status"] == "INCONCLUSIVE" and report["legacy_note"] == LEGACY_NOTE
    assert "minutes_needed" in report["verdict"]
    text = (run_dir / "report.txt").read_text()
    html = (run_dir / "report.html").read_text()
    markdown = (run_dir / "report.md").read_text()
    for rendered in (text, html, markdown):
        assert MINUTES.search(rendered), rendered
        assert "Operations" not in rendered and "| operations |" not in rendered
        assert "latency" not in rendered
    assert "n/a</td>" not in html.split("a run that would tell")[1][:40]
    assert html_escape(LEGACY_NOTE) in html and LEGACY_NOTE in text
    cases = [c.get("name") for c in ET.parse(run_dir / "junit.xml").iter("testcase")]
    assert "operations" not in cases and "js_heap" not in cases and "trend" in cases
    skipped = ET.parse(run_dir / "junit.xml").find(".//testcase[@name='trend']/skipped")
    assert MINUTES.search(skipped.get("message"))


def test_a_run_whose_harness_died_is_listed_interrupted(tmp_path):
    synthetic_run(tmp_path / "runs" / "done")
    dead = synthetic_run(tmp_path / "runs" / "dead", cleanup=None)  # no cleanup.json
    assert not (dead / "cleanup.json").exists()
    env = {**os.environ, "SANDBOX_STATE_DIR": str(tmp_path / "state")}
    (tmp_path / "state").mkdir()
    out = sandbox("runs", "list", "--runs-dir", str(tmp_path / "runs"), "--json", env=env)
    statuses = {Path(r["path"]).name: r["status"]
                for r in map(json.loads, out.stdout.splitlines())}
    assert statuses == {"done": "no report", "dead": "INTERRUPTED"}


def test_permission_problems_are_one_line_and_exit_3():
    top = Path(tempfile.mkdtemp(prefix="sandbox-perm-", dir="/var/tmp"))
    try:
        top.chmod(0o755)
        run_dir = synthetic_run(top / "run")
        for path in (run_dir, *run_dir.iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)
        out = sandbox("report", str(run_dir), as_nobody=True)
        assert out.returncode == 3 and out.stderr.count("\n") == 1, out.stderr
        assert "cannot write reports to" in out.stderr and "internal error" not in out.stderr
        out = sandbox("report", str(run_dir), "-o", str(top / "new"), as_nobody=True)
        assert out.returncode == 3 and out.stderr.count("\n") == 1, out.stderr
        out = sandbox("cleanup", as_nobody=True)
        assert out.returncode == 3 and out.stderr.count("\n") == 1, out.stderr
        assert "must run as root" in out.stderr
    finally:
        shutil.rmtree(top)
