"""Process roles (sampler.roles, analysis.roles): Chromium's processes by --type, the driver,
the script; and a real run whose Python script keeps memory names the script's role as the
one that grows, while its clean twin names none."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from sandbox.model.role_sweep import RoleSweep, RoleTotals
from sandbox.sampler.roles import classify, sweep

from .cli_helpers import only_run_dir, report_of, start_sandbox

KEEPER = ("import time\nkeep = []\nfor _ in range(400):\n"
          "    keep.append(bytearray(b'k' * 100_000))\n    time.sleep(0.1)\n")
IDLE = "import time\ntime.sleep(120)\n"
FD_KEEPER = ("import time\nkept = []\nfor _ in range(200):\n"
             "    kept.append(open('/dev/null'))\n    time.sleep(1)\n")
THREAD_KEEPER = ("import threading, time\nstop = threading.Event()\nfor _ in range(200):\n"
                 "    threading.Thread(target=stop.wait, daemon=True).start()\n"
                 "    time.sleep(1)\n")
BODIES = {"keeper": KEEPER, "idle": IDLE, "fds": FD_KEEPER, "threads": THREAD_KEEPER,
          "keeper-rss": KEEPER}
#: memory (PSS) sweeps every 2 s; "keeper-rss" keeps the default (10 s): too few PSS sweeps in
#: 60 s, so its roles are judged on the RSS every 2 s sweep reads
ROLE_INTERVALS = {name: ("--role-interval", "2") for name in BODIES if name != "keeper-rss"}


@pytest.fixture(scope="module")
def command_runs(facts):
    """Five 60 s command runs side by side (little CPU each): two keep 1 MB/s in Python
    (40 s, then they end; one with PSS sweeps every 2 s, one every 10 s), one keeps an open
    file per second, one a thread per second, and their idle twin. name -> report.json."""
    if os.geteuid() != 0 or facts.cgroup.mode == "none":
        pytest.skip("needs root and a cgroup hierarchy")
    root = Path("/var/tmp") / f"sandbox-tests-roles-{os.getpid()}"
    root.mkdir(mode=0o755)
    dirs = {name: root / name for name in BODIES}
    procs = {name: start_sandbox("run", "--duration", "60s", *ROLE_INTERVALS.get(name, ()),
                                 "--no-progress", "-q", "--runs-dir", str(dirs[name]), "--",
                                 sys.executable, "-c", body) for name, body in BODIES.items()}
    for proc in procs.values():
        proc.communicate(timeout=240)
    yield {name: (report_of(path), only_run_dir(path)) for name, path in dirs.items()}
    shutil.rmtree(root, ignore_errors=True)


def test_classify_chromium_driver_script():
    chrome = "/usr/lib/chromium/chromium"
    assert classify([chrome, "--headless"]) == "browser"
    assert classify([f"{chrome} --type=renderer --lang=en-US"]) == "renderer"  # rewritten title
    assert classify([chrome, "--type=gpu-process"]) == "gpu"
    assert classify([chrome, "--type=utility",
                     "--utility-sub-type=network.mojom.NetworkService"]) == "network"
    assert classify([chrome, "--type=utility",
                     "--utility-sub-type=storage.mojom.StorageService"]) == "utility"
    assert classify([chrome, "--type=zygote"]) == "zygote"
    assert classify(["/usr/lib/chromium/chrome_crashpad_handler", "--monitor-self"]) == "crashpad"
    assert classify(["/venv/lib/playwright/driver/node", "/venv/lib/playwright/driver/package/"
                     "cli.js", "run-driver"]) == "driver"
    assert classify(["/usr/bin/python3.11", "script.py"]) == "script"
    assert classify(["sh", "-c", "x"], is_main=True) == "script"
    assert classify(["sleep", "9"]) == "other"


def test_sweep_sums_this_process():
    import os

    roles = sweep([os.getpid()], {os.getpid()})
    row = roles["script"]
    assert row.processes == 1 and row.pss > 10 * 2**20 and row.fds > 2
    assert row.threads >= 1 and row.uss <= row.rss
    count = sweep([os.getpid()], {os.getpid()}, memory=False)["script"]
    assert count.pss is None and count.rss > 10 * 2**20


@pytest.mark.slow  # two 3-minute Chromium runs: pytest -m slow tests/test_roles.py
def test_pages_left_open_name_the_renderer(needs_cgroups, needs_chromium, runs_dir):
    """A user's Playwright script that leaves every third page (and its context) open: the
    renderer role is the one that grows; its clean twin (every page closed), run alongside,
    has no role over the budget."""
    script = Path(__file__).resolve().parent.parent / "bench/corpus_scripts/user_screenshots.py"
    # memory sweeps of two Chromiums' processes cost ~100 ms: held to 1% of a core, one
    # every ~10 s, so the runs are long enough for 8 windows after the start-up cut
    procs = {
        name: start_sandbox("run", "--duration", "200s", "--role-interval", "5",
                            "--no-progress", "-q", "--runs-dir", str(runs_dir / name), "--",
                            sys.executable, str(script), "--duration", "180",
                            "--ops-per-minute", "30", "--context", "fresh", *leak)
        for name, leak in (("pages", ("--leak", "pages", "--pages-every", "3")), ("clean", ()))}
    for proc in procs.values():
        proc.communicate(timeout=300)
    report = report_of(runs_dir / "pages")
    assert report["exit_code"] == 1, report["findings"]
    roles = {g["role"]: g for g in report["roles"]}
    assert roles["renderer"]["outcome"] == "over" and roles["renderer"]["processes"] >= 10
    fastest = max((g for g in report["roles"] if g["rate_mb_s"] is not None),
                  key=lambda g: g["rate_mb_s"])
    assert fastest["role"] == "renderer", report["roles"]
    trend = next(f for f in report["findings"] if f["check"] == "trend")
    assert "grows most: renderer" in trend["message"], trend
    clean = report_of(runs_dir / "clean")
    assert clean["exit_code"] == 0, clean["findings"]
    assert clean["roles"] and all(g["outcome"] != "over" for g in clean["roles"]), clean["roles"]


def test_the_growing_role_is_named(command_runs):
    """1 MB/s kept by the driving Python: over budget, and the finding names ``script``; the
    idle twin's roles are all within the budget."""
    keeper, keeper_dir = command_runs["keeper"]
    assert keeper["exit_code"] == 1, keeper["findings"]
    trend = next(f for f in keeper["findings"] if f["check"] == "trend")
    assert "grows most: script" in trend["message"], trend
    roles = {g["role"]: g for g in keeper["roles"]}
    assert roles["script"]["outcome"] == "over" and 0.6 < roles["script"]["rate_mb_s"] < 1.4
    idle, _ = command_runs["idle"]
    assert idle["roles"] and all(g["outcome"] != "over" for g in idle["roles"]), idle["roles"]
    sweeps = (keeper_dir / "roles.jsonl").read_text().splitlines()
    assert len(sweeps) >= 15 and "script" in json.loads(sweeps[-1])["roles"]
    assert "Where the memory goes" in (keeper_dir / "report.html").read_text()


