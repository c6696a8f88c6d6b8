"""Every query of docs/grafana/sandbox-dashboard.json returns the runs' series from a real
Prometheus (Debian's, started on loopback with docs/fleet.md's scrape configuration) scraping
a real Pushgateway that two real command runs pushed to. Both servers are stopped after."""

from __future__ import annotations

import json
import math
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.servers import free_port, server

REPO = Path(__file__).resolve().parent.parent
DASHBOARD = REPO / "docs/grafana/sandbox-dashboard.json"
#: Grafana's built-in variables, as Grafana would fill them for a 7-day dashboard.
BUILTINS = {"__rate_interval": "5m", "__interval": "5m", "__range": "7d"}
#: Two runs, two label sets: the longer one long enough for a growth rate (a finite value).
RUNS = {"python3": ("15s", ["python3", "-c", "import time; time.sleep(300)"]),
        "sleep": ("3s", ["sleep", "300"])}

pytestmark = pytest.mark.timeout(180)


def _scrape_config(pushgateway: str) -> dict:
    """docs/fleet.md's Prometheus configuration, pointed at this Pushgateway, scraping every
    second (the runs' series are there within a second of the push)."""
    text = (REPO / "docs/fleet.md").read_text()
    block = next(b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]
                 if "scrape_configs" in b)
    config = yaml.safe_load(block)
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": [pushgateway.removeprefix("http://")]}]
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    return config


@pytest.fixture
def prometheus(tmp_path: Path, pushgateway: str) -> Iterator[tuple[str, str]]:
    """(Pushgateway URL, Prometheus URL), both on free loopback ports."""
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(_scrape_config(pushgateway)))
    prom = f"http://127.0.0.1:{free_port()}"
    argv = ["prometheus", f"--config.file={config}", f"--web.listen-address={prom[7:]}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}"]
    with server(argv, prom, tmp_path / "prometheus.log"):
        yield pushgateway, prom


def _api(prom: str, path: str, **params: str) -> list:
    url = f"{prom}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    body = json.load(urllib.request.urlopen(url, timeout=10))
    assert body["status"] == "success", body
    return body["data"]["result"] if "result" in body["data"] else body["data"]


def _queries(dashboard: dict) -> list[str]:
    """Every panel target's expression, with the variables Grafana would substitute: each
    template variable at its "All" value, the built-ins as for the dashboard's 7 days."""
    values = dict(BUILTINS)
    values |= {v["name"]: v["allValue"] for v in dashboard["templating"]["list"]
               if "allValue" in v}
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]

    def substitute(expr: str) -> str:
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values[m.group(1) or m.group(2)], expr)

    return [substitute(e) for e in exprs]


def test_every_dashboard_query_returns_the_runs_series(needs_cgroups, runs_dir, prometheus):
    gw, prom = prometheus
    for duration, command in RUNS.values():
        done = subprocess.run([sys.executable, "-m", "sandbox", "run", "--duration", duration,
                               "--no-progress", "-q", "--runs-dir", str(runs_dir),
                               "--pushgateway", gw, "--", *command],
                              capture_output=True, text=True, timeout=90)
        assert done.returncode == 0, done.stderr
    for _ in range(50):  # scraped within a scrape interval or two
        if len(_api(prom, "query", query="sandbox_exit_code")) == len(RUNS):
            break
        time.sleep(0.2)
    dashboard = json.loads(DASHBOARD.read_text())
    # the template variables' label_values(sandbox_exit_code, LABEL)
    for variable in dashboard["templating"]["list"]:
        if match := re.fullmatch(r"label_values\((\w+), (\w+)\)", variable.get("definition", "")):
            metric, label = match.groups()
            got = set(_api(prom, f"label/{label}/values", **{"match[]": metric}))
            assert got >= (set(RUNS) if label == "scenario" else {socket.gethostname()}), label
    queries = _queries(dashboard)
    assert len(queries) >= 10
    for query in queries:
        result = _api(prom, "query", query=query)
        assert {s["metric"].get("scenario") for s in result} == set(RUNS), query
        assert any(math.isfinite(float(s["value"][1])) for s in result), (query, result)
