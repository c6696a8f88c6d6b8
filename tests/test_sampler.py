"""MemoryProfiler for real: workloads in real slices on this host (cgroup and psutil
fallback), alerts on a workload that grows past the threshold and not on one that stays under,
a cgroup removed under a running sampler, and a SIGKILLed sampler's file read back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import psutil
import pytest

from sandbox.host import discover, open_slice
from sandbox.model.sample import FAST_FIELDS, SAMPLE_FIELDS
from sandbox.sampler import MemoryProfiler, read_samples
from sandbox.sampler.alerts import MB
from sandbox.sampler.profiler import _peaks, tmp_usage

# Waits for "go" on stdin, then allocates and touches ALLOC_MB (in steps of STEP_MB every
# PAUSE_S), says "done" and holds the memory.
WORKLOAD = textwrap.dedent("""
    import sys, time
    total, step, pause = (float(a) for a in sys.argv[1:4])
    print("ready", flush=True)
    sys.stdin.readline()
    keep = []
    while sum(map(len, keep)) < total * 2**20:
        b = bytearray(int(step * 2**20))
        for i in range(0, len(b), 4096):
            b[i] = 1
        keep.append(b)
        time.sleep(pause)
    print("done", flush=True)
    time.sleep(60)
""")


def spawn(slice_, total_mb: float, step_mb: float | None = None, pause_s: float = 0.0):
    proc = slice_.spawn(
        [sys.executable, "-c", WORKLOAD, str(total_mb), str(step_mb or total_mb), str(pause_s)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    return proc


def go(proc) -> None:
    proc.stdin.write(b"go\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == b"done"


def settled(profiler: MemoryProfiler, interval: float):
    """A sample taken after everything so far has happened."""
    count = profiler.sample_count
    while profiler.sample_count < count + 2:
        time.sleep(interval)
    return profiler.latest()


def close_pipes(proc) -> None:
    proc.stdin.close()
    proc.stdout.close()


def measure_50mb(slice_, tmp_path):
    profiler = MemoryProfiler(sample_interval=0.05)
    proc = spawn(slice_, 50)
    profiler.start(slice_, tmp_path / "samples.jsonl", tmp_usage=lambda: tmp_usage(tmp_path))
    try:
        before = settled(profiler, 0.05)
        go(proc)
        after = settled(profiler, 0.05)
    finally:
        profiler.stop()
        close_pipes(proc)
    return before, after, read_samples(tmp_path / "samples.jsonl")


@pytest.mark.parametrize("mode", ["host", "none"])
def test_snapshots_carry_threads_and_file_descriptors(facts, tmp_path, mode):
    """The seed's MemorySnapshot.thread_count and file_descriptors, in every backend: from
    the per-role sweeps of the slice's processes."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    layout = (facts if mode == "host" else discover("none")).cgroup
    body = ("import threading, time\nfiles = [open('/dev/null') for _ in range(40)]\n"
            "for _ in range(6): threading.Thread(target=time.sleep, args=(30,)).start()\n"
            "time.sleep(30)\n")
    with open_slice(f"test-sampler-counts-{mode}", layout) as slice_:
        proc = slice_.spawn([sys.executable, "-c", body])
        profiler = MemoryProfiler(sample_interval=0.1)
        profiler.start(slice_, tmp_path / "samples.jsonl", root_pids=lambda: {proc.pid})
        try:
            deadline = time.monotonic() + 20
            snap = None
            while time.monotonic() < deadline:
                time.sleep(0.5)
                snap = profiler.latest()
                if snap and (snap.file_descriptors or 0) >= 43 and (snap.thread_count or 0) >= 7:
                    break
        finally:
            profiler.stop()
            proc.kill()
            proc.wait()
    assert snap is not None and snap.file_descriptors >= 43 and snap.thread_count >= 7, snap


