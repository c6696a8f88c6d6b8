"""--js-heap: the JS heap and DOM nodes of the long-lived pages after a forced GC over the
DevTools protocol, as a series of their own; a page that keeps arrays in JS is found, and the
clean twin (the watch page alone) is quiet. Two real Chromium runs, side by side."""

from __future__ import annotations

import json

from .cli_helpers import only_run_dir, report_of, start_sandbox

SCENARIOS = """
[scenario.heap]
description = "a long-lived page keeps 0.5 MB of JS arrays per screenshot"
duration = "50s"
operations_per_minute = 60
inject = ["heap"]
inject_rate_mb = 0.5
js_heap = 1.0

[scenario.clean]
description = "the watch page alone"
duration = "50s"
operations_per_minute = 60
js_heap = 1.0
"""


def test_js_heap_growth_is_its_own_check(needs_cgroups, needs_chromium, runs_dir):
    scenarios = runs_dir / "scenarios.toml"
    scenarios.write_text(SCENARIOS)
    dirs = {name: runs_dir / name for name in ("heap", "clean")}
    procs = {name: start_sandbox("run", "--scenario", name, "--scenario-file", str(scenarios),
                                 "--runs-dir", str(path), "--no-progress", "-q")
             for name, path in dirs.items()}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode in (0, 1, 2), f"{name}: {err}"
    heap, clean = report_of(dirs["heap"]), report_of(dirs["clean"])
    found = [f for f in heap["findings"] if f["check"] == "js_heap"]
    assert any("JS heap MB" in f["message"] and f["level"] == "warning" for f in found), \
        heap["findings"]
    assert not [f for f in clean["findings"] if f["check"] in ("js_heap", "fds", "threads")], \
        clean["findings"]
    lines = (only_run_dir(dirs["clean"]) / "jsheap.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert len(lines) >= 15 and first["pages"] == 1 and first["dom_nodes"] > 10, first