def test_too_few_pss_sweeps_judge_the_role_on_rss(command_runs):
    """At the default memory-sweep interval a 60 s run has too few PSS sweeps for a growth
    estimate: the script's role is judged on the RSS of the 2 s sweeps, and says so."""
    keeper, keeper_dir = command_runs["keeper-rss"]
    assert keeper["exit_code"] == 1, keeper["findings"]
    roles = {g["role"]: g for g in keeper["roles"]}
    assert roles["script"]["measure"] == "rss", roles["script"]
    assert roles["script"]["outcome"] == "over" and 0.6 < roles["script"]["rate_mb_s"] < 1.4
    trend = next(f for f in keeper["findings"] if f["check"] == "trend")
    assert "grows most: script" in trend["message"] and "(RSS)" in trend["message"], trend
    sweeps = [json.loads(line) for line in (keeper_dir / "roles.jsonl").read_text().splitlines()]
    assert sum("pss" in s["roles"]["script"] for s in sweeps if "script" in s["roles"]) <= 8
    assert all("rss" in row for s in sweeps for row in s["roles"].values())


def test_role_growth_prefers_pss_and_reads_old_sweeps():
    """Enough PSS sweeps: judged on PSS. Count sweeps without ``rss`` (run directories of
    before roles format 2) still give counts, and the PSS judgement."""
    from sandbox.analysis.budget import Budget
    from sandbox.analysis.roles import role_growth

    mb = 2**20
    sweeps = []
    for i in range(150):  # 300 s, a sweep every 2 s, PSS every 10 s; 0.5 MB/s kept
        row = RoleTotals(processes=1, fds=5, threads=2)
        if i % 5 == 0:
            row.pss, row.uss, row.rss = (50 + i) * mb, (40 + i) * mb, (60 + i) * mb
        sweeps.append(RoleSweep(t=2.0 * i, roles={"script": row}))
    (g,) = role_growth(sweeps, (0, 300), 2.0, Budget(0.1))
    assert g.measure == "pss" and g.outcome == "over" and 0.4 < g.rate_mb_s < 0.6
    assert g.fds == 5 and g.pss_first_mb is not None


def test_a_role_only_rss_sweeps_saw_is_judged_on_its_rss():
    """A role that no PSS sweep found (its processes lived between them) has no PSS series:
    it is judged on RSS, beside a role judged on PSS (the clean-clone CI once
    crashed here with a broadcast error)."""
    from sandbox.analysis.budget import Budget
    from sandbox.analysis.roles import role_growth

    mb = 2**20
    sweeps = []
    for i in range(150):
        rows = {"script": RoleTotals(processes=1, fds=5, threads=2, rss=60 * mb)}
        if i % 5 == 0:
            rows["script"].pss, rows["script"].uss = 50 * mb, 40 * mb
        else:
            rows["utility"] = RoleTotals(processes=1, fds=3, threads=1, rss=(10 + i) * mb)
        sweeps.append(RoleSweep(t=2.0 * i, roles=rows))
    growth = {g.role: g for g in role_growth(sweeps, (0, 300), 2.0, Budget(0.1))}
    assert growth["script"].measure == "pss" and growth["script"].outcome == "within"
    utility = growth["utility"]
    assert utility.measure == "rss" and utility.pss_first_mb is None, utility
    assert utility.processes == 1 and utility.rate_mb_s > 0.1, utility


@pytest.mark.parametrize("name", ["fds", "threads"])
def test_fd_and_thread_growth_are_found(command_runs, name):
    report, _ = command_runs[name]
    assert report["exit_code"] == 2, report["findings"]
    (found,) = [f for f in report["findings"] if f["check"] == name]
    assert found["level"] == "warning" and "keep growing: 1" in found["message"], found
    other = "threads" if name == "fds" else "fds"
    assert not [f for f in report["findings"] if f["check"] == other]


def test_the_idle_twin_is_quiet(command_runs):
    idle, _ = command_runs["idle"]
    assert idle["exit_code"] == 0, idle["findings"]
