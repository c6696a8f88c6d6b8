"""The verdict is judged on settle points when the run has enough of them (issue 27): a command
that calls sandbox.checkpoint() twice a second gets a verdict measured on its settle points
(over the budget when it keeps 1 MB per checkpoint, within when it keeps nothing), and the same
program without checkpoints is judged on its floors as before. Real runs, at once; and (slow,
real Chromium) a user's Playwright script settling after every screenshot."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from .cli_helpers import report_of, start_sandbox

USER_SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "corpus_scripts" / \
    "user_screenshots.py"

#: argv[1]: keep (1 MB kept per point) or drop; argv[2]: checkpoint or not. 20 s.
PROGRAM = """
import sys, time
from sandbox import checkpoint
kept = []
for i in range(36):
    block = b"x" * (1 << 20)
    if sys.argv[1] == "keep":
        kept.append(block)
    del block
    if sys.argv[2] == "checkpoint":
        checkpoint(f"point {i}")
    time.sleep(0.55)
"""


def test_settle_points_judge_the_run_when_there_are_enough(needs_cgroups, runs_dir):
    script = Path("/var/tmp") / f"settled-{os.getpid()}.py"
    script.write_text(PROGRAM)
    script.chmod(0o644)
    shapes = {"keep-settled": ("keep", "checkpoint"), "drop-settled": ("drop", "checkpoint"),
              "drop-floors": ("drop", "none")}
    try:
        procs = {name: start_sandbox("run", "--duration", "40s", "--no-progress", "-q",
                                     "--runs-dir", str(runs_dir / name), "--",
                                     sys.executable, str(script), *argv)
                 for name, argv in shapes.items()}
        codes = {name: proc.wait(timeout=180) for name, proc in procs.items()}
    finally:
        script.unlink()
    verdicts = {name: report_of(runs_dir / name)["verdict"] for name in shapes}
    assert codes == {"keep-settled": 1, "drop-settled": 0, "drop-floors": 0}, verdicts
    for name in ("keep-settled", "drop-settled"):
        assert verdicts[name]["measured_on"] == "settle points", verdicts[name]
        assert verdicts[name]["settle_points"] >= 20, verdicts[name]
    assert verdicts["keep-settled"]["outcome"] == "over"
    assert 1.4 < verdicts["keep-settled"]["slope_mb_per_second"] < 2.2
    assert verdicts["drop-settled"]["outcome"] == "within"
    floors = verdicts["drop-floors"]
    assert (floors["measured_on"], floors["settle_points"], floors["outcome"]) == (
        "floors", 0, "within"), floors


@pytest.mark.slow
def test_user_playwright_script_settling_every_screenshot_is_judged_on_them(
        needs_cgroups, needs_chromium, runs_dir):
    """sandbox.settle(browser) after every screenshot (24/min, 80 s) gives a verdict measured on
    its settle points; the same script without settling is judged on its floors."""
    procs = {}
    for name, every in (("settled", "1"), ("plain", "0")):
        procs[name] = start_sandbox(
            "run", "--duration", "110s", "--no-progress", "-q", "--runs-dir",
            str(runs_dir / name), "--", sys.executable, str(USER_SCRIPT), "--duration", "80",
            "--ops-per-minute", "24", "--context", "reuse", "--settle-every", every)
        procs[name].wait(timeout=300)  # one browser at a time
    verdicts = {name: report_of(runs_dir / name)["verdict"] for name in procs}
    assert verdicts["settled"]["measured_on"] == "settle points", verdicts["settled"]
    assert verdicts["settled"]["settle_points"] >= 20, verdicts["settled"]
    assert verdicts["plain"]["measured_on"] == "floors", verdicts["plain"]
    assert {v["outcome"] for v in verdicts.values()} <= {"within", "inconclusive"}, verdicts