def test_cgroup_sampler_sees_50mb_in_anon_and_working_set(needs_cgroups, tmp_path):
    with open_slice("test-sampler-50mb", needs_cgroups.cgroup) as slice_:
        before, after, arrays = measure_50mb(slice_, tmp_path)
    expected = "cgroup-v2" if needs_cgroups.cgroup.mode == "v2" else "cgroup-v1"
    assert after.source == expected
    for field in ("anon", "working_set", "memory_current"):
        delta = (getattr(after, field) - getattr(before, field)) / MB
        assert 45 <= delta <= 55, f"{field} moved {delta:.1f} MB"
    assert after.peak >= after.memory_current
    assert after.nprocs == 1 and after.browser_processes == [slice_.spawned[0].pid]
    assert after.pids_current >= 1 and after.cpu_usage_usec > before.cpu_usage_usec
    assert after.oom_kill == 0
    if needs_cgroups.cgroup.mode != "v1":  # hybrid and v2 have PSI in the unified directory
        assert after.psi_some_avg10 is not None
    assert after.uss is None and after.caveat is None
    # Every full line has exactly the documented fields, in order, a fast one the fast
    # fields; the reader gives them as arrays, fast rows carrying the last full one forward.
    lines = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert all(list(line) == list(SAMPLE_FIELDS) for line in lines if line["tier"] == "full")
    assert all(list(line) == ["t", "wall", *FAST_FIELDS] for line in lines
               if line["tier"] == "fast")
    assert len(arrays["t"]) >= 4 and (arrays["t"][1:] > arrays["t"][:-1]).all()
    assert np.isfinite(arrays["anon"]).all()
    assert arrays["anon"].max() >= after.anon


def test_psutil_fallback_sees_50mb_too(tmp_path):
    facts = discover("none")
    with open_slice("test-sampler-psutil", facts.cgroup) as slice_:
        before, after, _ = measure_50mb(slice_, tmp_path)
    assert after.source == "psutil" and "over-counts" in after.caveat
    for field in ("anon", "working_set", "uss", "memory_current"):
        delta = (getattr(after, field) - getattr(before, field)) / MB
        assert 45 <= delta <= 55, f"{field} moved {delta:.1f} MB"
    assert after.nprocs == 1 and after.file_descriptors >= 3
    lines = (tmp_path / "samples.jsonl").read_text().splitlines()
    assert all(list(json.loads(line)) == list(SAMPLE_FIELDS) for line in lines)
    assert after.peak is None and after.oom is None


def run_alert_workload(layout, tmp_path, total_mb, step_mb) -> list[dict]:
    profiler = MemoryProfiler(sample_interval=0.02, alert_threshold_mb=40.0,
                              rate_window_s=0.5, rate_warmup_s=0.2)
    tmp_path.mkdir(exist_ok=True)
    with open_slice(f"test-sampler-alert-{int(total_mb)}", layout) as slice_:
        proc = spawn(slice_, total_mb, step_mb, pause_s=0.05)
        profiler.start(slice_, tmp_path / "samples.jsonl")
        try:
            time.sleep(0.4)  # the window fills with the idle interpreter first
            go(proc)
            time.sleep(1.0)
        finally:
            profiler.stop()
            close_pipes(proc)
    return profiler.alerts


def test_alerts_fire_when_growing_past_threshold(needs_cgroups, tmp_path, caplog):
    caplog.set_level("WARNING", logger="sandbox.sampler")
    alerts = run_alert_workload(needs_cgroups.cgroup, tmp_path, total_mb=60, step_mb=2)
    kinds = [(a.kind, a.severity) for a in alerts]
    assert kinds.count(("threshold", "warning")) == 1, kinds
    assert ("growth_rate", "critical") in kinds, kinds
    assert "crossed the alert threshold" in caplog.text
    assert all(r.name == "sandbox.sampler" for r in caplog.records)
    on_disk = [line for line in (tmp_path / "alerts.jsonl").read_text().splitlines() if line]
    assert len(on_disk) == len(alerts)


def test_no_alert_for_a_workload_that_stays_under(needs_cgroups, tmp_path, caplog):
    caplog.set_level("WARNING", logger="sandbox.sampler")
    # Grows 4 MB at once (a real, short growth burst) but stays far under 40 MB.
    alerts = run_alert_workload(needs_cgroups.cgroup, tmp_path / "a", total_mb=4, step_mb=4)
    assert [a for a in alerts if a.kind == "threshold"] == []
    # Flat after start-up: no alert of any kind, nothing logged, no alerts file.
    caplog.clear()
    alerts = run_alert_workload(needs_cgroups.cgroup, tmp_path / "b", total_mb=0, step_mb=1)
    assert alerts == []
    assert caplog.text == ""
    assert not (tmp_path / "b" / "alerts.jsonl").exists()


