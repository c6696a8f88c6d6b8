"""The screenshot workload for real: Playwright + system Chromium as nobody, in a real slice
and a real network namespace, on the built-in site."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import time

import psutil

from sandbox.workloads.screenshot import ScreenshotSpec
from sandbox.workloads.screenshot.inject import SHM_DIR

from .workload_helpers import chromium_processes, in_slice, screenshot_run

# Chromium's words for "no route": no interface but loopback, or connect() -> ENETUNREACH.
UNREACHABLE = ("INTERNET_DISCONNECTED", "NETWORK_UNREACHABLE", "ADDRESS_UNREACHABLE")
OPERATION_FIELDS = {"op", "t", "wall", "url", "latency_s", "bytes", "ok", "error"}


def test_clean_run_30s_at_60_per_minute(needs_cgroups, needs_chromium):
    """The clean control: 0 failed operations, one line per operation, every Chromium process
    (crashpad handlers too) in the slice, and nothing left after the workload ends."""
    spec = ScreenshotSpec(duration_s=30, operations_per_minute=60)
    seen: dict[int, tuple[str, bool]] = {}
    with screenshot_run(needs_chromium, spec) as run:
        run.wait_ready()
        netns = run.workload.network.inode()
        while run.workload.proc.poll() is None:
            for pid, (exe, ns) in chromium_processes().items():
                if ns == netns and pid not in seen:
                    with contextlib.suppress(OSError):
                        seen[pid] = (exe, in_slice(pid, run.slice))
            time.sleep(0.2)
        code = run.wait_exit(60)
        left_in_slice = run.slice.pids()
        left_in_tmp = [e.name for e in run.private_fs.leftovers()["/tmp"]]
        ops, summary = run.operations(), run.workload.summary
        shm = list(SHM_DIR.glob(f"sandbox-{run.run_id}-*"))

    assert code == 0, run.log()
    assert summary["failed"] == 0 and summary["close"] == "ok"
    assert summary["stopped_by"] == "duration"
    assert 0 < len(ops) == summary["operations"] <= 30
    assert [o["op"] for o in ops] == list(range(len(ops)))
    assert all(set(o) == OPERATION_FIELDS for o in ops)
    assert all(o["ok"] and o["error"] is None and o["bytes"] > 1000 for o in ops), ops
    assert {o["url"].rsplit("/", 1)[1] for o in ops} >= {"article.html", "list.html"}
    starts = [o["t"] for o in ops]
    assert all(b - a >= 0.999 for a, b in zip(starts, starts[1:], strict=False))  # paced
    names = {exe for exe, _ in seen.values()}
    assert {"chromium", "chrome_crashpad_handler"} <= names, names
    assert all(member for _, member in seen.values()), seen
    assert len(seen) >= 8  # browser, zygotes, GPU, utilities, renderers, 2 crashpad handlers
    assert not left_in_slice and not left_in_tmp and not shm


def _top_chrome_webui(pids: set[int]) -> list[int]:
    """The renderers of Chromium's own WebUI (chrome://*.top-chrome) among ``pids``."""
    found = []
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"--top-chrome-webui" in f.read():
                found.append(pid)
    return found


def test_fresh_context_per_operation(needs_cgroups, needs_chromium):
    """Every operation in a fresh context (a window of its own), and no omnibox popup WebUI
    renderer for those windows (spec.OMNIBOX_WEBUI_FEATURES)."""
    spec = ScreenshotSpec(duration_s=5, operations_per_minute=120, context_policy="fresh")
    webui: set[int] = set()
    with screenshot_run(needs_chromium, spec) as run:
        while run.workload.proc.poll() is None:
            webui |= set(_top_chrome_webui(run.slice.pids()))
            time.sleep(0.05)
        code = run.wait_exit(60)
        ops, summary = run.operations(), run.workload.summary
    assert code == 0, run.log()
    assert len(ops) == summary["operations"] > 0
    assert all(o["ok"] for o in ops), ops
    assert not webui, f"top-chrome WebUI renderers {sorted(webui)}: {run.log()}"


def _host_addresses() -> list[str]:
    """This host's own non-loopback IPv4 addresses (never traffic to a real outside host)."""
    found = []
    for addrs in psutil.net_if_addrs().values():
        for addr in addrs:
            if addr.family.name == "AF_INET" and not ipaddress.ip_address(addr.address).is_loopback:
                found.append(addr.address)
    return found


def test_isolated_network_cannot_reach_outside(needs_cgroups, needs_chromium):
    """In isolated mode a non-routable address and the host's own address fail at once
    (a network error, not a timeout), and SIGTERM ends the run cleanly."""
    urls = ["http://10.255.255.1/", *(f"http://{a}/" for a in _host_addresses())]
    spec = ScreenshotSpec(urls=urls, network="isolated", duration_s=300,
                          operations_per_minute=120, operation_timeout_s=20)
    with screenshot_run(needs_chromium, spec) as run:
        run.wait_ready()
        host_netns = os.stat("/proc/self/ns/net").st_ino
        workload_netns = os.stat(f"/proc/{run.workload.proc.pid}/ns/net").st_ino
        assert workload_netns == run.workload.network.inode() != host_netns
        deadline = time.monotonic() + 60
        while run.workload.operations < len(urls) and time.monotonic() < deadline:
            time.sleep(0.1)
        code = run.workload.stop(timeout=20)
        for reader in run.workload.readers:
            reader.join(10)
        ops, summary = run.operations(), run.workload.summary
    assert code == 0, run.log()
    assert summary["stopped_by"] == "SIGTERM"
    assert len(ops) >= len(urls) and summary["failed"] == len(ops)
    for op in ops:
        assert not op["ok"] and op["bytes"] == 0
        assert any(f"net::ERR_{e}" in op["error"] for e in UNREACHABLE), op
