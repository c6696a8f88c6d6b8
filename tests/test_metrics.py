"""Prometheus metrics: the textfile node_exporter reads, and a push to a real Pushgateway
(Debian's prometheus-pushgateway, started on loopback here and stopped after)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sandbox.analysis import analyze
from sandbox.report import write_all
from sandbox.report.metrics import export
from sandbox.runreader import read_run
from tests.servers import free_port
from tests.synthetic import series, write_run

REPO = Path(__file__).resolve().parent.parent
MB = 2**20
CLEAN_CLEANUP = {"process_cleanup": {"orphaned_browser_processes": []},
                 "file_cleanup": {"remaining_temp_files": []}, "escapes": [],
                 "cleanup_successful": True}


def _run(path: Path, leak: float, scenario: str):
    t, y = series(np.random.default_rng(5), 600, leak_mb_s=leak, noise_sd=2)
    run_dir = write_run(path, t, y, cleanup=CLEAN_CLEANUP,
                        run_extra={"host": {"hostname": "lab-7"}, "started": 1_790_000_000.0,
                                   "config": {"scenario": scenario}})
    return run_dir, analyze(read_run(run_dir))


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """(name, labels) -> value from a text exposition (the parser node_exporter-like
    consumers use; it rejects what the Prometheus text format does not allow)."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _labels(**extra: str) -> frozenset:
    return frozenset({"scenario": "endurance", "host": "lab-7", **extra}.items())


def test_textfile_has_base_units_stable_labels_and_states(tmp_path):
    run_dir, result = _run(tmp_path / "leaky", 0.3, "endurance")
    assert result.status == "FAIL"
    text = write_all(result, run_dir, ["prometheus"])[0].read_text()
    got = samples(text)
    rate = got[("sandbox_memory_growth_bytes_per_second", _labels())]
    assert 0.25 * MB < rate < 0.35 * MB  # bytes, not MB
    assert got[("sandbox_memory_budget_bytes_per_second", _labels())] == pytest.approx(0.1 * MB)
    assert got[("sandbox_status", _labels(sandbox_status="FAIL"))] == 1.0
    assert got[("sandbox_status", _labels(sandbox_status="PASS"))] == 0.0
    assert got[("sandbox_memory_budget_outcome", _labels(sandbox_memory_budget_outcome="over"))] \
        == 1.0
    assert got[("sandbox_run_start_timestamp_seconds", _labels())] == 1_790_000_000.0
    assert got[("sandbox_exit_code", _labels())] == 1.0
    # every series carries exactly the same labels, whatever the outcome
    clean_dir, clean = _run(tmp_path / "clean", 0.0, "endurance")
    assert clean.status in ("PASS", "INCONCLUSIVE")
    clean_keys = set(samples(write_all(clean, clean_dir, ["prometheus"])[0].read_text()))
    assert clean_keys == set(got)


def test_the_old_format_name_still_works(tmp_path):
    run_dir, result = _run(tmp_path / "r", 0.0, "quick")
    assert write_all(result, run_dir, ["openmetrics"])[0].name == "metrics.prom"


def test_textfile_is_replaced_atomically(tmp_path):
    _, result = _run(tmp_path / "r", 0.3, "endurance")
    target = tmp_path / "textfile" / "sandbox-endurance.prom"
    target.parent.mkdir()
    target.write_text("stale\n")
    assert export(result, textfile=target)
    assert "stale" not in target.read_text()
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temporary left
    assert not export(result, textfile=tmp_path / "missing" / "x.prom")


def _scrape(url: str) -> dict[tuple[str, frozenset], float]:
    text = urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode()
    return {key: value for key, value in samples(text).items()
            if key[0].startswith("sandbox_")}


def _without_job(got):
    return {(name, frozenset((k, v) for k, v in labels if k not in ("job", "instance"))): value
            for (name, labels), value in got.items()}


def test_push_to_a_real_pushgateway_and_read_back(tmp_path, pushgateway):
    _, leaky = _run(tmp_path / "leaky", 0.3, "endurance")
    assert export(leaky, pushgateway=pushgateway)
    got = _without_job(_scrape(pushgateway))
    assert got[("sandbox_status", _labels(sandbox_status="FAIL"))] == 1.0
    assert 0.25 * MB < got[("sandbox_memory_growth_bytes_per_second", _labels())] < 0.35 * MB
    # the next run of the same scenario on the same host replaces its group
    _, clean = _run(tmp_path / "clean", 0.0, "endurance")
    assert export(clean, pushgateway=pushgateway)
    got = _without_job(_scrape(pushgateway))
    assert got[("sandbox_status", _labels(sandbox_status="FAIL"))] == 0.0
    assert got[("sandbox_exit_code", _labels())] == 0.0
    # another scenario is a group of its own
    _, quick = _run(tmp_path / "quick", 0.0, "quick")
    assert export(quick, pushgateway=pushgateway)
    scenarios = {dict(labels)["scenario"] for _, labels in _scrape(pushgateway)}
    assert scenarios == {"endurance", "quick"}


def test_report_command_pushes_and_an_unreachable_gateway_is_one_line(tmp_path, pushgateway):
    run_dir, _ = _run(tmp_path / "leaky", 0.3, "endurance")
    textfile = tmp_path / "sandbox.prom"
    cli = [sys.executable, "-m", "sandbox", "report", str(run_dir), "--format", "json"]
    done = subprocess.run([*cli, "--pushgateway", pushgateway, "--metrics-textfile",
                           str(textfile)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert ("sandbox_exit_code", _labels()) in _without_job(_scrape(pushgateway))
    assert "sandbox_status" in textfile.read_text()
    dead = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run([*cli, "--pushgateway", dead], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1  # the verdict's exit code; the push failure is logged
    errors = [line for line in done.stderr.splitlines() if "cannot push" in line]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    bad = subprocess.run([*cli, "--pushgateway", "ftp://x"], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 3 and "Traceback" not in bad.stderr
    assert json.loads((run_dir / "report.json").read_text())["status"] == "FAIL"


def test_the_grafana_dashboard_asks_only_for_metrics_the_harness_exports(tmp_path):
    """Every metric name in docs/grafana/sandbox-dashboard.json's queries is in metrics.prom."""
    import re

    _, result = _run(tmp_path / "r", 0.3, "endurance")
    exported = {name for name, _ in samples(write_all(result, tmp_path / "r",
                                                      ["prometheus"])[0].read_text())}
    dashboard = json.loads((REPO / "docs/grafana/sandbox-dashboard.json").read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    queries += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    asked = {m for q in queries for m in re.findall(r"\bsandbox_[a-z_]+", q)}
    assert asked and asked <= exported, asked - exported
