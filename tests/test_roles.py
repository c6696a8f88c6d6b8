"""Process roles (sampler.roles, analysis.roles): Chromium's processes by --type, the driver,
the script; and a real run whose Python script keeps memory names the script's role as the
one that grows, while its clean twin names none."""

from __future__ import annotations

import json
import sys

from sandbox.sampler.roles import classify, sweep

from .cli_helpers import only_run_dir, report_of, start_sandbox

KEEPER = ("import time\nkeep = []\nfor _ in range(400):\n"
          "    keep.append(bytearray(b'k' * 100_000))\n    time.sleep(0.1)\n")
IDLE = "import time\ntime.sleep(40)\n"


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
    assert row["processes"] == 1 and row["pss"] > 10 * 2**20 and row["fds"] > 2
    assert row["threads"] >= 1 and row["uss"] <= row["rss"]


def test_the_growing_role_is_named(needs_cgroups, runs_dir):
    """1 MB/s kept by the driving Python: over budget, and the finding names ``script``; the
    idle twin's roles are all within the budget."""
    dirs = {"keeper": runs_dir / "keeper", "idle": runs_dir / "idle"}
    procs = {name: start_sandbox("run", "--duration", "40s", "--role-interval", "2",
                                 "--no-progress", "-q", "--runs-dir", str(path), "--",
                                 sys.executable, "-c", KEEPER if name == "keeper" else IDLE)
             for name, path in dirs.items()}
    for proc in procs.values():
        proc.communicate(timeout=180)
    keeper = report_of(dirs["keeper"])
    assert keeper["exit_code"] == 1, keeper["findings"]
    trend = next(f for f in keeper["findings"] if f["check"] == "trend")
    assert "grows most: script" in trend["message"], trend
    roles = {g["role"]: g for g in keeper["roles"]}
    assert roles["script"]["outcome"] == "over" and 0.6 < roles["script"]["rate_mb_s"] < 1.4
    idle = report_of(dirs["idle"])
    assert idle["roles"] and all(g["outcome"] != "over" for g in idle["roles"]), idle["roles"]
    sweeps = (only_run_dir(dirs["keeper"]) / "roles.jsonl").read_text().splitlines()
    assert len(sweeps) >= 15 and "script" in json.loads(sweeps[-1])["roles"]
    assert "Where the memory goes" in (only_run_dir(dirs["keeper"]) / "report.html").read_text()


def test_pages_left_open_name_the_renderer(needs_cgroups, needs_chromium, runs_dir):
    """A user's Playwright script that leaves every other page (and its context) open: the
    renderer role is the one that grows."""
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "bench/corpus_scripts/user_screenshots.py"
    # sweeps of ~30 Chromium processes cost ~60 ms: held to 1% of a core, one every ~6 s
    proc = start_sandbox("run", "--duration", "120s", "--role-interval", "2", "--no-progress",
                         "-q", "--runs-dir", str(runs_dir), "--", sys.executable, str(script),
                         "--duration", "100", "--ops-per-minute", "30", "--context", "fresh",
                         "--leak", "pages", "--pages-every", "3")
    out, err = proc.communicate(timeout=240)
    report = report_of(runs_dir)
    assert report["exit_code"] == 1, (out, err, report["findings"])
    roles = {g["role"]: g for g in report["roles"]}
    assert report["roles"][0]["role"] == "renderer", report["roles"]
    assert roles["renderer"]["outcome"] == "over" and roles["renderer"]["processes"] >= 10
    trend = next(f for f in report["findings"] if f["check"] == "trend")
    assert "grows most: renderer" in trend["message"], trend