def test_cgroup_removed_under_the_sampler_gives_nulls(needs_cgroups, tmp_path):
    profiler = MemoryProfiler(sample_interval=0.02)
    slice_ = open_slice("test-sampler-gone", needs_cgroups.cgroup)
    with slice_:
        slice_.spawn(["sleep", "30"])
        profiler.start(slice_, tmp_path / "samples.jsonl")
        settled(profiler, 0.02)
    # teardown killed the workload and removed every cgroup directory; keep sampling
    after = settled(profiler, 0.02)
    profiler.stop()
    assert profiler.error_count == 0
    assert after.memory_current is None and after.anon is None and after.nprocs is None
    arrays = read_samples(tmp_path / "samples.jsonl")
    assert (arrays["memory_current"][:2] > 0).all()


def test_nprocs_counts_nested_cgroups(needs_cgroups, tmp_path):
    profiler = MemoryProfiler(sample_interval=0.02)
    with open_slice("test-sampler-nested", needs_cgroups.cgroup) as slice_:
        slice_.spawn(["sleep", "30"])
        inner = slice_.spawn(["sleep", "30"])
        child = slice_.membership / "inner"
        child.mkdir()
        (child / "cgroup.procs").write_text(str(inner.pid))
        profiler.start(slice_, tmp_path / "samples.jsonl")
        snap = settled(profiler, 0.02)
        profiler.stop()
    assert snap.nprocs == 2
    assert set(snap.browser_processes) == {p.pid for p in slice_.spawned}


SIGKILLED_HARNESS = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from sandbox.sampler import MemoryProfiler

    class OwnProcess:
        has_cgroup = False
        spawned = []
        def pids(self):
            return {os.getpid()}

    profiler = MemoryProfiler(sample_interval=0.01)
    profiler.start(OwnProcess(), Path(sys.argv[1]))
    print("sampling", flush=True)
    while True:
        junk = [bytearray(100_000) for _ in range(50)]
