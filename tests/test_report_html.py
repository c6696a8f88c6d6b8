"""report.html renders in headless Chromium with a visible memory plot."""

from pathlib import Path

import numpy as np
import pytest

from sandbox.analysis import analyze
from sandbox.analysis.synthetic import series, write_run
from sandbox.report import write_all
from sandbox.runreader import read_run

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed")
def test_html_screenshot_shows_plot(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    t, y = series(np.random.default_rng(5), 600, leak_mb_s=0.15, noise_sd=5)
    run_dir = write_run(tmp_path / "run", t, y)
    html = write_all(analyze(read_run(run_dir)), run_dir, ["html"])[0]
    shot = run_dir / "report.png"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(html.as_uri())
            box = page.locator("svg#memory-plot").bounding_box()
            n_paths = page.locator("svg#memory-plot path").count()
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert box is not None and box["width"] > 800 and box["height"] > 300
    assert n_paths >= 4  # working set, anon, file, pids
    assert shot.stat().st_size > 10_000
