"""An hour-long run (marker ``slow``: pytest -m slow tests/test_soak.py): the harness's RSS
stays flat, its files grow linearly, the analysis of the hour takes under a second."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.mark.slow
@pytest.mark.timeout(2 * 3600)
def test_an_hour_long_run(needs_cgroups, needs_chromium, runs_dir):
    spec = importlib.util.spec_from_file_location("soak", BENCH / "soak.py")
    soak = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = soak
    spec.loader.exec_module(soak)
    r = soak.soak(3600, 6, runs_dir)
    assert r["exit_code"] == 0, r["stderr"]
    assert r["rss_growth_mb"] < 5, r["rss_series"]
    assert r["analysis_s"] < 1.0
    assert r["files_mb_per_hour"]["samples.jsonl"] < 10