""")


def test_sigkilled_sampler_leaves_a_readable_file(tmp_path):
    out = tmp_path / "samples.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", SIGKILLED_HARNESS, str(out)],
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"sampling"
        while not out.exists() or out.stat().st_size < 5000:
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert not psutil.pid_exists(proc.pid) or psutil.Process(proc.pid).status() == "zombie"
    lines = out.read_bytes().split(b"\n")
    arrays = read_samples(out)
    complete = len(lines) - 1
    assert len(arrays["t"]) in (complete, complete - 1) and len(arrays["t"]) >= 5
    assert (arrays["memory_current"] > 0).all()


def test_unwritable_output_fails_at_start(tmp_path):
    profiler = MemoryProfiler()
    with open_slice("test-sampler-badout", discover("none").cgroup) as slice_, \
            pytest.raises(IsADirectoryError):
        profiler.start(slice_, tmp_path)  # a directory, not a file
    profiler.stop()  # never started: a no-op


def _sample_for(slice_, path, seconds: float, interval: float) -> MemoryProfiler:
    profiler = MemoryProfiler(sample_interval=interval, role_interval=None)
    profiler.start(slice_, path)
    time.sleep(seconds)
    started = time.monotonic()
    profiler.stop()
    profiler.stop_s = time.monotonic() - started
    return profiler


def test_high_rates_go_through_the_c_ticker_with_the_same_lines(needs_cgroups, tmp_path,
                                                              monkeypatch):
    """At 100 Hz the C ticker reads the fast files (Python wakes once a second); the lines
    are those of the Python fast path: full ones about once a second, fast ones in between,
    in time order. Stopping does not wait for the ticker's batch to fill."""
    from sandbox.sampler import ticker

    assert ticker.AVAILABLE, "the C ticker was not built (setup.py needs cc and Python.h)"
    with open_slice("test-sampler-ticker", needs_cgroups.cgroup) as slice_:
        slice_.spawn(["sleep", "30"])
        threads = []
        monkeypatch.setattr(ticker.Ticker, "__init__", _recording(ticker.Ticker.__init__,
                                                                  threads))
        ticked = _sample_for(slice_, tmp_path / "ticked.jsonl", 2.5, 0.01)
        monkeypatch.setattr(ticker, "AVAILABLE", False)
        python = _sample_for(slice_, tmp_path / "python.jsonl", 2.0, 0.01)
    assert len(threads) == 1 and ticked.error_count == python.error_count == 0
    assert ticked.stop_s < 0.3, ticked.stop_s  # mid-batch: the ticker checks every 100 ms
    for name, profiler in (("ticked", ticked), ("python", python)):
        lines = [json.loads(x) for x in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
        assert len(lines) == profiler.sample_count >= 150, name
        full = [x for x in lines if x["tier"] == "full"]
        assert 2 <= len(full) <= 6, (name, len(full))
        assert all(list(x) == list(SAMPLE_FIELDS) for x in full)
        assert all(list(x) == ["t", "wall", *FAST_FIELDS] for x in lines if x["tier"] == "fast")
        t = [x["t"] for x in lines]
        assert t == sorted(t) and max(np.diff(t)) < 0.5, name
        assert all(x["memory_current"] > 0 for x in lines)


def test_a_moving_usage_brings_full_samples_at_high_rates(needs_cgroups, tmp_path):
    """At 100 Hz the ticker hands over a batch early (after 0.25 s, not 1 s) while the usage
    moves, so memory.stat is read about 4 times a second while 60 MB arrive over 1.5 s."""
    profiler = MemoryProfiler(sample_interval=0.01, role_interval=None)
    with open_slice("test-sampler-ticker-moving", needs_cgroups.cgroup) as slice_:
        proc = spawn(slice_, 60, 2, pause_s=0.05)
        profiler.start(slice_, tmp_path / "samples.jsonl")
        try:
            time.sleep(1.0)
            go(proc)
            time.sleep(1.0)
        finally:
            profiler.stop()
            close_pipes(proc)
    lines = [json.loads(x) for x in (tmp_path / "samples.jsonl").read_text().splitlines()]
    usage = [x["memory_current"] for x in lines]
    low, high = min(usage), max(usage)
    growing = [x for x in lines if low + 4 * MB < x["memory_current"] < high - 4 * MB]
    assert growing[-1]["t"] - growing[0]["t"] > 1.0, (low, high)
    full = [x for x in growing if x["tier"] == "full"]
    assert len(full) >= 4, [x["t"] for x in full]


def test_the_live_alerts_see_each_periods_largest_working_set():
    """A batch of ticks feeds the alerts one point per period: its largest working set,
    so a one-tick spike is never averaged or skipped away."""
    ticks = [(0.00, 10, 5, 1, 10), (0.04, 10, 90, 1, 90), (0.08, 10, 6, 1, 90),
             (0.12, 10, None, None, None), (0.15, 10, 7, 1, 90), (0.19, 10, 3, 1, 90),
             (0.26, 10, 4, 1, 90)]
    assert _peaks(ticks, 0.1) == [(0.04, 90), (0.15, 7), (0.26, 4)]
    assert _peaks([(0.0, None, None, None, None)], 0.1) == []


def _recording(init, calls):
    def wrapped(self, *args, **kwargs):
        calls.append(args)
        init(self, *args, **kwargs)
    return wrapped


def test_a_failing_ticker_falls_back_to_python(needs_cgroups, tmp_path, monkeypatch, caplog):
    from sandbox.sampler import ticker

    if not ticker.AVAILABLE:
        pytest.skip("the C ticker is not built")

    def broken(*args):
        raise OSError("no ticks here")

    monkeypatch.setattr(ticker._ticker, "run", broken)
    with open_slice("test-sampler-ticker-broken", needs_cgroups.cgroup) as slice_:
        slice_.spawn(["sleep", "30"])
        profiler = _sample_for(slice_, tmp_path / "samples.jsonl", 1.5, 0.01)
    assert "the C ticker stopped (no ticks here): sampling goes on in Python" in caplog.text
    assert profiler.sample_count >= 80 and profiler.error_count == 0
