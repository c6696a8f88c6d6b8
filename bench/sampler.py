"""Benchmark: what one memory sample costs, and the harness's CPU share while sampling.

For N real headless Chromium pages in a slice (default N = 1, 5, 20) it measures, in one run:
the cgroup sampler (the reader alone: pread + parse + cgroup.procs; and the all-in CPU cost of
one MemoryProfiler sample at 100 Hz: thread wake-up, read, JSON line written and flushed), a
psutil tree walk summing RSS (what psrecord and the seed do), and psutil memory_full_info
(PSS/USS, what the psutil fallback does); then the harness's CPU share (user + system time of
this process over wall time) while a MemoryProfiler samples at 2 Hz (the default), 10 Hz and
100 Hz for --duration seconds (at 100 Hz through the C ticker when it is built), side by side
with the floor: a bare Python loop that only wakes up 100 times a second; then the per-role
sampler (sampler.roles): one memory sweep and
one count sweep, and its CPU share at its default rates over --duration seconds, side by side
with the cgroup sampler's at 2 Hz.

The 100 Hz figures move by ~10 % from one half-minute to the next on a small VM, so they are
taken in --rounds rounds, each a psutil walk then --duration seconds at 100 Hz, and printed
as the median of the rounds (the all-in ratio: the median of per-round ratios), with the
100 Hz cost split between the C ticker's thread and the Python sampler's thread.

    sudo .venv/bin/python bench/sampler.py [--pages 1,5,20] [--duration 30] [--rounds 3]
                                           [--json FILE]

Needs root, a cgroup mode other than none and Chromium (SANDBOX_CHROMIUM or /usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

from sandbox.host import discover, open_slice
from sandbox.sampler import MemoryProfiler, ticker
from sandbox.sampler.cgroup_reader import CgroupReader
from sandbox.sampler.roles import RoleSampler, sweep

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--remote-debugging-port=0")


def start_pages(slice_, chromium: str, profile: Path, pages: int) -> subprocess.Popen:
    """Chromium in the slice with ``pages`` open pages (one from argv, the rest over CDP)."""
    proc = slice_.spawn([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text().strip():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"chromium did not start (exit code {proc.poll()})")
        time.sleep(0.05)
    port = port_file.read_text().split()[0]
    for i in range(pages - 1):
        url = f"http://127.0.0.1:{port}/json/new?data:text/html,<h1>page%20{i}</h1>"
        urllib.request.urlopen(urllib.request.Request(url, method="PUT"), timeout=10).read()
    return proc


def wait_stable(slice_, quiet_s: float = 2.0, timeout: float = 30.0) -> int:
    """Wait until the slice's process count stops changing; return it."""
    last, since = -1, time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = len(slice_.pids())
        if count != last:
            last, since = count, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
        time.sleep(0.1)
    return last


def per_call_us(fn, min_calls: int, min_seconds: float) -> float:
    """Mean wall time of ``fn()`` in microseconds over at least min_calls and min_seconds."""
    fn()  # warm
    calls, start = 0, time.perf_counter()
    while calls < min_calls or time.perf_counter() - start < min_seconds:
        fn()
        calls += 1
    return (time.perf_counter() - start) / calls * 1e6


def psutil_tree_rss(root_pid: int) -> int:
    """psrecord / seed style: the root and its children (recursive), RSS summed."""
    root = psutil.Process(root_pid)
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            continue
    return total


