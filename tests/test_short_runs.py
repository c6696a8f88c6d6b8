"""Short runs are judged for what their workload is (issue 24): a 20 s command keeping 2 MB/s
is over the budget (exit 1) and its clean twins (`sleep 30`, a 20 s Python loop allocating and
freeing) are not (exit 0), each judged with a command's start-up, not a browser's 45 s; a 20 s
run of the built-in screenshot workload says before it starts that it is too short, with the
duration that would do (64 s: its driver's start-up is the lean one). Four real runs at once."""

from __future__ import annotations

import math

from sandbox.analysis.budget import LEAN_DRIVER_BROWSER

from .cli_helpers import report_of, start_sandbox

#: argv[1] = keep (2 MB/s kept) or drop (the same allocated and freed), for 20 s.
LOOP = """
import sys, time
kept, start = [], time.monotonic()
for i in range(40):
    block = b"x" * (1 << 20)
    if sys.argv[1] == "keep":
        kept.append(block)
    del block
    time.sleep(max(0.0, start + (i + 1) / 2 - time.monotonic()))
"""


def test_short_runs_are_judged_for_their_kind(needs_cgroups, needs_chromium, runs_dir):
    commands = {"keep": ["python3", "-c", LOOP, "keep"], "drop": ["python3", "-c", LOOP, "drop"],
                "sleep": ["sleep", "30"]}
    procs = {name: start_sandbox("run", "--duration", "40s", "--no-progress", "-q",
                                 "--runs-dir", str(runs_dir / name), "--", *argv)
             for name, argv in commands.items()}
    procs["site"] = start_sandbox("run", "--duration", "20s", "--no-progress",
                                  "--runs-dir", str(runs_dir / "site"))
    out = {name: proc.communicate(timeout=240) for name, proc in procs.items()}
    codes = {name: proc.returncode for name, proc in procs.items()}
    findings = {name: report_of(runs_dir / name)["findings"] for name in procs}
    assert codes == {"keep": 1, "drop": 0, "sleep": 0, "site": 0}, findings
    keep = report_of(runs_dir / "keep")["verdict"]
    assert (keep["workload_kind"], keep["outcome"]) == ("command", "over"), keep
    assert 1.6 < keep["slope_mb_per_second"] < 2.4, keep
    for name in ("drop", "sleep"):
        verdict = report_of(runs_dir / name)["verdict"]
        assert (verdict["workload_kind"], verdict["outcome"]) == ("command", "within"), verdict
    assert "a 20 s run of the screenshot workload is too short" in out["site"][1], out["site"][1]
    needed = math.ceil(LEAN_DRIVER_BROWSER.shortest_s(0.1))  # the built-in's lean driver: 64 s
    assert f"(--duration {needed}s)" in out["site"][1]
    site = report_of(runs_dir / "site")
    assert site["status"] == "INCONCLUSIVE" and site["verdict"]["minutes_needed"] == 2, site
