"""report.html: a heading that says what ran where and when, a plot of the workload's window
only (teardown is not data) with round ticks, the budget line, the rate's interval and the
process count on an axis of its own, human labels, the live alerts; checked in headless
Chromium."""

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest

from sandbox.analysis import analyze
from sandbox.report import write_all
from sandbox.report.plot import plot_data
from sandbox.runreader import read_run
from tests.synthetic import series, write_run

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def _run_with_teardown(path: Path) -> Path:
    """A 600 s leaking run whose slice empties in 20 s after its last operation, and two
    live alerts."""
    t, y = series(np.random.default_rng(5), 600, leak_mb_s=0.15, noise_sd=5)
    teardown = t > 580
    y[teardown] = np.linspace(y[~teardown][-1], 0.0, teardown.sum())
    clean = {"process_cleanup": {"orphaned_browser_processes": []},
             "file_cleanup": {"remaining_temp_files": []}, "escapes": [],
             "cleanup_successful": True}
    run_dir = write_run(path, t, y, cleanup=clean, run_extra={
        "started": time.time(), "host": {"hostname": "lab-3"},
        "config": {"scenario": "endurance"}})
    ops = [json.loads(line) for line in (run_dir / "operations.jsonl").read_text().splitlines()]
    (run_dir / "operations.jsonl").write_text(
        "".join(json.dumps(o) + "\n" for o in ops if o["t"] < 575))
    (run_dir / "alerts.jsonl").write_text("".join(json.dumps(
        {"t": 100.0 + i, "wall": 0, "kind": "growth_rate", "severity": "warning",
         "value": 0.2, "limit": 0.1, "unit": "MB/s",
         "message": f"working set growing 0.2 MB/s over the last 30 s ({i})"}) + "\n"
        for i in range(2)))
    return run_dir


def test_teardown_is_not_drawn(tmp_path):
    result = analyze(read_run(_run_with_teardown(tmp_path / "run")))
    data = plot_data(result)
    assert data.t.max() <= 575.5
    assert np.nanmin(data.memory["anon"]) > 250  # no dive to 0
    assert data.processes is not None


def _round_ticks(labels: list[str]) -> bool:
    """Tick labels that step by 1, 2, 2.5 or 5 times a power of ten, each a multiple of it."""
    values = sorted(float(x.replace("\u2212", "-")) for x in labels if x)
    if len(values) < 2:
        return True
    step = min(b - a for a, b in zip(values, values[1:], strict=False))
    mantissa = step / 10 ** math.floor(math.log10(step))
    return any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5)) and all(
        math.isclose(v / step, round(v / step), abs_tol=1e-6) for v in values)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed")
def test_html_in_headless_chromium(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    run_dir = _run_with_teardown(tmp_path / "run")
    html = write_all(analyze(read_run(run_dir)), run_dir, ["html"])[0]
    text = html.read_text()
    assert "slope_mb_per_second" not in text and "cleanup_successful" not in text
    shot = run_dir / "report.png"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(html.as_uri())
            heading = page.locator("h1").inner_text() + " " + page.locator(
                "#run-facts").inner_text()
            plot = page.locator("svg#memory-plot")
            box = plot.bounding_box()
            ids = set(page.eval_on_selector_all("svg#memory-plot [id]",
                                                "els => els.map(e => e.id)"))
            ticks = {f"{axes} {xy}": page.locator(
                f"svg#memory-plot g#{axes} g[id^={xy}tick] text").all_text_contents()
                for axes in ("axes_1", "processes") for xy in "xy"}
            alerts = page.locator("h2:has-text('Live alerts') + p").inner_text()
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert "endurance" in heading and "FAIL" in heading and "lab-3" in heading
    assert time.strftime("%Y-%m-%d", time.gmtime()) in heading
    assert box is not None and box["width"] > 800 and box["height"] > 400
    assert {"series-anon", "trend-fit", "budget-line", "rate-interval", "startup-cut",
            "processes", "series-processes"} <= ids, ids
    assert sum(map(len, ticks.values())) >= 12, ticks
    assert all(_round_ticks(labels) for labels in ticks.values()), ticks
    assert "growth_rate (warning): 2" in alerts
    assert shot.stat().st_size > 30_000
