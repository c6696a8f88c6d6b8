"""The table of checks (sandbox.analysis.checks): every trend is judged under its check with its
wording, the JUnit cases are the applicable checks, and the analysis modules import without a
cycle."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np

from sandbox.analysis import analyze
from sandbox.analysis.checks import CHECKS, TRENDS, applicable_checks
from sandbox.analysis.trend import TrendResult
from sandbox.analysis.verdict import Thresholds, judge
from sandbox.report.junit import render_junit
from sandbox.runreader import read_run
from tests.synthetic import series, write_run


def _clean(tmp_path):
    t, y = series(np.random.default_rng(1), 120)
    return analyze(read_run(write_run(tmp_path / "run", t, y,
                                      cleanup={"available": True,
                                               "cleanup_successful": True})))


def test_every_trend_warns_under_its_check_in_its_words(tmp_path):
    r = _clean(tmp_path)
    assert not [f for f in r.findings if f.level != "note"]
    for series_name, (trend, check) in TRENDS.items():
        r.resource_trends = {series_name: TrendResult("leak", slope=0.5)}
        (finding,) = [f for f in judge(r, Thresholds()) if f.level != "note"]
        assert (finding.check, finding.level) == (check, "warning")
        assert finding.message == f"{trend.words} keep growing: 0.5/s (1800/h)"
    names = [c.name for c in CHECKS]
    assert len(names) == len(set(names)) and set(dict(TRENDS.values()).values()) <= set(names)


def test_junit_has_one_case_per_applicable_check(tmp_path):
    r = _clean(tmp_path)
    cases = [c.get("name") for c in ET.fromstring(render_junit(r)).iter("testcase")]
    assert cases == applicable_checks(r)
    assert "operations" in cases and "js_heap" not in cases  # screenshots, no --js-heap


def test_analysis_modules_import_alone():
    """No import cycle: each module imports first in a fresh interpreter."""
    for module in ("checks", "verdict"):
        subprocess.run([sys.executable, "-c", f"import sandbox.analysis.{module}"], check=True)
