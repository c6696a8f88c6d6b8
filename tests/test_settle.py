"""Settle points through ``sandbox run`` on real cgroups: a command's checkpoint() calls, the
built-in workload's settling and a user's Playwright script with sandbox.settle(page) each get
their settle samples in samples.jsonl (docs/settle-points.md); outside a run the helpers do
nothing."""

from __future__ import annotations

import json
import socket
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import sandbox
import sandbox.settle_points
from sandbox.runreader import read_run, samples_to_arrays

from .cli_helpers import only_run_dir, run_python
from .cli_helpers import sandbox as run_sandbox

REPO = Path(__file__).resolve().parent.parent
USER_SCRIPT = REPO / "bench" / "corpus_scripts" / "user_screenshots.py"

CHECKPOINTS = """
import time
from sandbox import checkpoint
done = []
for i in range(5):
    done.append(checkpoint(f"point {i}"))
    time.sleep(0.6)  # settle samples are at least 0.5 s apart
print(done, flush=True)
"""


def settle_samples(run_dir: Path) -> list[dict]:
    lines = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    return [line for line in lines if line.get("settle") is not None]


def test_outside_a_run_the_helpers_do_nothing(monkeypatch):
    monkeypatch.delenv("SANDBOX_SETTLE_FD", raising=False)
    assert sandbox.checkpoint() is False
    assert sandbox.settle(object()) is False


class _Cdp:
    def __init__(self, sent: list[str]) -> None:
        self.sent = sent

    def send(self, method: str, params: dict | None = None) -> None:
        self.sent.append(method)

    def detach(self) -> None:
        pass


class _Browser:
    """A Playwright browser as settle() sees it: one context, two pages, CDP sessions that
    record the methods sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        context = type("Context", (), {"new_cdp_session": lambda _, page: _Cdp(self.sent)})()
        page = type("Page", (), {"context": context, "is_closed": lambda _: False})()
        context.pages = [page, page]
        self.contexts = [context]

    def new_browser_cdp_session(self) -> _Cdp:
        return _Cdp(self.sent)


@pytest.mark.parametrize("pressure", [True, False])
def test_settle_sends_the_pressure_signal_unless_told_not_to(monkeypatch, pressure):
    ours, theirs = socket.socketpair()
    answered = threading.Thread(target=lambda: (ours.recv(100), ours.sendall(b"ok\n")))
    answered.start()
    monkeypatch.setenv("SANDBOX_SETTLE_FD", str(theirs.fileno()))
    monkeypatch.setattr(sandbox.settle_points, "_channel", None)
    browser = _Browser()
    assert sandbox.settle(browser, wait_s=0, pressure=pressure) is True
    answered.join(5)
    gc = ["HeapProfiler.collectGarbage"] * 2
    assert browser.sent == gc + (["Memory.simulatePressureNotification"] if pressure else [])
    for end in (ours, theirs, sandbox.settle_points._channel):
        end.close()


def test_reader_never_carries_a_settle_point_forward():
    rows = [{"t": 0.0, "anon": 5, "tier": "full", "settle": None},
            {"t": 0.5, "anon": 6, "tier": "full", "settle": 1},
            {"t": 0.6, "memory_current": 9, "tier": "fast"}]
    arrays = samples_to_arrays(rows)
    assert np.isnan(arrays["settle"][[0, 2]]).all() and arrays["settle"][1] == 1
    assert arrays["anon"][2] == 6  # the other fields are carried forward as before
    old = samples_to_arrays([{"t": 0.0, "anon": 5}])  # samples.jsonl before format 3
    assert np.isnan(old["settle"]).all() and len(old["settle"]) == 1


def test_command_checkpoints_get_settle_samples(needs_cgroups, runs_dir):
    out = run_python(CHECKPOINTS, runs_dir, "--duration", "10s", "--no-progress", "-q",
                     "--grace", "1s")
    run_dir = only_run_dir(runs_dir)
    assert "[True, True, True, True, True]" in (run_dir / "workload.log").read_text(), out.stderr
    samples = settle_samples(run_dir)
    assert [s["settle"] for s in samples] == [1, 2, 3, 4, 5]
    assert all(s["tier"] == "full" for s in samples)
    run = json.loads((run_dir / "run.json").read_text())
    assert run["settle"]["points"] == 5 and run["settle"]["rate_limited"] == 0
    assert run["settle"]["labels"]["1"] == "point 0"
    settle = read_run(run_dir).samples["settle"]
    assert settle[~np.isnan(settle)].tolist() == [1, 2, 3, 4, 5]


def test_builtin_workload_settles(needs_cgroups, needs_chromium, runs_dir):
    run_sandbox("run", "--duration", "20s", "--ops-per-minute", "30", "--settle-every", "2",
                "--no-progress", "-q", "--runs-dir", str(runs_dir))
    run_dir = only_run_dir(runs_dir)
    operations = [json.loads(line) for line in
                  (run_dir / "operations.jsonl").read_text().splitlines()]
    settled = [o for o in operations if "settle_s" in o]
    assert len(operations) >= 9 and [o["op"] % 2 for o in settled] == [1] * len(settled)
    samples = settle_samples(run_dir)
    assert len(samples) == len(settled) >= 4
    assert all(0 < o["settle_s"] < 5 for o in settled)


def test_user_script_settles_with_the_helper(needs_cgroups, needs_chromium, runs_dir):
    run_sandbox("run", "--duration", "30s", "--no-progress", "-q", "--runs-dir",
                str(runs_dir), "--", sys.executable, str(USER_SCRIPT), "--duration", "12",
                "--ops-per-minute", "30", "--context", "fresh", "--settle-every", "2")
    run_dir = only_run_dir(runs_dir)
    log = (run_dir / "workload.log").read_text()
    assert log.count("settle=") == 3, log
    assert [s["settle"] for s in settle_samples(run_dir)] == [1, 2, 3]