def psutil_pss(pids: set[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_full_info().pss
        except psutil.Error:
            continue
    return total


#: The sampler's threads, by their Python names.
THREADS = ("sandbox-ticker", "sandbox-sampler")


def thread_cpu_s() -> dict[str, float]:
    """CPU time so far of each live sampler thread (its schedstat run time), by name."""
    out = {}
    for thread in threading.enumerate():
        if thread.name in THREADS and thread.native_id is not None:
            stat = Path(f"/proc/self/task/{thread.native_id}/schedstat").read_text()
            out[thread.name] = int(stat.split()[0]) / 1e9
    return out


def cpu_share(slice_, out: Path, hz: float, seconds: float) -> tuple[float, int, dict[str, float]]:
    """This process's CPU time / wall time (% of one core) while sampling at ``hz`` (the
    cgroup sampler alone: no per-role sweeps), the samples taken, and each sampler thread's
    CPU per sample in µs (read just before the stop)."""
    profiler = MemoryProfiler(sample_interval=1.0 / hz, role_interval=None)
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic()
    profiler.start(slice_, out)
    time.sleep(seconds)
    threads = thread_cpu_s()
    samples = profiler.sample_count
    profiler.stop()
    wall = time.monotonic() - wall
    after = resource.getrusage(resource.RUSAGE_SELF)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    per_thread = {name: cpu / max(samples, 1) * 1e6 for name, cpu in threads.items()}
    return used / wall * 100, profiler.sample_count, per_thread


def wake_floor_share(hz: float, seconds: float) -> float:
    """CPU share (% of a core) of a Python thread that only wakes up ``hz`` times a second
    (poll on a pipe, as the sampler's loop): what any Python sampler pays before reading."""
    read_fd, write_fd = os.pipe()
    waker = select.poll()
    waker.register(read_fd, select.POLLIN)
    before, wall = time.thread_time(), time.monotonic()
    deadline = wall
    while (now := time.monotonic()) < wall + seconds:
        deadline += 1 / hz
        waker.poll(max(deadline - now, 0) * 1000)
    used = time.thread_time() - before
    os.close(read_fd)
    os.close(write_fd)
    return used / (time.monotonic() - wall) * 100


def roles_share(slice_, out: Path, seconds: float) -> tuple[float, int]:
    """The per-role sampler at its default rates: its own thread's CPU / wall (% of a core)."""
    sampler = RoleSampler()
    wall = time.monotonic()
    sampler.start(slice_.pids, set, out, wall)
    time.sleep(seconds)
    sampler.stop()
    return sampler.cpu_s / (time.monotonic() - wall) * 100, sampler.sweeps


def bench_pages(facts, pages: int, duration: float, rounds: int, work: Path) -> dict:
    profile = work / f"profile-{pages}"
    profile.mkdir()
    with open_slice(f"bench-sampler-{pages}-{int(time.time())}", facts.cgroup) as slice_:
        chromium = start_pages(slice_, facts.chromium, profile, pages)
        nprocs = wait_stable(slice_)
        pids = slice_.pids()
        reader = CgroupReader.for_slice(slice_)
        reader_us = per_call_us(reader.read, 2000, 1.0)
        record, _ = reader.read()
        reader.close()
        pss_us = per_call_us(lambda: psutil_pss(pids), 5, 1.0)
        tree_rss = psutil_tree_rss(chromium.pid)
        shares = {hz: cpu_share(slice_, work / f"cpu-{pages}-{hz}.jsonl", hz, duration)
                  for hz in (2, 10)}
        walks, fast = [], []
        for i in range(rounds):
            walks.append(per_call_us(lambda: psutil_tree_rss(chromium.pid), 20, 1.0))
            fast.append(cpu_share(slice_, work / f"cpu-{pages}-100-{i}.jsonl", 100, duration))
        floor_pct = wake_floor_share(100, duration)
        memory_sweep_us = per_call_us(lambda: sweep(pids, set()), 5, 1.0)
        count_sweep_us = per_call_us(lambda: sweep(pids, set(), memory=False), 20, 1.0)
        roles_pct, sweeps = roles_share(slice_, work / f"roles-{pages}.jsonl", duration)
    shutil.rmtree(profile, ignore_errors=True)
    # all-in CPU per sample of the running profiler (thread wake-up, read, JSON, write)
    sample_us = [pct / 100 / n * duration * 1e6 for pct, n, _ in fast]
    return {
        "pages": pages, "processes": nprocs, "source": reader.source,
        "memory_current_mb": record["memory_current"] / 2**20,
        "psutil_tree_rss_mb": tree_rss / 2**20,
        "reader_us": reader_us,
        "full_sample_us": statistics.median(sample_us),
        "psutil_rss_us": statistics.median(walks), "psutil_pss_us": pss_us,
        "walk_per_sample": statistics.median(w / s for w, s in zip(walks, sample_us, strict=True)),
        "rounds_100hz": [{"walk_us": w, "sample_us": s, "cpu_pct": f[0], "samples": f[1],
                          "thread_us": f[2]}
                         for w, s, f in zip(walks, sample_us, fast, strict=True)],
        "ticker_us": statistics.median(f[2].get("sandbox-ticker", 0.0) for f in fast),
        "python_us": statistics.median(f[2].get("sandbox-sampler", 0.0) for f in fast),
        "cpu_2hz_pct": shares[2][0], "cpu_10hz_pct": shares[10][0],
        "cpu_100hz_pct": statistics.median(f[0] for f in fast),
        "wake_floor_100hz_pct": floor_pct,
        "memory_sweep_us": memory_sweep_us, "count_sweep_us": count_sweep_us,
        "roles_pct": roles_pct, "role_sweeps": sweeps,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", default="1,5,20", help="comma-separated page counts")
    parser.add_argument("--duration", type=float, default=30.0,
                        help="seconds of sampling per rate for the CPU share (default 30)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of the 100 Hz measurement, median printed (default 3)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    try:
        page_counts = [int(p) for p in args.pages.split(",")]
    except ValueError:
        parser.error(f"--pages must be comma-separated integers, got {args.pages!r}")
    if any(p < 1 for p in page_counts) or args.duration <= 0 or args.rounds < 1:
        parser.error("page counts and --rounds must be >= 1 and --duration > 0")
    facts = discover()
    if problems := facts.problems(needs_browser=True):
        print(f"error: {problems[0]}", file=sys.stderr)
        return 3
    if facts.cgroup.mode == "none":
        print(f"error: needs a cgroup ({facts.cgroup.reason})", file=sys.stderr)
        return 3
    print(f"# {platform.node()} kernel {platform.release()}, {psutil.cpu_count()} cpus, "
          f"cgroup mode {facts.cgroup.mode}, chromium {facts.chromium}, C ticker "
          f"{'built' if ticker.AVAILABLE else 'not built (Python fast path)'}")
    header = ("pages", "procs", "cgroup MB", "tree RSS MB", "reader µs", "sample µs",
              "C ticker µs", "Python µs",
              "psutil RSS µs", "PSS µs", "RSS/reader", "RSS/sample", "PSS/reader",
              "CPU 2Hz %", "CPU 10Hz %", "CPU 100Hz %", "Python wake floor 100Hz %",
              "role mem sweep µs",
              "role count sweep µs", "roles CPU %", "roles/2Hz")
    print(" | ".join(header))
    results = []
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as tmp:
        for pages in page_counts:
            r = bench_pages(facts, pages, args.duration, args.rounds, Path(tmp))
            results.append(r)
            print(" | ".join([
                str(r["pages"]), str(r["processes"]), f"{r['memory_current_mb']:.0f}",
                f"{r['psutil_tree_rss_mb']:.0f}", f"{r['reader_us']:.1f}",
                f"{r['full_sample_us']:.1f}", f"{r['ticker_us']:.1f}", f"{r['python_us']:.1f}",
                f"{r['psutil_rss_us']:.0f}",
                f"{r['psutil_pss_us']:.0f}", f"{r['psutil_rss_us'] / r['reader_us']:.0f}x",
                f"{r['walk_per_sample']:.1f}x",
                f"{r['psutil_pss_us'] / r['reader_us']:.0f}x",
                f"{r['cpu_2hz_pct']:.3f}", f"{r['cpu_10hz_pct']:.3f}",
                f"{r['cpu_100hz_pct']:.3f}", f"{r['wake_floor_100hz_pct']:.3f}",
                f"{r['memory_sweep_us']:.0f}",
                f"{r['count_sweep_us']:.0f}", f"{r['roles_pct']:.3f}",
                f"{r['roles_pct'] / r['cpu_2hz_pct']:.1f}x"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
