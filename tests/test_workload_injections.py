"""Each fault injection is a real fault, measured from the slice and the host (process
membership, the slice's memory.stat, /proc, the filesystem), never from the workload's word."""

from __future__ import annotations

import time
from pathlib import Path

import psutil

from sandbox.host.slice import marked_pids
from sandbox.workloads.screenshot import ScreenshotSpec
from sandbox.workloads.screenshot.inject import SHM_DIR

from .workload_helpers import anon_bytes, in_slice, screenshot_run, wait_for


def _wait_ops(run, n: int, timeout: float = 60.0) -> None:
    assert wait_for(lambda: run.workload.operations >= n, timeout), run.log()


def test_pages_injection_grows_the_process_count(needs_cgroups, needs_chromium):
    """Pages never closed: one more renderer process in the slice per operation."""
    spec = ScreenshotSpec(duration_s=10, operations_per_minute=60, inject=["pages"])
    with screenshot_run(needs_chromium, spec) as run:
        _wait_ops(run, 2)
        early = (run.workload.operations, len(run.slice.pids()))
        _wait_ops(run, 9)
        late = (run.workload.operations, len(run.slice.pids()))
        code = run.wait_exit(60)
    assert code == 0, run.log()
    ops_between = late[0] - early[0]
    assert ops_between >= 5
    assert late[1] - early[1] >= ops_between - 2, (early, late)


def test_heap_injection_grows_anonymous_memory(needs_cgroups, needs_chromium):
    """A kept page retains inject_rate_mb of JS arrays per operation: the slice's anonymous
    memory grows by at least 3/4 of what was pushed from its lowest point on (a clean run:
    ~2.5 MB per operation)."""
    rate_mb = 48  # well above how fast start-up memory falls on a loaded host (~35 MB/s)
    # 20 s: the browser is not closing yet when the last reading is taken on a loaded host
    spec = ScreenshotSpec(duration_s=20, operations_per_minute=60, inject=["heap"],
                          inject_rate_mb=rate_mb)
    with screenshot_run(needs_chromium, spec) as run:
        _wait_ops(run, 2)
        readings = []  # (operations, anon): Chromium's start-up memory may still be falling
        while run.workload.operations < 9:
            readings.append((run.workload.operations, anon_bytes(run.slice)))
            time.sleep(0.05)
        time.sleep(0.5)  # the push after the last counted operation
        late = (run.workload.operations, anon_bytes(run.slice))
        code = run.wait_exit(60)
    assert code == 0, run.log()
    low = min(readings, key=lambda r: r[1])  # from the lowest point on, only pushes add up
    pushed = (late[0] - low[0]) * rate_mb * 2**20
    assert late[0] - low[0] >= 3, (low, late)
    assert late[1] - low[1] >= pushed * 3 / 4, (low, late, pushed)


def test_orphan_injection_outlives_the_workload(needs_cgroups, needs_chromium):
    """A double-forked daemon stays in the slice after the workload's main process ended
    (and its browser closed)."""
    spec = ScreenshotSpec(duration_s=3, operations_per_minute=60, inject=["orphan"])
    with screenshot_run(needs_chromium, spec) as run:
        code = run.wait_exit(60)
        main_pid = run.workload.proc.pid
        assert wait_for(lambda: not any(
            p.name() == "chromium" for p in map(psutil.Process, run.slice.pids())), 10)
        time.sleep(1.0)  # grace period: nothing else is on its way out
        left = run.slice.pids()
        cmdlines = {pid: psutil.Process(pid).cmdline() for pid in left}
        marked = marked_pids(run.run_id)
    assert code == 0, run.log()
    assert main_pid not in left
    assert len(left) == 1, cmdlines
    (orphan,) = left
    assert "sandbox-inject-orphan" in cmdlines[orphan]
    assert orphan in marked


def test_escape_injection_leaves_the_slice(needs_cgroups, needs_chromium):
    """Running as root, a child writes itself into cgroups outside the slice: it is alive
    outside it, carries the run's marker, and survives the slice's teardown (cgroup.kill)."""
    spec = ScreenshotSpec(duration_s=3, operations_per_minute=60, inject=["escape"])
    with screenshot_run(needs_chromium, spec) as run:
        run.wait_ready()
        assert wait_for(lambda: marked_pids(run.run_id) - run.slice.pids(), 20)
        escaped = marked_pids(run.run_id) - run.slice.pids()
        assert all(not in_slice(pid, run.slice) for pid in escaped)
        unified = {pid: Path(f"/proc/{pid}/cgroup").read_text() for pid in escaped}
        run.wait_exit(60)
        run.slice.teardown()
        survivors = {p for p in escaped if psutil.pid_exists(p)
                     and psutil.Process(p).status() != psutil.STATUS_ZOMBIE}
    assert all("0::/\n" in text for text in unified.values()), unified
    assert survivors == escaped


def test_tmpfile_injection_leaves_files(needs_cgroups, needs_chromium):
    """Files named after the run remain in its private /tmp and /dev/shm after the run, and
    nothing reaches the host's /dev/shm."""
    spec = ScreenshotSpec(duration_s=3, operations_per_minute=60, inject=["tmpfile"])
    with screenshot_run(needs_chromium, spec) as run:
        code = run.wait_exit(60)
        ops = run.workload.operations
        left = run.private_fs.leftovers()
        in_tmp = [e for e in left["/tmp"] if e.name.startswith(f"sandbox-{run.run_id}-leak-")]
        in_shm = {e.name: e.size for e in left["/dev/shm"]
                  if e.name.startswith(f"sandbox-{run.run_id}-leak-")}
        on_host = list(SHM_DIR.glob(f"sandbox-{run.run_id}-*"))
    assert code == 0, run.log()
    assert ops > 0
    assert len(in_tmp) == len(in_shm) == ops
    assert all(size > 0 for size in in_shm.values())
    assert on_host == []
    assert all(e.uid == run.user.uid for e in in_tmp)
