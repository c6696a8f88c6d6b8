"""Browser discovery (sandbox.host.browsers): Playwright's downloaded browsers and Google
Chrome are found, a snap is refused with one line saying why, a browser the run's user cannot
reach is refused, and a real run drives the browser ``--browser`` names."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from sandbox.host import browsers
from tests.cli_helpers import report_of, sandbox

REAL_CHROMIUM = Path("/usr/lib/chromium/chromium")  # Debian's binary, behind its launcher


def _script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def playwright_browsers(runs_dir, monkeypatch):
    """A Playwright browsers directory (two revisions) whose ``chrome`` starts the host's
    Chromium; reachable by the run's user (under /var/tmp, mode 755)."""
    if not REAL_CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed")
    root = runs_dir / "ms-playwright"
    newest = _script(root / "chromium-1140" / "chrome-linux" / "chrome",
                     f'exec {REAL_CHROMIUM} "$@"')
    _script(root / "chromium-1100" / "chrome-linux" / "chrome", f'exec {REAL_CHROMIUM} "$@"')
    for d in [root, *root.rglob("*")]:
        if d.is_dir():
            d.chmod(0o755)
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(root))
    return newest


def test_playwright_browsers_are_found_newest_first(playwright_browsers):
    found = [b for b in browsers.candidates() if b.source == "playwright"]
    assert [Path(b.path).parts[-3] for b in found] == ["chromium-1140", "chromium-1100"]
    assert all(b.problem is None for b in found)


def test_google_chrome_is_found_on_the_path(tmp_path, monkeypatch):
    chrome = _script(tmp_path / "bin" / "google-chrome", "exit 0")
    for d in (tmp_path, tmp_path / "bin"):
        d.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    chosen = [b for b in browsers.candidates() if b.source == "google-chrome"]
    # pytest's tmp_path is under a 700 directory: found, and refused for the run's user
    assert [b.path for b in chosen] == [str(chrome)]
    assert "o+x" in chosen[0].problem


@pytest.mark.parametrize("kind", ["launcher script", "symlink into /snap"])
def test_a_snap_is_refused_with_the_reason(tmp_path, kind):
    if kind == "launcher script":
        path = _script(tmp_path / "chromium-browser", 'exec /snap/bin/chromium "$@"')
    else:
        path = tmp_path / "chromium"
        path.symlink_to("/snap/chromium/current/usr/lib/chromium-browser/chrome")
    assert "snap" in browsers.check(path, "--browser").problem
    out = sandbox("run", "--scenario", "smoke", "--browser", str(path))
    assert out.returncode == 3, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "is a snap" in out.stderr and "cgroup of its own" in out.stderr


def test_a_browser_the_run_user_cannot_reach_is_refused(tmp_path):
    hidden = tmp_path / "private"
    chrome = _script(hidden / "chrome", "exit 0")
    hidden.chmod(0o700)
    problem = browsers.check(chrome, "--browser").problem
    assert problem and "o+x" in problem


def test_doctor_lists_what_it_found(playwright_browsers):
    out = sandbox("doctor", "--json")
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)["browsers"]
    assert {"path": str(playwright_browsers), "source": "playwright", "problem": None} in found
    table = sandbox("doctor")
    assert "browser (playwright)" in table.stdout


def test_a_run_drives_the_browser_it_is_given(needs_cgroups, playwright_browsers, runs_dir):
    """The screenshot workload drives Playwright's browser layout given by --browser."""
    runs = runs_dir / "runs"
    runs.mkdir(mode=0o755)
    out = sandbox("run", "--scenario", "smoke", "--duration", "15s", "--browser",
                  str(playwright_browsers), "--runs-dir", str(runs), "--no-progress")
    assert out.returncode in (0, 2), out.stderr
    (run_dir,) = runs.iterdir()
    run = json.loads((run_dir / "run.json").read_text())
    assert run["host"]["chromium"] == str(playwright_browsers)
    report = report_of(runs)
    assert report["operations"]["count"] > 0 and report["operations"]["failed"] == 0, report
    shutil.rmtree(runs)
